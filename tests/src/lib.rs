//! The end-to-end harness: a real agent process in a temp data dir on an
//! ephemeral loopback port, and helpers to drive it with real clients.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod forge_standin;
pub mod sshd;
pub mod upstream;

/// The agent binary under test: this crate's `hangar-e2e`, which cargo builds
/// next to the test executables' `deps/` directory; `E2E_HANGAR_BIN`
/// overrides it (for a target dir shared by several checkouts).
pub fn hangar_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("E2E_HANGAR_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("hangar-e2e");
    assert!(
        bin.exists(),
        "{} is missing; run the tests through cargo",
        bin.display()
    );
    bin
}

/// A running agent. Dropping it kills the process.
pub struct Agent {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub token: String,
    /// The SSH server's port (the agent runs it on loopback).
    pub ssh_port: u16,
    child: Option<Child>,
    http: reqwest::blocking::Client,
    /// The extra environment, kept for restarts.
    env: Vec<(String, String)>,
}

impl Agent {
    pub fn start() -> Self {
        Self::start_with_env(&[])
    }

    /// Starts an agent with extra `HANGAR_*` settings in its environment.
    pub fn start_with_env(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut agent = Agent {
            dir,
            url: String::new(),
            token: String::new(),
            ssh_port: 0,
            child: None,
            http: reqwest::blocking::Client::new(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        agent.spawn();
        agent
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.data_dir().join("agent.json"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir().join("agent.log"))
            .expect("log file");
        let mut cmd = Command::new(hangar_bin());
        cmd.args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--ssh",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(self.data_dir())
        .env("HANGAR_LOG", "info,hangar_agent=debug")
        .stdout(log.try_clone().expect("log"))
        .stderr(log);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("start the agent"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(
                Instant::now() < deadline,
                "agent did not start; log:\n{}",
                self.log()
            );
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("agent exited with {status}; log:\n{}", self.log());
            }
            if let Ok(text) = std::fs::read_to_string(self.data_dir().join("agent.json"))
                && let Ok(file) = serde_json::from_str::<Value>(&text)
            {
                self.url = file["url"].as_str().unwrap_or_default().to_owned();
                self.token = file["token"].as_str().unwrap_or_default().to_owned();
                self.ssh_port = file["ssh"]
                    .as_str()
                    .and_then(|a| a.rsplit_once(':'))
                    .and_then(|(_, port)| port.parse().ok())
                    .unwrap_or_default();
                if self
                    .http
                    .get(format!("{}/healthz", self.url))
                    .send()
                    .is_ok_and(|r| r.status().is_success())
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("agent.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child
            .as_ref()
            .map(|c| c.id() as i32)
            .expect("agent running")
    }

    /// SIGKILL: the agent gets no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("agent running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("signal");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "agent did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the agent again on the same data dir (on a new port).
    /// Sets (or replaces) a variable of the environment used at the next (re)start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Posts a webhook delivery (headers, body) to `/hooks/PROVIDER`;
    /// returns the status and JSON answer.
    pub fn deliver(
        &self,
        provider: &str,
        delivery: &(Vec<(String, String)>, Vec<u8>),
    ) -> (u16, Value) {
        forge_standin::post_delivery(
            &self.http,
            &format!("{}/hooks/{provider}", self.url),
            delivery,
        )
    }

    /// Calls the API with the admin token; returns status and JSON (Null when empty).
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.api_as(Some(&self.token), method, path, body)
    }

    pub fn api_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().expect("agent answers");
        let status = response.status().as_u16();
        let text = response.text().expect("body");
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            },
        )
    }

    /// Creates a repository through the API.
    pub fn create_repo(&self, name: &str, public: bool) {
        let (status, body) = self.api(
            "POST",
            "/api/v1/repos",
            Some(serde_json::json!({ "name": name, "public": public })),
        );
        assert_eq!(status, 201, "{body}");
    }

    /// Creates a user with `role`; returns their token.
    pub fn create_user(&self, name: &str, role: &str) -> String {
        let (status, body) = self.api(
            "POST",
            "/api/v1/users",
            Some(serde_json::json!({ "name": name, "role": role })),
        );
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().expect("token").to_owned()
    }

    /// The clone URL with the admin token as the HTTP password.
    pub fn git_url(&self, repo: &str) -> String {
        self.git_url_with(repo, &self.token)
    }

    pub fn git_url_with(&self, repo: &str, token: &str) -> String {
        self.url
            .replacen("http://", &format!("http://git:{token}@"), 1)
            + &format!("/{repo}.git")
    }

    /// The clone URL without credentials.
    pub fn anon_url(&self, repo: &str) -> String {
        format!("{}/{repo}.git", self.url)
    }

    /// Runs the CLI against this agent (through its data dir).
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_command(args).output().expect("run the CLI")
    }

    /// Runs the CLI with `input` on its stdin (a pipe, not a terminal).
    pub fn cli_with_input(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write as _;
        let mut child = self
            .cli_command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the CLI");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
        child.wait_with_output().expect("CLI output")
    }

    /// The CLI as a command to spawn (for one that runs while the test acts).
    pub fn cli_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(hangar_bin());
        command
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .env_remove("HANGAR_URL")
            .env_remove("HANGAR_TOKEN");
        command
    }

    /// `ssh://` clone URL of a repository on this agent's SSH server.
    pub fn ssh_url(&self, repo: &str) -> String {
        format!("ssh://git@127.0.0.1:{}/{repo}.git", self.ssh_port)
    }

    /// A fresh ed25519 key pair, added through the API for the owner of `token`.
    pub fn ssh_client(&self, token: &str) -> SshClient {
        let client = SshClient::new(self.ssh_port);
        let (status, body) = self.api_as(
            Some(token),
            "POST",
            "/api/v1/keys",
            Some(serde_json::json!({ "key": client.public_key() })),
        );
        assert_eq!(status, 201, "{body}");
        client
    }

    /// The bare repository on disk.
    pub fn repo_path(&self, repo: &str) -> PathBuf {
        self.data_dir().join("repos").join(format!("{repo}.git"))
    }
}

/// Builds, through the API.
impl Agent {
    /// Waits until `repo` has at least `count` builds and all have finished;
    /// returns them, newest first.
    pub fn wait_builds(&self, repo: &str, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let (_, list) = self.api("GET", &format!("/api/v1/builds?repo={repo}"), None);
            let items = list["items"].as_array().cloned().unwrap_or_default();
            let done = items
                .iter()
                .filter(|b| !matches!(b["status"].as_str(), Some("queued" | "running")))
                .count();
            if items.len() >= count && done == items.len() {
                return items;
            }
            assert!(
                Instant::now() < deadline,
                "builds did not finish: {list}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until a running job of `repo`'s newest build has `text` in its
    /// log; returns the build and that job.
    pub fn wait_running_log(&self, repo: &str, text: &str) -> (Value, Value) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, list) = self.api("GET", &format!("/api/v1/builds?repo={repo}"), None);
            if let Some(id) = list["items"][0]["id"].as_str() {
                let build = self.build(id);
                let found = build["jobs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|j| j["status"] == "running" && self.job_log(&build, j).contains(text))
                    .cloned();
                if let Some(job) = found {
                    return (build, job);
                }
            }
            assert!(
                Instant::now() < deadline,
                "no running job of {repo} printed {text:?}: {list}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A build with its jobs, steps and annotations.
    pub fn build(&self, id: &str) -> Value {
        let (status, build) = self.api("GET", &format!("/api/v1/builds/{id}"), None);
        assert_eq!(status, 200, "{build}");
        build
    }

    /// A job's stored log, without timestamps.
    pub fn job_log(&self, build: &Value, job: &Value) -> String {
        let url = format!(
            "{}/api/v1/builds/{}/jobs/{}/log",
            self.url,
            build["id"].as_str().expect("build id"),
            job["id"].as_str().expect("job id")
        );
        self.http
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .and_then(|r| r.text())
            .expect("log")
    }
}

/// Live logs (SSE), through the API.
impl Agent {
    /// Follows a job's log (`?follow=1`) until it ends; returns the raw
    /// event stream. `last_event_id` resumes after that line.
    pub fn follow_log(&self, build: &str, job: &str, last_event_id: Option<u64>) -> String {
        let mut request = self
            .http
            .get(format!(
                "{}/api/v1/builds/{build}/jobs/{job}/log?follow=1",
                self.url
            ))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(90));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().expect("SSE stream");
        assert_eq!(response.status().as_u16(), 200);
        response.text().expect("SSE body")
    }
}

/// Polls `ok` until it holds; fails after a minute, showing the agent's log.
pub fn wait_until(agent: &Agent, what: &str, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The Docker Engine API for the Docker executor's tests: `DOCKER_HOST`, which
/// `scripts/test` points at the podman service it starts. Without it the
/// tests skip loudly, unless `scripts/test` ran (then a missing engine fails).
pub fn docker_host() -> Option<String> {
    let required = std::env::var_os("E2E_REQUIRE_DOCKER").is_some();
    let Some(host) = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()) else {
        assert!(
            !required,
            "scripts/test ran but DOCKER_HOST is unset: podman's API service did not start"
        );
        eprintln!(
            "\n*** SKIPPED: DOCKER_HOST is unset, so the Docker executor is not tested. \
             Run scripts/test, which starts podman's Docker API, to test it. ***\n"
        );
        return None;
    };
    if let Err(e) = docker_runtime().block_on(docker_client().ping()) {
        panic!(
            "the Docker Engine API at DOCKER_HOST={host} does not answer ({e}); is podman's service running?"
        );
    }
    Some(host)
}

fn docker_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn docker_client() -> bollard::Docker {
    bollard::Docker::connect_with_defaults().expect("DOCKER_HOST is usable")
}

/// Ids of the containers (running or not) whose labels include `label`
/// (`KEY=VALUE`), as the Docker Engine API lists them.
pub fn containers_labelled(label: &str) -> Vec<String> {
    list_labelled(&docker_runtime(), &docker_client(), label).expect("list containers")
}

fn list_labelled(
    runtime: &tokio::runtime::Runtime,
    docker: &bollard::Docker,
    label: &str,
) -> Result<Vec<String>, bollard::errors::Error> {
    let filters = std::collections::HashMap::from([("label".to_owned(), vec![label.to_owned()])]);
    let options = bollard::query_parameters::ListContainersOptions {
        all: true,
        filters: Some(filters),
        ..Default::default()
    };
    let list = runtime.block_on(docker.list_containers(Some(options)))?;
    Ok(list.into_iter().filter_map(|c| c.id).collect())
}

/// The job called `name` in a build from [`Agent::build`].
pub fn job_named<'a>(build: &'a Value, name: &str) -> &'a Value {
    build["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["name"] == name))
        .unwrap_or_else(|| panic!("no job {name}: {build}"))
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
        // A test that failed mid-job must not leave its containers running.
        if std::env::var_os("DOCKER_HOST").is_some() {
            let label = format!("hangar.data_dir={}", self.data_dir().display());
            let docker = docker_client();
            let runtime = docker_runtime();
            for id in list_labelled(&runtime, &docker, &label).unwrap_or_default() {
                let options = bollard::query_parameters::RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                };
                let _ = runtime.block_on(docker.remove_container(&id, Some(options)));
            }
        }
    }
}

/// The real OpenSSH client with its own key and known-hosts file, and no
/// user config or agent.
pub struct SshClient {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl SshClient {
    /// A client with a new key that no agent knows yet.
    pub fn new(port: u16) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        ssh_keygen(&dir.path().join("id_ed25519"), "test@hangar");
        Self { dir, port }
    }

    pub fn key(&self) -> PathBuf {
        self.dir.path().join("id_ed25519")
    }

    pub fn public_key(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("id_ed25519.pub")).expect("public key")
    }

    /// The options every call uses: this key only, a private known-hosts file
    /// (the first host key is accepted, then strictly checked), no prompts.
    pub fn options(&self) -> Vec<String> {
        let known = self.dir.path().join("known_hosts");
        let checking = if known.exists() {
            "StrictHostKeyChecking=yes"
        } else {
            "StrictHostKeyChecking=accept-new"
        };
        [
            "-F",
            "/dev/null",
            "-p",
            &self.port.to_string(),
            "-i",
            &self.key().display().to_string(),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "BatchMode=yes",
            "-o",
            &format!("UserKnownHostsFile={}", known.display()),
            "-o",
            checking,
            "-o",
            // One known-hosts entry whatever the (ephemeral) port.
            "HostKeyAlias=hangar-test",
            "-o",
            "LogLevel=ERROR",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// `GIT_SSH_COMMAND` for git.
    pub fn command_line(&self) -> String {
        format!("ssh {}", self.options().join(" "))
    }

    /// Runs `ssh [extra...] git@127.0.0.1 [args...]` with stdin from `input`.
    pub fn run(&self, extra: &[&str], args: &[&str], input: &[u8]) -> Output {
        use std::io::Write as _;
        let mut child = Command::new("ssh")
            .args(self.options())
            .args(extra)
            .arg("git@127.0.0.1")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ssh");
        let mut stdin = child.stdin.take().expect("stdin");
        let _ = stdin.write_all(input);
        drop(stdin);
        child.wait_with_output().expect("ssh output")
    }

    /// git in `dir` over this client, whatever the exit status.
    pub fn git_output(&self, dir: &Path, args: &[&str]) -> Output {
        git_command(dir)
            .env("GIT_SSH_COMMAND", self.command_line())
            .args(args)
            .output()
            .expect("run git")
    }

    /// git in `dir` over this client, asserting success; returns stdout.
    pub fn git(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.git_output(dir, args);
        assert!(
            out.status.success(),
            "git {args:?} over ssh failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

/// Makes an unencrypted ed25519 key pair at `path` and `path.pub` with the real ssh-keygen.
pub fn ssh_keygen(path: &Path, comment: &str) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .output()
        .expect("run ssh-keygen (install openssh-client)");
    assert!(out.status.success(), "{out:?}");
}

/// A `git` command with no user or system config and no prompts.
pub fn git_command(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "")
        .env("SSH_ASKPASS", "")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_CONFIG_COUNT", "2")
        .env("GIT_CONFIG_KEY_0", "init.defaultBranch")
        .env("GIT_CONFIG_VALUE_0", "main")
        .env("GIT_CONFIG_KEY_1", "credential.helper")
        .env("GIT_CONFIG_VALUE_1", "")
        .stdin(Stdio::null());
    cmd
}

/// Runs git in `dir` and returns its output, whatever the exit status.
pub fn git_output(dir: &Path, args: &[&str]) -> Output {
    git_command(dir).args(args).output().expect("run git")
}

/// Runs git in `dir`, asserting success; returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_output(dir, args);
    assert!(
        out.status.success(),
        "git {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A working repository with one commit per name in `files`.
pub fn work_repo(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    git(dir.path(), &["init", "-q", "-b", "main"]);
    for (name, content) in files {
        commit_file(dir.path(), name, content);
    }
    dir
}

/// Writes `name` and commits it.
pub fn commit_file(dir: &Path, name: &str, content: &[u8]) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&path, content).expect("write file");
    git(dir, &["add", name]);
    git(dir, &["commit", "-q", "-m", &format!("add {name}")]);
}

/// Bytes that do not compress (for pushes of a given size).
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}
