//! Upstreams for mirror tests: real git servers on loopback. `git daemon`
//! (git://) and `git http-backend` behind `upstream.py` (http://, optionally
//! with basic auth).

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::git;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Server {
    Http,
    Daemon,
}

/// A git server over a temp dir of bare repositories. Dropping it stops it.
pub struct Upstream {
    pub root: tempfile::TempDir,
    pub port: u16,
    server: Server,
    auth: Option<String>,
    child: Option<Child>,
}

impl Upstream {
    /// `git http-backend` over HTTP; `auth` = `user:password` for basic auth.
    pub fn http(auth: Option<&str>) -> Self {
        Self::start(Server::Http, auth)
    }

    /// `git daemon` (git://), with pushes enabled.
    pub fn daemon() -> Self {
        Self::start(Server::Daemon, None)
    }

    fn start(server: Server, auth: Option<&str>) -> Self {
        let mut upstream = Upstream {
            root: tempfile::tempdir().expect("temp dir"),
            port: 0,
            server,
            auth: auth.map(str::to_owned),
            child: None,
        };
        upstream.resume();
        upstream
    }

    /// Stops the server (connections are refused until [`Upstream::resume`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port.
    pub fn resume(&mut self) {
        let root = self.root.path().to_owned();
        match self.server {
            Server::Http => {
                let script = concat!(env!("CARGO_MANIFEST_DIR"), "/src/upstream.py");
                let mut cmd = Command::new("python3");
                cmd.arg(script).arg(&root);
                if self.port != 0 {
                    cmd.arg(self.port.to_string());
                }
                if let Some(auth) = &self.auth {
                    cmd.env("UPSTREAM_AUTH", auth);
                }
                let mut child = cmd
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start upstream.py (python3)");
                let mut line = String::new();
                std::io::BufReader::new(child.stdout.take().expect("stdout"))
                    .read_line(&mut line)
                    .expect("upstream port");
                self.port = line.trim().parse().expect("upstream printed its port");
                self.child = Some(child);
            }
            Server::Daemon => {
                if self.port == 0 {
                    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
                    self.port = probe.local_addr().expect("addr").port();
                }
                // git-daemon itself, not `git daemon`: the wrapper would
                // leave the daemon running when killed.
                let exec_path = Command::new("git")
                    .arg("--exec-path")
                    .output()
                    .expect("git");
                let exec_path = String::from_utf8_lossy(&exec_path.stdout).trim().to_owned();
                let child = Command::new(Path::new(&exec_path).join("git-daemon"))
                    .args(["--reuseaddr", "--export-all", "--enable=receive-pack"])
                    .arg("--listen=127.0.0.1")
                    .arg(format!("--port={}", self.port))
                    .arg(format!("--base-path={}", root.display()))
                    .arg(&root)
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start git daemon");
                self.child = Some(child);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "upstream did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A new bare repository `NAME.git`, pushed from `work` when given.
    pub fn bare(&self, name: &str, work: Option<&Path>) -> PathBuf {
        let path = self.path(name);
        git(
            self.root.path(),
            &["init", "-q", "--bare", "-b", "main", &format!("{name}.git")],
        );
        if let Some(work) = work {
            git(
                work,
                &["push", "-q", path.to_str().expect("utf-8 path"), "--all"],
            );
            git(
                work,
                &["push", "-q", path.to_str().expect("utf-8 path"), "--tags"],
            );
        }
        path
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(format!("{name}.git"))
    }

    pub fn url(&self, name: &str) -> String {
        match self.server {
            Server::Http => format!("http://127.0.0.1:{}/{name}.git", self.port),
            Server::Daemon => format!("git://127.0.0.1:{}/{name}.git", self.port),
        }
    }

    /// Makes requests wait until [`Upstream::unhang`] (HTTP only).
    pub fn hang(&self) {
        std::fs::write(self.root.path().join(".hang"), b"").expect("hang file");
    }

    pub fn unhang(&self) {
        let _ = std::fs::remove_file(self.root.path().join(".hang"));
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.unhang();
        self.stop();
    }
}
