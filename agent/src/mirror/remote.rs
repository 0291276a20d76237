//! Running git against a mirror's remote, safely.
//!
//! Every command gets: no system or global git config (an `insteadOf` there
//! could send git elsewhere), no redirects, only the URL's own transport,
//! `--end-of-options` before the URL (added by the callers), no prompts, and
//! the host checked against local addresses at dial time (for http(s) the
//! checked address is pinned, so DNS cannot change it between check and use).
//! Credentials travel in the environment or a temporary 0600 key file, never
//! in the URL, the command line, a file left on disk, or a log.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use hangar_core::mirror::url::{self, MirrorUrl, Scheme, UrlError};
use tokio::io::AsyncReadExt as _;

use super::credentials::{self, Credential};
use crate::agent::Agent;

/// Longest a single git run may take before it is stopped.
const GIT_TIMEOUT: Duration = Duration::from_secs(3600);

/// Resolves the URL's host and refuses local addresses (unless allowed).
/// Returns the address to pin for http(s).
pub async fn check_host(url: &MirrorUrl, allow_local: bool) -> Result<Option<IpAddr>, String> {
    if allow_local {
        return Ok(None);
    }
    let host = url.host();
    if let Ok(ip) = host.parse::<IpAddr>() {
        url::check_address(host, ip, false).map_err(|e| e.to_string())?;
        return Ok(None);
    }
    if url::is_local_name(host) {
        return Err(UrlError::LocalAddress {
            host: host.to_owned(),
            ip: IpAddr::from([127, 0, 0, 1]),
        }
        .to_string());
    }
    let lookup = tokio::net::lookup_host((host, url.port()));
    let addrs: Vec<_> = tokio::time::timeout(Duration::from_secs(15), lookup)
        .await
        .map_err(|_| format!("looking up {host} timed out"))?
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    for addr in &addrs {
        url::check_address(host, addr.ip(), false).map_err(|e| e.to_string())?;
    }
    addrs
        .first()
        .map(|a| Some(a.ip()))
        .ok_or_else(|| format!("{host} has no addresses"))
}

/// A remote ready for git: checked URL, pinned address, credential.
pub struct Remote {
    pub url: MirrorUrl,
    pin: Option<IpAddr>,
    credential: Option<Credential>,
    known_hosts: PathBuf,
}

impl Remote {
    /// Parses and checks `text` and looks up the host's credential.
    pub async fn open(agent: &Agent, text: &str, allow_http: bool) -> Result<Self, String> {
        let url = MirrorUrl::parse(text, allow_http).map_err(|e| e.to_string())?;
        let pin = check_host(&url, agent.settings.allow_local_mirrors).await?;
        let credential = credentials::get(agent.secrets.as_ref(), &url.authority())
            .map_err(|e| format!("cannot read the credential for {}: {e}", url.authority()))?;
        Ok(Self {
            url,
            pin,
            credential,
            known_hosts: agent.data.root().join("mirror_known_hosts"),
        })
    }

    /// git's error, with advice when the host wants credentials it lacks.
    pub fn explain(&self, error: String) -> String {
        let auth = [
            "could not read Username",
            "Authentication failed",
            "Permission denied (publickey",
        ];
        if auth.iter().any(|a| error.contains(a)) {
            let host = self.url.authority();
            let how = if self.url.scheme() == Scheme::Ssh {
                "--ssh-key FILE"
            } else {
                "--token-stdin"
            };
            let which = if self.credential.is_some() {
                "rejected the stored credential"
            } else {
                "asks for credentials"
            };
            return format!(
                "{error}\n{host} {which}: run `hangar mirror credential set {host} {how}`"
            );
        }
        error
    }

    /// `git -c ... --git-dir DIR` with the safe environment. The SSH key file,
    /// when there is one, lives as long as the returned guard.
    pub fn git(&self, git_dir: &Path) -> std::io::Result<(tokio::process::Command, KeyFile)> {
        let (mut cmd, key_file) = self.command()?;
        cmd.arg("--git-dir").arg(git_dir);
        Ok((cmd, key_file))
    }

    /// `git -c ...` with the safe environment and no repository, for `clone`.
    pub fn command(&self) -> std::io::Result<(tokio::process::Command, KeyFile)> {
        let mut cmd = tokio::process::Command::new("git");
        for item in self.url.git_config() {
            cmd.arg("-c").arg(item);
        }
        if let (Some(ip), Scheme::Https | Scheme::Http) = (self.pin, self.url.scheme()) {
            let ip = match ip {
                IpAddr::V6(v6) => format!("[{v6}]"),
                IpAddr::V4(v4) => v4.to_string(),
            };
            cmd.arg("-c").arg(format!(
                "http.curloptResolve={}:{}:{ip}",
                self.url.host(),
                self.url.port()
            ));
        }
        for var in [
            "GIT_DIR",
            "GIT_CONFIG_PARAMETERS",
            "GIT_ASKPASS",
            "SSH_ASKPASS",
            "GIT_SSH",
            "GIT_PROXY_COMMAND",
            "GIT_TRACE",
            "GIT_TRACE_CURL",
            "GIT_TRACE_PACKET",
            "GIT_CURL_VERBOSE",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_COUNT", "0");
        let mut ssh = format!(
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={}",
            shell_quote(&self.known_hosts.display().to_string())
        );
        let mut key_file = KeyFile { _path: None };
        match &self.credential {
            Some(Credential::Token { username, token }) => {
                let basic =
                    base64::engine::general_purpose::STANDARD.encode(format!("{username}:{token}"));
                cmd.env("GIT_CONFIG_COUNT", "1")
                    .env(
                        "GIT_CONFIG_KEY_0",
                        format!(
                            "http.{}://{}/.extraHeader",
                            self.url.scheme().as_str(),
                            self.url.authority()
                        ),
                    )
                    .env(
                        "GIT_CONFIG_VALUE_0",
                        format!("Authorization: Basic {basic}"),
                    );
            }
            Some(Credential::SshKey { key }) => {
                let file = write_key(key)?;
                ssh.push_str(&format!(
                    " -o IdentitiesOnly=yes -i {}",
                    shell_quote(&file.display().to_string())
                ));
                key_file = KeyFile { _path: Some(file) };
            }
            None => {}
        }
        cmd.env("GIT_SSH_COMMAND", ssh);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        Ok((cmd, key_file))
    }
}

/// A temporary SSH key file, removed when dropped.
pub struct KeyFile {
    _path: Option<tempfile::TempPath>,
}

fn write_key(key: &str) -> std::io::Result<tempfile::TempPath> {
    use std::io::Write as _;
    // tempfile creates files 0600.
    let mut file = tempfile::Builder::new().prefix("hangar-key-").tempfile()?;
    file.write_all(key.as_bytes())?;
    if !key.ends_with('\n') {
        file.write_all(b"\n")?;
    }
    file.flush()?;
    Ok(file.into_temp_path())
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// What a git run printed: stdout, and the last lines of stderr.
pub struct Output {
    pub stdout: String,
    pub errors: String,
}

/// Runs `cmd`, handing each progress line on stderr (split at `\r` and
/// `\n`) to `progress`. Fails with git's last error lines.
pub async fn run(
    mut cmd: tokio::process::Command,
    progress: tokio::sync::watch::Sender<String>,
) -> Result<Output, String> {
    let mut child = cmd.spawn().map_err(|e| format!("cannot run git: {e}"))?;
    let mut stdout = child.stdout.take().ok_or("git has no stdout")?;
    let mut stderr = child.stderr.take().ok_or("git has no stderr")?;
    let out = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text).await;
        text
    });
    let work = async {
        let mut lines: Vec<String> = Vec::new();
        let mut pending = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stderr.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&chunk[..n]);
            while let Some(at) = pending.iter().position(|b| *b == b'\r' || *b == b'\n') {
                let line = String::from_utf8_lossy(&pending[..at]).trim().to_owned();
                pending.drain(..=at);
                if line.is_empty() {
                    continue;
                }
                let _ = progress.send(line.clone());
                if !is_progress(&line) {
                    lines.push(line);
                    if lines.len() > 20 {
                        lines.remove(0);
                    }
                }
            }
        }
        let status = child.wait().await;
        (status, lines.join("\n"))
    };
    let (status, errors) = tokio::time::timeout(GIT_TIMEOUT, work)
        .await
        .map_err(|_| format!("git did not finish within {GIT_TIMEOUT:?}"))?;
    let stdout = out.await.unwrap_or_default();
    match status {
        Ok(status) if status.success() => Ok(Output { stdout, errors }),
        Ok(status) => Err(if errors.is_empty() {
            format!("git exited with {status}")
        } else {
            errors
        }),
        Err(e) => Err(format!("cannot wait for git: {e}")),
    }
}

/// git's transfer progress lines ("Receiving objects:  45% ..."), which are
/// not worth keeping as errors.
fn is_progress(line: &str) -> bool {
    line.contains('%') && (line.contains("objects") || line.contains("deltas"))
        || line.starts_with("remote: Counting")
        || line.starts_with("remote: Compressing")
        || line.starts_with("remote: Enumerating")
        || line.starts_with("remote: Total")
}
