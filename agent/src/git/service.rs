//! Spawning `git upload-pack` / `git receive-pack` / `git upload-archive`
//! for one request, over HTTP or SSH.
//!
//! The pack protocol is C git's job; the agent only moves bytes between the
//! client and the child.

use std::path::Path;
use std::process::Stdio;

/// The git services a client may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    UploadPack,
    ReceivePack,
    /// `git archive --remote`; SSH only, as git's own HTTP backend has no such service.
    UploadArchive,
}

impl Service {
    /// From a program name (`git-upload-pack`), as SSH commands name it.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "git-upload-pack" => Some(Service::UploadPack),
            "git-receive-pack" => Some(Service::ReceivePack),
            "git-upload-archive" => Some(Service::UploadArchive),
            _ => None,
        }
    }

    /// From the `service=` query or the URL path of smart HTTP.
    pub fn parse_http(name: &str) -> Option<Self> {
        Self::parse(name).filter(|s| *s != Service::UploadArchive)
    }

    /// `upload-pack`, `receive-pack` or `upload-archive`.
    pub fn name(self) -> &'static str {
        match self {
            Service::UploadPack => "upload-pack",
            Service::ReceivePack => "receive-pack",
            Service::UploadArchive => "upload-archive",
        }
    }

    pub fn writes(self) -> bool {
        self == Service::ReceivePack
    }
}

/// The `GIT_PROTOCOL` value to pass on, if the client's is well-formed
/// (`version=2`, colon-separated `key=value` items); anything else is dropped
/// and git falls back to protocol v0.
pub fn protocol(header: Option<&str>) -> Option<&str> {
    header.filter(|p| {
        !p.is_empty()
            && p.len() <= 256
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b':' | b'.' | b'_' | b'-'))
    })
}

/// How the service talks to its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// HTTP `info/refs`: the ref advertisement only.
    Advertise,
    /// HTTP POST: one request, one response.
    StatelessRpc,
    /// SSH: one long conversation over stdin and stdout.
    Session,
}

/// A command for `service` on the bare repository at `repo` (an absolute,
/// validated path).
pub fn command(
    service: Service,
    repo: &Path,
    protocol: Option<&str>,
    mode: Mode,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg(service.name());
    match mode {
        Mode::Advertise => {
            cmd.arg("--stateless-rpc").arg("--advertise-refs");
        }
        Mode::StatelessRpc => {
            cmd.arg("--stateless-rpc");
        }
        Mode::Session => {}
    }
    // The path is absolute, so it can never read as an option.
    cmd.arg(repo);
    cmd.env_remove("GIT_DIR")
        .env_remove("GIT_CONFIG_PARAMETERS")
        .env_remove("GIT_PROTOCOL");
    if let Some(protocol) = protocol {
        cmd.env("GIT_PROTOCOL", protocol);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_protocol_values_pass() {
        assert_eq!(protocol(Some("version=2")), Some("version=2"));
        assert_eq!(
            protocol(Some("version=2:object-format=sha1")),
            Some("version=2:object-format=sha1")
        );
        assert_eq!(protocol(Some("version=2\nX=1")), None);
        assert_eq!(protocol(Some("")), None);
        assert_eq!(protocol(None), None);
    }

    #[test]
    fn upload_archive_is_not_an_http_service() {
        assert_eq!(
            Service::parse("git-upload-archive"),
            Some(Service::UploadArchive)
        );
        assert_eq!(Service::parse_http("git-upload-archive"), None);
        assert_eq!(
            Service::parse_http("git-receive-pack"),
            Some(Service::ReceivePack)
        );
    }
}
