//! Spawning `git upload-pack` / `git receive-pack` for one request.
//!
//! The pack protocol is C git's job; the agent only moves bytes between the
//! client and the child.

use std::path::Path;
use std::process::Stdio;

/// The pack services a client may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    UploadPack,
    ReceivePack,
}

impl Service {
    /// From the `service=` query or the URL path (`git-upload-pack`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "git-upload-pack" => Some(Service::UploadPack),
            "git-receive-pack" => Some(Service::ReceivePack),
            _ => None,
        }
    }

    /// `upload-pack` or `receive-pack`.
    pub fn name(self) -> &'static str {
        match self {
            Service::UploadPack => "upload-pack",
            Service::ReceivePack => "receive-pack",
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

/// A command for `service` on the bare repository at `repo` (an absolute,
/// validated path). `advertise` asks for the ref advertisement only.
pub fn command(
    service: Service,
    repo: &Path,
    protocol: Option<&str>,
    advertise: bool,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg(service.name()).arg("--stateless-rpc");
    if advertise {
        cmd.arg("--advertise-refs");
    }
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
}
