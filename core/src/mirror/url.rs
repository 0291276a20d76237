//! Mirror URLs: which remotes the agent may fetch from or push to.
//!
//! Pure checks over text and addresses. Only `https`, `ssh` (also scp-like
//! `git@host:path`) and `git` are accepted, plain `http` only when asked for;
//! never local paths, `file:`, remote helpers (`ext::`), option-looking parts
//! or credentials. The agent resolves host names and checks every address
//! with [`check_address`] before git dials.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const MAX_LEN: usize = 2048;

/// The transports a mirror may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Https,
    Http,
    Ssh,
    Git,
}

impl Scheme {
    /// git's protocol name (for `protocol.NAME.allow`), also the URL scheme.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
            Scheme::Ssh => "ssh",
            Scheme::Git => "git",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Https => 443,
            Scheme::Http => 80,
            Scheme::Ssh => 22,
            Scheme::Git => 9418,
        }
    }
}

/// Why a mirror URL was refused. Each message says what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("the mirror URL is empty or longer than {MAX_LEN} characters")]
    Length,
    #[error("the mirror URL contains spaces or control characters")]
    Characters,
    #[error("the mirror URL may not start with `-` (it would be read as an option)")]
    LeadingDash,
    #[error(
        "remote helpers such as `ext::` or `fd::` are not allowed; use an https, ssh or git URL"
    )]
    Transport,
    #[error("local paths and file: URLs cannot be mirrored; use an https, ssh or git URL")]
    Local,
    #[error("the `{0}` scheme is not allowed; use https, ssh or git")]
    Scheme(String),
    #[error(
        "plain http sends everything unencrypted; use https, or pass --allow-http to accept it"
    )]
    PlainHttp,
    #[error(
        "credentials do not belong in the URL (they would be stored and logged); remove them and run `hangar mirror credential set {0} --token-stdin` (or `--ssh-key FILE`)"
    )]
    Credentials(String),
    #[error(
        "`{0}` looks like a command-line option; mirror URLs may not contain parts starting with `-`"
    )]
    Option(String),
    #[error("`{0}` is not a valid host name")]
    Host(String),
    #[error("`{0}` is not a valid port")]
    Port(String),
    #[error("the mirror URL names no repository path")]
    Path,
    #[error(
        "{host} is a local address ({ip}); mirrors of LAN or loopback hosts are off unless allowed with `hangar serve --allow-local-mirrors` or `allow_local_mirrors = true`"
    )]
    LocalAddress { host: String, ip: IpAddr },
}

/// A checked mirror URL. Its text form ([`fmt::Display`]) is what git is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorUrl {
    scheme: Scheme,
    user: Option<String>,
    host: String,
    port: Option<u16>,
    path: String,
    /// Written as `user@host:path` rather than `ssh://...`.
    scp: bool,
}

impl MirrorUrl {
    /// Parses and checks `text`; `allow_http` admits plain `http://`.
    pub fn parse(text: &str, allow_http: bool) -> Result<Self, UrlError> {
        if text.is_empty() || text.len() > MAX_LEN {
            return Err(UrlError::Length);
        }
        if text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
        {
            return Err(UrlError::Characters);
        }
        if text.starts_with('-') {
            return Err(UrlError::LeadingDash);
        }
        let scheme_end = text.find("://");
        let first_slash = text.find('/').unwrap_or(text.len());
        // `helper::address` runs a remote helper (ext:: runs any command).
        if text.find("::").is_some_and(|at| at < first_slash) {
            return Err(UrlError::Transport);
        }
        match scheme_end {
            Some(end) => Self::parse_url(&text[..end], &text[end + 3..], allow_http),
            None => Self::parse_scp(text),
        }
    }

    fn parse_url(scheme: &str, rest: &str, allow_http: bool) -> Result<Self, UrlError> {
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "https" => Scheme::Https,
            "http" if allow_http => Scheme::Http,
            "http" => return Err(UrlError::PlainHttp),
            "ssh" | "git+ssh" | "ssh+git" => Scheme::Ssh,
            "git" => Scheme::Git,
            "file" => return Err(UrlError::Local),
            other => return Err(UrlError::Scheme(other.chars().take(20).collect())),
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, ""),
        };
        if path.len() <= 1 || path.contains('?') || path.contains('#') {
            return Err(UrlError::Path);
        }
        let (user, host_port) = match authority.rsplit_once('@') {
            Some((user, host_port)) => (Some(user), host_port),
            None => (None, authority),
        };
        let (host, port) = split_host_port(host_port)?;
        if let Some(user) = user {
            // A user name is how ssh works; a password, or any user for
            // http(s) or git, is a credential.
            if scheme != Scheme::Ssh || user.contains(':') {
                return Err(UrlError::Credentials(authority_of(&host, port)));
            }
            check_part(user)?;
        }
        check_path(path)?;
        Ok(Self {
            scheme,
            user: user.map(str::to_owned),
            host,
            port,
            path: path.to_owned(),
            scp: false,
        })
    }

    fn parse_scp(text: &str) -> Result<Self, UrlError> {
        // git reads `host:path` as scp-like only when no `/` comes before the colon.
        let Some(colon) = text.find(':') else {
            return Err(UrlError::Local);
        };
        if text.find('/').is_some_and(|slash| slash < colon) {
            return Err(UrlError::Local);
        }
        let (user_host, path) = (&text[..colon], &text[colon + 1..]);
        let (user, host) = match user_host.rsplit_once('@') {
            Some((user, host)) => (Some(user), host),
            None => (None, user_host),
        };
        if host.is_empty() {
            return Err(UrlError::Host(String::new()));
        }
        let (host, _) = split_host_port(host)?;
        if let Some(user) = user {
            if user.contains(':') {
                return Err(UrlError::Credentials(host));
            }
            check_part(user)?;
        }
        if path.is_empty() || path == "/" {
            return Err(UrlError::Path);
        }
        check_part(path)?;
        check_path(path)?;
        Ok(Self {
            scheme: Scheme::Ssh,
            user: user.map(str::to_owned),
            host,
            port: None,
            path: path.to_owned(),
            scp: true,
        })
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host name or address, without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port.unwrap_or(self.scheme.default_port())
    }

    /// `host` or `host:port` (non-default port): the name credentials are kept under.
    pub fn authority(&self) -> String {
        authority_of(&self.host, self.port)
    }

    /// The configuration git must run with for this URL: no redirects (they
    /// could lead to a local address after the check) and no transport but
    /// this URL's own.
    pub fn git_config(&self) -> Vec<String> {
        vec![
            "http.followRedirects=false".to_owned(),
            "protocol.allow=never".to_owned(),
            format!("protocol.{}.allow=always", self.scheme.as_str()),
        ]
    }

    /// A local `OWNER/NAME` suggested by the path: its last two segments
    /// without `.git` (`mirrors/NAME` when there is only one).
    pub fn suggested_name(&self) -> String {
        let path = self.path.trim_matches('/');
        let path = path.strip_suffix(".git").unwrap_or(path);
        let mut segments = path
            .rsplit('/')
            .filter(|s| !s.is_empty() && !s.starts_with('~'));
        match (segments.next(), segments.next()) {
            (Some(name), Some(owner)) => format!("{owner}/{name}"),
            (Some(name), None) => format!("mirrors/{name}"),
            _ => "mirrors/repo".to_owned(),
        }
    }
}

impl fmt::Display for MirrorUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let user = self
            .user
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.scp {
            return write!(f, "{user}{host}:{}", self.path);
        }
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        write!(
            f,
            "{}://{user}{host}{port}{}",
            self.scheme.as_str(),
            self.path
        )
    }
}

fn authority_of(host: &str, port: Option<u16>) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    match port {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

fn split_host_port(text: &str) -> Result<(String, Option<u16>), UrlError> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| UrlError::Host(text.to_owned()))?;
        host.parse::<Ipv6Addr>()
            .map_err(|_| UrlError::Host(text.to_owned()))?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| UrlError::Host(text.to_owned()))?,
                ),
            ),
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.starts_with('-') {
        return Err(UrlError::Option(host.to_owned()));
    }
    let valid = !host.is_empty()
        && host.len() <= 253
        && (host.contains(':')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')));
    if !valid || host.starts_with('.') {
        return Err(UrlError::Host(host.to_owned()));
    }
    let port = match port {
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| UrlError::Port(p.to_owned()))?,
        ),
        None => None,
    };
    Ok((host.to_ascii_lowercase(), port))
}

fn check_part(part: &str) -> Result<(), UrlError> {
    if part.starts_with('-') {
        return Err(UrlError::Option(part.to_owned()));
    }
    Ok(())
}

fn check_path(path: &str) -> Result<(), UrlError> {
    for segment in path.split('/') {
        check_part(segment)?;
    }
    Ok(())
}

/// Refuses loopback, private, link-local, shared (CGNAT), unspecified and
/// multicast addresses, unless `allow_local`.
pub fn check_address(host: &str, ip: IpAddr, allow_local: bool) -> Result<(), UrlError> {
    if allow_local || !is_local(ip) {
        return Ok(());
    }
    Err(UrlError::LocalAddress {
        host: host.to_owned(),
        ip,
    })
}

/// True for addresses on this machine or the LAN rather than the internet.
pub fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_local_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_local_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        }
    }
}

fn is_local_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
}

/// Host names that always mean this machine, whatever DNS says.
pub fn is_local_name(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    host == "localhost" || host.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(text: &str) -> MirrorUrl {
        MirrorUrl::parse(text, false).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn accepts_the_usual_remotes() {
        let url = ok("https://github.com/rust-lang/rust.git");
        assert_eq!(url.scheme(), Scheme::Https);
        assert_eq!(url.host(), "github.com");
        assert_eq!(url.authority(), "github.com");
        assert_eq!(url.suggested_name(), "rust-lang/rust");
        assert_eq!(url.to_string(), "https://github.com/rust-lang/rust.git");

        let scp = ok("git@github.com:acme/app.git");
        assert_eq!(scp.scheme(), Scheme::Ssh);
        assert_eq!(scp.to_string(), "git@github.com:acme/app.git");
        assert_eq!(scp.suggested_name(), "acme/app");

        let ssh = ok("ssh://git@gitlab.example.com:2222/group/sub/app");
        assert_eq!(ssh.port(), 2222);
        assert_eq!(ssh.authority(), "gitlab.example.com:2222");
        assert_eq!(ssh.suggested_name(), "sub/app");

        assert_eq!(ok("git://[::1]:9000/x.git").authority(), "[::1]:9000");
        assert_eq!(ok("git://example.com/x.git").suggested_name(), "mirrors/x");
        let http = MirrorUrl::parse("http://example.com/a/b", true).unwrap();
        assert_eq!(http.git_config()[2], "protocol.http.allow=always");
    }

    #[test]
    fn refuses_hostile_urls_with_advice() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("file:///etc/passwd", "file: URLs"),
            ("/srv/git/app.git", "local paths"),
            ("../app", "local paths"),
            ("ext::sh -c touch% /tmp/pwned", "spaces"),
            ("ext::sh%20-c%20id", "remote helpers"),
            ("fd::3", "remote helpers"),
            ("-uhttps://x/y", "start with `-`"),
            ("--upload-pack=touch /tmp/x", "spaces"),
            ("ssh://-oProxyCommand=touch%20x/a", "option"),
            ("ssh://git@-oProxyCommand=x:22/a", "option"),
            ("-oProxyCommand=x:a", "start with `-`"),
            ("git@host:-x/a.git", "option"),
            ("ssh://-user@host/a", "option"),
            ("https://host/a/--upload-pack=x", "option"),
            ("http://example.com/a", "--allow-http"),
            (
                "https://user:secret@github.com/a/b",
                "credential set github.com",
            ),
            (
                "https://ghp_token@github.com/a/b",
                "credential set github.com",
            ),
            ("git@host:", "no repository path"),
            ("https://github.com/", "no repository path"),
            ("https://github.com", "no repository path"),
            ("ftp://example.com/a", "`ftp` scheme"),
            ("https://exa mple.com/a", "spaces"),
            ("https://example.com:99999/a", "not a valid port"),
            ("https://exa$mple.com/a", "not a valid host"),
            ("https://[::1/a", "not a valid host"),
            ("https://host/a\nb", "control"),
        ];
        for (text, hint) in cases {
            let err = MirrorUrl::parse(text, false)
                .err()
                .unwrap_or_else(|| panic!("{text:?} was accepted"))
                .to_string();
            assert!(err.contains(hint), "{text:?}: {err}");
        }
    }

    #[test]
    fn local_addresses_are_refused_unless_allowed() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.10",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let err = check_address("h", ip, false).unwrap_err().to_string();
            assert!(err.contains("--allow-local-mirrors"), "{ip}: {err}");
            assert!(check_address("h", ip, true).is_ok());
        }
        for ip in ["140.82.112.3", "2606:4700::1111", "8.8.8.8"] {
            assert!(
                check_address("h", ip.parse().unwrap(), false).is_ok(),
                "{ip}"
            );
        }
        assert!(is_local_name("localhost") && is_local_name("a.localhost."));
        assert!(!is_local_name("example.com"));
    }

    #[test]
    fn double_colons_are_helpers_only_before_the_path() {
        assert!(MirrorUrl::parse("0:::", true).is_err());
        assert!(MirrorUrl::parse("ext::sh -c x", true).is_err());
        let url = MirrorUrl::parse("ssh://0/::", true).expect("a path may hold ::");
        assert_eq!(url.to_string(), "ssh://0/::");
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,80}") {
            let _ = MirrorUrl::parse(&text, true);
        }

        /// Whatever is accepted is safe to hand to git after `--end-of-options`
        /// and parses again to itself.
        #[test]
        fn accepted_urls_are_safe_and_stable(
            scheme in prop::sample::select(vec!["https://", "ssh://", "git://", "http://", ""]),
            user in prop::option::of("[-a-z:]{1,5}"),
            host in "[-a-z0-9.:\\[\\]]{0,12}",
            path in "[-a-z0-9/._~:@]{0,20}",
        ) {
            let user = user.map(|u| format!("{u}@")).unwrap_or_default();
            let sep = if scheme.is_empty() { ":" } else { "/" };
            let text = format!("{scheme}{user}{host}{sep}{path}");
            if let Ok(url) = MirrorUrl::parse(&text, true) {
                let shown = url.to_string();
                prop_assert!(!shown.starts_with('-'));
                // git reads `NAME::` at the start (NAME of URL-scheme
                // characters) as a remote helper; `::` after a `/` is a path.
                prop_assert!(shown.find("::").is_none_or(|at| shown[..at].contains('/')), "{}", shown);
                prop_assert!(!shown.split('/').any(|p| p.starts_with('-')), "{}", shown);
                prop_assert!(url.user.is_none() || url.scheme() == Scheme::Ssh);
                prop_assert_eq!(MirrorUrl::parse(&shown, true), Ok(url));
            }
        }
    }
}
