//! Settings, layered: built-in defaults, then `config.toml` in the data dir,
//! then `HANGAR_*` environment variables, then command-line flags (applied by
//! the agent with [`Settings::set`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Everything the agent can be configured with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address of the HTTP server (API, git smart HTTP, UI).
    pub http: SocketAddr,
    /// Largest accepted push body, in MiB.
    pub max_push_mb: u64,
    /// How long in-flight requests get to finish at shutdown, in seconds.
    pub shutdown_grace_secs: u64,
    /// Repack repositories in the background after pushes.
    pub maintenance: bool,
    /// Jobs that run on the host at once.
    pub host_slots: usize,
    /// Jobs that run in Docker containers at once.
    pub docker_slots: usize,
    /// Jobs wait while less memory than this is free, in MiB.
    pub min_free_memory_mb: u64,
    /// Jobs wait while the data dir's disk has less free space than this, in MiB.
    pub min_free_disk_mb: u64,
    /// `runs-on` labels that run in a Docker container, with the image to use.
    pub docker_images: BTreeMap<String, String>,
    /// Largest job log kept, in MiB (the head and the tail are kept beyond it).
    pub max_log_mb: u64,
    /// Keep job workspaces after the job (for debugging).
    pub keep_workspaces: bool,
    /// Address of the SSH server (git over SSH).
    pub ssh: SocketAddr,
    /// Turns the SSH server off.
    pub no_ssh: bool,
    /// Most SSH connections served at once; more are refused until one ends.
    pub ssh_max_sessions: usize,
    /// Allow mirrors of loopback, link-local and private (LAN) addresses.
    pub allow_local_mirrors: bool,
    /// How often a mirror syncs unless given its own interval, in seconds.
    pub mirror_interval_secs: u64,
    /// How often a sync source (starred repos, an org) is polled, in seconds.
    pub mirror_source_interval_secs: u64,
    /// Most mirror syncs running at once.
    pub mirror_concurrency: usize,
    /// The first retry delay of a failed sync, in seconds (doubles per failure).
    pub mirror_backoff_secs: u64,
    /// Consecutive failures after which a mirror is `failing`.
    pub mirror_failing_after: u32,
    /// The URL the internet reaches this agent at (directly or through a
    /// tunnel): forge webhooks are registered to `PUBLIC_URL/hooks/...`, and
    /// commit statuses link to builds there.
    pub public_url: Option<String>,
    /// A smee.io-style relay channel to receive webhooks through (the
    /// agent subscribes and re-posts each event to its own `/hooks/...`).
    pub relay_url: Option<String>,
    /// An SSH server (`user@host[:port]`) to open a reverse tunnel to: it
    /// listens on `tunnel_remote_bind:tunnel_remote_port` and every
    /// connection there reaches this agent's `/hooks/*`.
    pub tunnel_ssh: Option<crate::tunnel::SshTarget>,
    /// The port the tunnel's server listens on for webhooks.
    pub tunnel_remote_port: u16,
    /// The address the tunnel's server listens on (`localhost` for a reverse
    /// proxy on that server; `0.0.0.0` needs `GatewayPorts` in its sshd).
    pub tunnel_remote_bind: String,
    /// The tunnel server's host key (`SHA256:...` or a public key line):
    /// the tunnel refuses any other server.
    pub tunnel_host_key: Option<crate::tunnel::HostKeyPin>,
    /// Days build artifacts are kept unless a workflow asks for fewer.
    pub artifact_retention_days: u32,
    /// Size cap of the `actions/cache` store, in MiB (least recently used go first).
    pub cache_max_mb: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            http: SocketAddr::from(([0, 0, 0, 0], 7070)),
            max_push_mb: 2048,
            shutdown_grace_secs: 10,
            maintenance: true,
            host_slots: 1,
            docker_slots: 2,
            min_free_memory_mb: 256,
            min_free_disk_mb: 1024,
            docker_images: crate::workflow::Host::default().docker,
            max_log_mb: 50,
            keep_workspaces: false,
            ssh: SocketAddr::from(([0, 0, 0, 0], 2222)),
            no_ssh: false,
            ssh_max_sessions: 64,
            allow_local_mirrors: false,
            mirror_interval_secs: 600,
            mirror_source_interval_secs: 3600,
            mirror_concurrency: 4,
            mirror_backoff_secs: 30,
            mirror_failing_after: 3,
            public_url: None,
            relay_url: None,
            tunnel_ssh: None,
            tunnel_remote_port: 8080,
            tunnel_remote_bind: "localhost".to_owned(),
            tunnel_host_key: None,
            artifact_retention_days: 30,
            cache_max_mb: 10240,
        }
    }
}

/// A setting that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {message}")]
    File { path: String, message: String },
    #[error("unknown setting `{0}` (see the README's configuration table)")]
    UnknownKey(String),
    #[error("setting `{key}` = {value:?} is not valid: {message}")]
    Value {
        key: String,
        value: String,
        message: String,
    },
}

impl Settings {
    /// Defaults, then `config_file` if it exists, then `HANGAR_*` variables from `env`.
    pub fn load(
        config_file: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut settings = match std::fs::read_to_string(config_file) {
            Ok(text) => toml::from_str(&text).map_err(|e| ConfigError::File {
                path: config_file.display().to_string(),
                message: e.message().to_owned(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Settings::default(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: config_file.display().to_string(),
                    source,
                });
            }
        };
        for (name, value) in env {
            let Some(key) = name.strip_prefix("HANGAR_") else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            // Variables that name the client side or the data dir are not settings.
            if matches!(key.as_str(), "data_dir" | "url" | "token" | "log") {
                continue;
            }
            settings.set(&key, &value)?;
        }
        Ok(settings)
    }

    /// Sets one setting from text, as written in the environment or on the command line.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let bad = |message: String| ConfigError::Value {
            key: key.to_owned(),
            value: value.to_owned(),
            message,
        };
        match key {
            "http" => {
                self.http = value
                    .parse()
                    .map_err(|_| bad("expected ADDRESS:PORT, e.g. 0.0.0.0:7070".into()))?
            }
            "max_push_mb" => {
                self.max_push_mb = value
                    .parse()
                    .map_err(|_| bad("expected a whole number of MiB".into()))?
            }
            "shutdown_grace_secs" => {
                self.shutdown_grace_secs = value
                    .parse()
                    .map_err(|_| bad("expected a whole number of seconds".into()))?
            }
            "host_slots" | "docker_slots" => {
                let slots = value
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| bad("expected a whole number of at least 1".into()))?;
                if key == "host_slots" {
                    self.host_slots = slots;
                } else {
                    self.docker_slots = slots;
                }
            }
            "min_free_memory_mb" | "min_free_disk_mb" => {
                let mb = value
                    .parse()
                    .map_err(|_| bad("expected a whole number of MiB".into()))?;
                if key == "min_free_memory_mb" {
                    self.min_free_memory_mb = mb;
                } else {
                    self.min_free_disk_mb = mb;
                }
            }
            "cache_max_mb" => {
                self.cache_max_mb = value
                    .parse()
                    .map_err(|_| bad("expected a whole number of MiB".into()))?
            }
            "artifact_retention_days" => {
                self.artifact_retention_days = value
                    .parse()
                    .ok()
                    .filter(|d| (1..=400).contains(d))
                    .ok_or_else(|| bad("expected a whole number of days from 1 to 400".into()))?
            }
            "docker_images" => self.docker_images = parse_images(value).map_err(bad)?,
            "max_log_mb" => {
                self.max_log_mb = value
                    .parse()
                    .map_err(|_| bad("expected a whole number of MiB".into()))?
            }
            "keep_workspaces" => {
                self.keep_workspaces =
                    parse_bool(value).ok_or_else(|| bad("expected true or false".into()))?
            }
            "maintenance" => {
                self.maintenance =
                    parse_bool(value).ok_or_else(|| bad("expected true or false".into()))?
            }
            "ssh" => {
                self.ssh = value
                    .parse()
                    .map_err(|_| bad("expected ADDRESS:PORT, e.g. 0.0.0.0:2222".into()))?
            }
            "no_ssh" => {
                self.no_ssh =
                    parse_bool(value).ok_or_else(|| bad("expected true or false".into()))?
            }
            "ssh_max_sessions" => {
                self.ssh_max_sessions = value
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad("expected a whole number above 0".into()))?
            }
            "allow_local_mirrors" => {
                self.allow_local_mirrors =
                    parse_bool(value).ok_or_else(|| bad("expected true or false".into()))?
            }
            "mirror_interval_secs" | "mirror_backoff_secs" | "mirror_source_interval_secs" => {
                let secs = value
                    .parse::<u64>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| bad("expected a whole number of seconds above 0".into()))?;
                match key {
                    "mirror_interval_secs" => self.mirror_interval_secs = secs,
                    "mirror_backoff_secs" => self.mirror_backoff_secs = secs,
                    _ => self.mirror_source_interval_secs = secs,
                }
            }
            "mirror_concurrency" => {
                self.mirror_concurrency = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=64).contains(n))
                    .ok_or_else(|| bad("expected a number from 1 to 64".into()))?
            }
            "mirror_failing_after" => {
                self.mirror_failing_after = value
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad("expected a number of failures above 0".into()))?
            }
            "public_url" | "relay_url" => {
                let url = value.trim_end_matches('/');
                let rest = url
                    .strip_prefix("https://")
                    .or_else(|| url.strip_prefix("http://"));
                let tame = url.len() <= 500
                    && rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
                    && !url
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control() || "?#@\\".contains(c));
                if !tame {
                    return Err(bad(
                        "expected an http(s) URL without query or credentials, e.g. https://build.example.com".into(),
                    ));
                }
                if key == "public_url" {
                    self.public_url = Some(url.to_owned());
                } else {
                    self.relay_url = Some(url.to_owned());
                }
            }
            "tunnel_ssh" => {
                self.tunnel_ssh = Some(crate::tunnel::SshTarget::parse(value).map_err(bad)?)
            }
            "tunnel_remote_port" => {
                self.tunnel_remote_port = value
                    .parse()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| bad("expected a port number from 1 to 65535".into()))?
            }
            "tunnel_remote_bind" => {
                crate::tunnel::check_bind(value).map_err(bad)?;
                self.tunnel_remote_bind = value.to_owned();
            }
            "tunnel_host_key" => {
                self.tunnel_host_key = Some(crate::tunnel::HostKeyPin::parse(value).map_err(bad)?)
            }
            _ => return Err(ConfigError::UnknownKey(key.to_owned())),
        }
        Ok(())
    }
}

/// `LABEL=IMAGE,LABEL=IMAGE` (the environment and command-line form of the
/// `[docker_images]` table); an empty value maps no label to Docker.
fn parse_images(value: &str) -> Result<BTreeMap<String, String>, String> {
    const MAX_LEN: usize = 8192;
    if value.len() > MAX_LEN {
        return Err(format!("longer than {MAX_LEN} bytes"));
    }
    value
        .split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((label, image))
                if !label.trim().is_empty()
                    && !image.trim().is_empty()
                    && !image.trim().contains(char::is_whitespace) =>
            {
                Ok((label.trim().to_owned(), image.trim().to_owned()))
            }
            _ => Err(format!(
                "expected LABEL=IMAGE pairs separated by commas, e.g. ubuntu-latest=ubuntu:24.04; got {pair:?}"
            )),
        })
        .collect()
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn layers_file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(&file, "http = \"127.0.0.1:8080\"\nmax_push_mb = 10\n").unwrap();
        let s = Settings::load(
            &file,
            env(&[
                ("HANGAR_MAX_PUSH_MB", "20"),
                ("HANGAR_TOKEN", "x"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(s.http.to_string(), "127.0.0.1:8080");
        assert_eq!(s.max_push_mb, 20);
        assert!(s.maintenance);
    }

    #[test]
    fn missing_file_means_defaults() {
        let s = Settings::load(Path::new("/nonexistent/config.toml"), Vec::new()).unwrap();
        assert_eq!(s, Settings::default());
    }

    #[test]
    fn errors_name_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(&file, "htp = \"x\"\n").unwrap();
        let err = Settings::load(&file, Vec::new()).unwrap_err().to_string();
        assert!(err.contains("htp"), "{err}");
        let err =
            Settings::load(Path::new("/nonexistent"), env(&[("HANGAR_HTTP", "nope")])).unwrap_err();
        assert!(err.to_string().contains("ADDRESS:PORT"), "{err}");
        let err = Settings::default().set("colour", "red").unwrap_err();
        assert!(matches!(err, ConfigError::UnknownKey(_)));
        let err = Settings::default()
            .set("ssh_max_sessions", "0")
            .unwrap_err();
        assert!(err.to_string().contains("above 0"), "{err}");
    }

    #[test]
    fn public_url() {
        let mut s = Settings::default();
        s.set("public_url", "https://build.example.com/").unwrap();
        assert_eq!(s.public_url.as_deref(), Some("https://build.example.com"));
        for bad in ["ftp://x", "https://", "https://u:p@x", "https://x/?q", "x"] {
            assert!(s.set("public_url", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn docker_settings() {
        let mut s = Settings::default();
        assert_eq!(s.docker_slots, 2);
        assert_eq!(s.docker_images["ubuntu-latest"], "ubuntu:24.04");
        s.set("docker_images", "linux = alpine:3, ci=localhost/ci:1")
            .unwrap();
        assert_eq!(s.docker_images.len(), 2);
        assert_eq!(s.docker_images["ci"], "localhost/ci:1");
        s.set("docker_images", "").unwrap();
        assert!(s.docker_images.is_empty());
        let err = s.set("docker_images", "ubuntu-latest").unwrap_err();
        assert!(err.to_string().contains("LABEL=IMAGE"), "{err}");
        assert!(s.set("docker_images", "a=b c").is_err());
        assert!(s.set("docker_slots", "0").is_err());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(
            &file,
            "docker_slots = 3\n[docker_images]\nlinux = \"debian:12\"\n",
        )
        .unwrap();
        let s = Settings::load(&file, Vec::new()).unwrap();
        assert_eq!((s.docker_slots, s.docker_images.len()), (3, 1));
    }

    proptest::proptest! {
        #[test]
        fn image_lists_parse_or_fail_cleanly(text in "[a-z0-9=,:./ -]{0,80}") {
            if let Ok(images) = parse_images(&text) {
                for (label, image) in images {
                    proptest::prop_assert!(!label.is_empty() && !image.is_empty());
                    proptest::prop_assert!(!image.contains(' '));
                }
            }
        }
    }

    #[test]
    fn tunnel_settings() {
        let mut s = Settings::default();
        assert_eq!(
            (s.tunnel_remote_port, s.tunnel_remote_bind.as_str()),
            (8080, "localhost")
        );
        s.set("tunnel_ssh", "me@example.com:2022").unwrap();
        s.set("tunnel_remote_port", "9000").unwrap();
        s.set("tunnel_remote_bind", "0.0.0.0").unwrap();
        assert_eq!(s.tunnel_ssh.as_ref().map(|t| t.port), Some(2022));
        let err = s.set("tunnel_ssh", "example.com").unwrap_err().to_string();
        assert!(
            err.contains("tunnel_ssh") && err.contains("USER@HOST"),
            "{err}"
        );
        assert!(s.set("tunnel_remote_port", "0").is_err());
        assert!(s.set("tunnel_host_key", "SHA256:nope").is_err());
    }

    #[test]
    fn ssh_settings() {
        let mut s = Settings::default();
        assert_eq!(s.ssh.port(), 2222);
        s.set("ssh", "127.0.0.1:0").unwrap();
        s.set("no_ssh", "yes").unwrap();
        s.set("ssh_max_sessions", "5").unwrap();
        assert_eq!(
            (s.ssh.to_string().as_str(), s.no_ssh, s.ssh_max_sessions),
            ("127.0.0.1:0", true, 5)
        );
    }
}
