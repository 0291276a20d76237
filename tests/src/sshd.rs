//! A real OpenSSH `sshd` on a loopback port, as the far end of the agent's
//! SSH reverse tunnel: its own host key and `authorized_keys` in a temp dir,
//! forwarding allowed, logins as the user running the tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

/// A running sshd. Dropping it stops it and its sessions.
pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

/// Whether sshd is installed. Without it the tunnel tests skip loudly,
/// unless `scripts/test` ran (`E2E_REQUIRE_SSHD`): then they fail.
pub fn available() -> bool {
    if Path::new(SSHD).exists() {
        return true;
    }
    assert!(
        std::env::var_os("E2E_REQUIRE_SSHD").is_none(),
        "scripts/test ran but {SSHD} is missing: install openssh-server"
    );
    eprintln!(
        "\n*** SKIPPED: {SSHD} is missing, so the SSH tunnel is not tested. \
         Run scripts/test, which installs openssh-server. ***\n"
    );
    false
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The user the tests run as (who logs in to sshd).
pub fn user() -> String {
    let out = Command::new("id").arg("-un").output().expect("run id");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl Sshd {
    /// Starts sshd with a fresh ed25519 host key and an empty `authorized_keys`.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        crate::ssh_keygen(&dir.path().join("host_key"), "tunnel-server");
        std::fs::write(dir.path().join("authorized_keys"), "").expect("authorized_keys");
        let d = dir.path().display();
        let config = format!(
            "ListenAddress 127.0.0.1\n\
             HostKey {d}/host_key\n\
             AuthorizedKeysFile {d}/authorized_keys\n\
             PidFile none\n\
             StrictModes no\n\
             UsePAM no\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\n\
             AllowTcpForwarding yes\n\
             GatewayPorts no\n\
             X11Forwarding no\n\
             LogLevel VERBOSE\n"
        );
        std::fs::write(dir.path().join("sshd_config"), config).expect("sshd_config");
        // Run as root, sshd wants its privilege separation directory (which
        // only root can make; other users do not need it).
        let _ = std::fs::create_dir_all("/run/sshd");
        let mut sshd = Sshd {
            dir,
            port: free_port(),
            child: None,
        };
        sshd.spawn();
        sshd
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("sshd log");
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-p", &self.port.to_string(), "-f"])
            .arg(self.dir.path().join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start sshd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("sshd exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "sshd did not listen:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("sshd.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The host key's public line (`ssh-ed25519 AAAA... tunnel-server`).
    pub fn host_public_key(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("host_key.pub"))
            .expect("host key")
            .trim()
            .to_owned()
    }

    /// `SHA256:...` of the host key, as `ssh-keygen -lf` prints it.
    pub fn host_fingerprint(&self) -> String {
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(self.dir.path().join("host_key.pub"))
            .output()
            .expect("run ssh-keygen");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .expect("fingerprint")
            .to_owned()
    }

    /// Lets `public_key` log in.
    pub fn authorize(&self, public_key: &str) {
        std::fs::write(
            self.dir.path().join("authorized_keys"),
            format!("{}\n", public_key.trim()),
        )
        .expect("write authorized_keys");
    }

    /// Kills sshd and every session it forked (those outlive the listener).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id() as i32;
            for session in descendants(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(session),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills sshd and its sessions, then starts it again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every process below `pid`, read from the kernel's list of each
/// process's children.
fn descendants(pid: i32) -> Vec<i32> {
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    children
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .flat_map(|child| std::iter::once(child).chain(descendants(child)))
        .collect()
}
