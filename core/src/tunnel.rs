//! The SSH reverse tunnel's settings, parsed: the server to connect to
//! (`user@host[:port]`), the host key it must present, and the address it
//! listens on. Pure parsing; the connection lives in the agent.

use std::fmt;
use std::str::FromStr as _;

use serde::{Deserialize, Serialize};
use ssh_key::{Fingerprint, PublicKey};

/// Longest `user@host:port` accepted.
pub const MAX_TARGET: usize = 320;
/// Longest user name accepted (OpenSSH's own limit is higher; real ones are short).
const MAX_USER: usize = 64;
/// Longest host name (DNS's limit).
const MAX_HOST: usize = 253;

const TARGET_HELP: &str = "expected USER@HOST[:PORT], e.g. hangar@tunnel.example.com:22";

/// Where the tunnel connects: an SSH server the user owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SshTarget {
    pub user: String,
    /// A DNS name, an IPv4 address or an IPv6 address (without brackets).
    pub host: String,
    pub port: u16,
}

impl SshTarget {
    /// Parses `user@host[:port]`; IPv6 hosts go in brackets (`user@[::1]:22`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let fail = |why: &str| Err(format!("{why}; {TARGET_HELP}"));
        if text.len() > MAX_TARGET {
            return fail(&format!("longer than {MAX_TARGET} bytes"));
        }
        let Some((user, rest)) = text.split_once('@') else {
            return fail("no user (the part before @)");
        };
        let user_ok = !user.is_empty()
            && user.len() <= MAX_USER
            && !user.starts_with('-')
            && user
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !user_ok {
            return fail(&format!(
                "user {user:?} is not a plain user name (letters, digits, . _ -)"
            ));
        }
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let Some((host, after)) = bracketed.split_once(']') else {
                return fail("an IPv6 address in brackets is missing its ]");
            };
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return fail(&format!("{host:?} is not an IPv6 address"));
            }
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return fail(&format!("unexpected {after:?} after the address")),
                },
            }
        } else {
            match rest.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        let host_ok = !host.is_empty()
            && host.len() <= MAX_HOST
            && (rest.starts_with('[')
                || (!host.starts_with(['-', '.'])
                    && !host.contains("..")
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))));
        if !host_ok {
            return fail(&format!("host {host:?} is not a host name or address"));
        }
        let port = match port {
            None => 22,
            Some(port) => match port.parse::<u16>() {
                Ok(n) if n > 0 && port.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return fail(&format!("port {port:?} is not a number from 1 to 65535")),
            },
        };
        Ok(Self {
            user: user.to_owned(),
            host: host.to_owned(),
            port,
        })
    }

    /// `host:port` to connect to (IPv6 in brackets).
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for SshTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.user, self.address())
    }
}

impl TryFrom<String> for SshTarget {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text)
    }
}

impl From<SshTarget> for String {
    fn from(target: SshTarget) -> String {
        target.to_string()
    }
}

/// The host key the tunnel's server must present, pinned by its SHA256
/// fingerprint (given as `SHA256:...` or as the whole public key line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HostKeyPin {
    fingerprint: Fingerprint,
}

impl HostKeyPin {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.starts_with("SHA256:") {
            return match Fingerprint::from_str(text) {
                Ok(fingerprint) => Ok(Self { fingerprint }),
                Err(_) => Err(format!(
                    "{text:?} is not a SHA256 fingerprint (expected SHA256: and 43 base64 characters, as `ssh-keygen -lf KEY.pub` prints)"
                )),
            };
        }
        let key = crate::store::ssh_keys::parse(text).map_err(|e| {
            format!(
                "expected the server's host key as `SHA256:...` or an OpenSSH public key line ({e})"
            )
        })?;
        Self::parse(&key.fingerprint)
    }

    /// Whether `key` is the pinned one.
    pub fn matches(&self, key: &PublicKey) -> bool {
        key.fingerprint(self.fingerprint.algorithm()) == self.fingerprint
    }
}

impl fmt::Display for HostKeyPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fingerprint.fmt(f)
    }
}

impl TryFrom<String> for HostKeyPin {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text)
    }
}

impl From<HostKeyPin> for String {
    fn from(pin: HostKeyPin) -> String {
        pin.to_string()
    }
}

/// Checks the address the server should listen on for the tunnel
/// (`localhost`, an IP address, or `*` / `0.0.0.0` for every interface,
/// which the server's `GatewayPorts` must allow).
pub fn check_bind(text: &str) -> Result<(), String> {
    let ok = !text.is_empty()
        && text.len() <= MAX_HOST
        && !text.starts_with('-')
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'*'));
    if ok {
        Ok(())
    } else {
        Err("expected a host name or address for the server to listen on, e.g. localhost, 0.0.0.0 or *".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = SshTarget::parse("hangar@tunnel.example.com").unwrap();
        assert_eq!(
            (t.user.as_str(), t.host.as_str(), t.port),
            ("hangar", "tunnel.example.com", 22)
        );
        let t = SshTarget::parse("me@127.0.0.1:2200").unwrap();
        assert_eq!(
            (t.port, t.to_string().as_str()),
            (2200, "me@127.0.0.1:2200")
        );
        let t = SshTarget::parse("me@[::1]:2200").unwrap();
        assert_eq!(
            (t.host.as_str(), t.address().as_str()),
            ("::1", "[::1]:2200")
        );
        assert_eq!(SshTarget::parse("me@[::1]").unwrap().port, 22);
        for bad in [
            "",
            "host",
            "@host",
            "me@",
            "me@host:",
            "me@host:0",
            "me@host:65536",
            "me@host:+22",
            "me@host:22:22",
            "-oProxyCommand=x@host",
            "me@-host",
            "me@.host",
            "me@a..b",
            "me@ho st",
            "a@b@host",
            "me@[::1",
            "me@[nope]:22",
            "me@[::1]22",
            "me@::1",
        ] {
            let err = SshTarget::parse(bad).expect_err(bad);
            assert!(err.contains("USER@HOST"), "{bad}: {err}");
        }
        let config: crate::config::Settings = toml::from_str("tunnel_ssh = \"me@host:2\"").unwrap();
        assert_eq!(config.tunnel_ssh.unwrap().port, 2);
        assert!(toml::from_str::<crate::config::Settings>("tunnel_ssh = \"host\"").is_err());
    }

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHZ7W8E2IAXKVY1mlPZrpYRf/MDKaP7JtEzu0wShx/YG root@vm";

    #[test]
    fn host_key_pins() {
        let key = PublicKey::from_openssh(KEY).unwrap();
        let by_line = HostKeyPin::parse(KEY).unwrap();
        assert!(by_line.matches(&key));
        // What `ssh-keygen -lf` prints for this key.
        let printed = by_line.to_string();
        assert_eq!(
            printed,
            "SHA256:utGzgnTDSK+HcU1HozAXTVVvdp0MGTEa82LTjTXaOro"
        );
        let by_fingerprint = HostKeyPin::parse(&printed).unwrap();
        assert_eq!(by_fingerprint, by_line);
        let other = PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAwxnPtOzU2hQS6X3x4q7z4XnVFm/LKiFzmrq2QJOkkj",
        )
        .unwrap();
        assert!(!by_line.matches(&other));
        for bad in [
            "",
            "SHA256:",
            "SHA256:abc",
            "MD5:aa:bb",
            "ssh-ed25519 AAAA",
            "-----BEGIN OPENSSH PRIVATE KEY-----",
        ] {
            assert!(HostKeyPin::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn binds() {
        for ok in ["localhost", "127.0.0.1", "*", "0.0.0.0", "::1"] {
            check_bind(ok).unwrap();
        }
        for bad in ["", "-x", "a b", "a/b"] {
            assert!(check_bind(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn targets_parse_or_fail_cleanly(text in "[a-z0-9@:.\\[\\]_-]{0,40}") {
            if let Ok(target) = SshTarget::parse(&text) {
                // What parses prints back to text that parses to the same target.
                proptest::prop_assert_eq!(SshTarget::parse(&target.to_string()), Ok(target.clone()));
                proptest::prop_assert!(target.port > 0 && !target.user.is_empty() && !target.host.is_empty());
                proptest::prop_assert!(!target.user.starts_with('-') && !target.host.starts_with('-'));
            }
        }

        #[test]
        fn well_formed_targets_parse_to_their_parts(
            user in "[a-z_][a-z0-9._-]{0,20}",
            host in "([a-z0-9][a-z0-9-]{0,20}[.]){0,3}[a-z0-9]{1,10}",
            port in proptest::option::of(1u16..),
        ) {
            let text = match port {
                Some(p) => format!("{user}@{host}:{p}"),
                None => format!("{user}@{host}"),
            };
            let target = SshTarget::parse(&text).map_err(proptest::test_runner::TestCaseError::fail)?;
            proptest::prop_assert_eq!((target.user, target.host, target.port), (user, host, port.unwrap_or(22)));
        }

        #[test]
        fn long_or_odd_text_is_refused_without_panics(text in "\\PC{0,400}") {
            let _ = SshTarget::parse(&text);
            let _ = HostKeyPin::parse(&text);
            let _ = check_bind(&text);
        }
    }
}
