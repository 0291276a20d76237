//! The HTTP side shared by the GitHub and GitLab clients: one reqwest client,
//! a timeout, JSON in and out, and rate limits honoured (once the forge says
//! the budget is spent, calls fail fast until its reset time).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::ForgeError;

/// Longest one API call may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Most of an error body kept in a message.
const MAX_MESSAGE: usize = 300;

pub struct Api {
    http: reqwest::Client,
    base: String,
    auth: (&'static str, String),
    blocked_until: Mutex<Option<Instant>>,
}

impl Api {
    /// `base` is the API root (`https://api.github.com`, `https://gitlab.com/api/v4`).
    pub fn new(base: &str, auth: (&'static str, String)) -> Self {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hangar/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            auth,
            blocked_until: Mutex::new(None),
        }
    }

    /// Sends a request to `path` (below the base) and returns the JSON answer
    /// (`Null` for an empty body).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        extra: &[(&'static str, &'static str)],
    ) -> Result<Value, ForgeError> {
        let what = format!("{method} {path}");
        let (status, _, bytes) = self.exchange(method, path, body, extra, None).await?;
        json_answer(&what, status, &bytes)
    }

    /// A conditional GET: `None` when the forge answers 304 Not Modified to
    /// `etag` (GitHub does not count those against the rate limit), else the
    /// JSON answer and its headers (ETag, pagination).
    pub async fn get_if_changed(
        &self,
        path: &str,
        etag: Option<&str>,
        extra: &[(&'static str, &'static str)],
    ) -> Result<Option<(Value, HeaderMap)>, ForgeError> {
        let what = format!("GET {path}");
        let (status, headers, bytes) = self.exchange(Method::GET, path, None, extra, etag).await?;
        if status == StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        Ok(Some((json_answer(&what, status, &bytes)?, headers)))
    }

    /// One request with rate limits honoured: fails fast while the forge
    /// said the budget is spent, and notes a spent budget it reports.
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        extra: &[(&'static str, &'static str)],
        etag: Option<&str>,
    ) -> Result<(StatusCode, HeaderMap, bytes::Bytes), ForgeError> {
        if let Some(until) = *self.blocked_until.lock().unwrap_or_else(|p| p.into_inner())
            && let Some(left) = until.checked_duration_since(Instant::now())
        {
            return Err(ForgeError::RateLimited {
                retry_after_secs: left.as_secs().max(1),
            });
        }
        let what = format!("{method} {path}");
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(self.auth.0, &self.auth.1);
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        if let Some(etag) = etag {
            request = request.header("if-none-match", etag);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ForgeError::Request(format!("{what}: {}", without_url(&e))))?;
        let status = response.status();
        if let Some(wait) = rate_limit_wait(status, response.headers()) {
            *self.blocked_until.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(Instant::now() + wait);
            return Err(ForgeError::RateLimited {
                retry_after_secs: wait.as_secs().max(1),
            });
        }
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ForgeError::Request(format!("{what}: {}", without_url(&e))))?;
        Ok((status, headers, bytes))
    }

    /// The API root, to tell pagination links to this forge from others.
    pub fn base(&self) -> &str {
        &self.base
    }
}

/// The JSON of a successful answer (`Null` when empty), or the forge's error.
fn json_answer(what: &str, status: StatusCode, bytes: &[u8]) -> Result<Value, ForgeError> {
    if !status.is_success() {
        let message = serde_json::from_slice::<Value>(bytes)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(bytes).into_owned());
        return Err(ForgeError::Status {
            status: status.as_u16(),
            what: what.to_owned(),
            message: message.chars().take(MAX_MESSAGE).collect(),
        });
    }
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ForgeError::Request(format!("{what}: the answer is not JSON: {e}")))
}

/// Longest `Link` header read, and most links in it.
const MAX_LINK_HEADER: usize = 8192;
const MAX_LINKS: usize = 16;

/// The `rel="next"` target of a `Link` header (RFC 8288, as GitHub sends
/// it) as a path below `base`: `None` on the last page. A next link to
/// another origin or outside the API is an error: the token must never
/// follow it there.
pub fn next_link(header: &str, base: &str) -> Result<Option<String>, String> {
    if header.len() > MAX_LINK_HEADER {
        return Err(format!(
            "the Link header is longer than {MAX_LINK_HEADER} bytes"
        ));
    }
    let mut next = None;
    for (n, link) in header.split(',').enumerate() {
        if n >= MAX_LINKS {
            return Err(format!("the Link header has more than {MAX_LINKS} links"));
        }
        let link = link.trim();
        if link.is_empty() {
            continue;
        }
        let (target, params) = link
            .strip_prefix('<')
            .and_then(|l| l.split_once('>'))
            .ok_or_else(|| format!("a Link entry is not <URL>; rel=...: {link:.80}"))?;
        let is_next = params.split(';').any(|p| {
            p.trim()
                .strip_prefix("rel=")
                .map(|r| r.trim_matches('"'))
                .is_some_and(|r| r.split_ascii_whitespace().any(|r| r == "next"))
        });
        if is_next {
            next = Some(target);
        }
    }
    let Some(target) = next else {
        return Ok(None);
    };
    let path = target
        .strip_prefix(base)
        .filter(|p| p.starts_with('/') && !p.starts_with("//"))
        .ok_or_else(|| format!("the next page {target:.120} is not below {base}"))?;
    if path.len() > 2000 || path.contains("..") || path.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        return Err(format!(
            "the next page {target:.120} is not a plain API path"
        ));
    }
    Ok(Some(path.to_owned()))
}

/// reqwest errors name the URL; ours carry no secrets, but keep messages short.
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "");
    }
    if e.is_connect() {
        text = format!("cannot connect ({text})");
    }
    text
}

/// How long to wait when the answer says the rate limit is spent: GitHub
/// (`x-ratelimit-remaining: 0` + `x-ratelimit-reset` epoch seconds),
/// GitLab (`ratelimit-remaining` / `ratelimit-reset`), or `retry-after`.
pub fn rate_limit_wait(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let number = |name: &str| -> Option<u64> {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
    };
    if let Some(secs) = number("retry-after") {
        return Some(Duration::from_secs(secs.min(3600)));
    }
    let remaining = number("x-ratelimit-remaining").or_else(|| number("ratelimit-remaining"));
    if remaining == Some(0) {
        let reset = number("x-ratelimit-reset").or_else(|| number("ratelimit-reset"))?;
        let now = jiff::Timestamp::now().as_second().max(0) as u64;
        return Some(Duration::from_secs(
            reset.saturating_sub(now).clamp(1, 3600),
        ));
    }
    (status == StatusCode::TOO_MANY_REQUESTS).then_some(Duration::from_secs(60))
}

/// Whether a listed webhook is ours: it posts to `url`, or it is the one
/// registered before (`previous`, its id) under an older public URL.
pub fn same_hook(hook: &Value, hook_url: &Value, url: &str, previous: Option<&str>) -> bool {
    hook_url.as_str() == Some(url)
        || previous
            .and_then(|p| p.parse::<u64>().ok())
            .is_some_and(|p| hook["id"].as_u64() == Some(p))
}

/// The id of a webhook as the forge answered its creation or update.
pub fn hook_id(remote: &str, hook: &Value) -> Result<String, ForgeError> {
    match &hook["id"] {
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(ForgeError::Request(format!(
            "{remote}: the hook answer has no `id`"
        ))),
    }
}

/// `owner/name` as one URL path segment (GitLab's `:id`).
pub fn encode_path(remote: &str) -> String {
    let mut out = String::new();
    for b in remote.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits() {
        let mut headers = HeaderMap::new();
        assert_eq!(rate_limit_wait(StatusCode::FORBIDDEN, &headers), None);
        headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(
            rate_limit_wait(StatusCode::TOO_MANY_REQUESTS, &headers),
            Some(Duration::from_secs(7))
        );
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
        let reset = jiff::Timestamp::now().as_second() + 30;
        headers.insert("x-ratelimit-reset", reset.to_string().parse().unwrap());
        let wait = rate_limit_wait(StatusCode::FORBIDDEN, &headers).unwrap();
        assert!((29..=30).contains(&wait.as_secs()), "{wait:?}");
        assert_eq!(rate_limit_wait(StatusCode::OK, &headers), None);
    }

    #[test]
    fn next_links() {
        let base = "https://api.github.com";
        let header = r#"<https://api.github.com/user/9/starred?per_page=100&page=2>; rel="next", <https://api.github.com/user/9/starred?per_page=100&page=4>; rel="last""#;
        assert_eq!(
            next_link(header, base).unwrap().as_deref(),
            Some("/user/9/starred?per_page=100&page=2")
        );
        let last = r#"<https://api.github.com/x?page=1>; rel="first", <https://api.github.com/x?page=3>; rel="prev""#;
        assert_eq!(next_link(last, base).unwrap(), None);
        assert_eq!(next_link("", base).unwrap(), None);
        for bad in [
            r#"<https://evil.example/x?page=2>; rel="next""#,
            r#"<https://api.github.com.evil.example/x>; rel="next""#,
            r#"<https://api.github.com//evil.example/x>; rel="next""#,
            r#"<https://api.github.com/../x>; rel="next""#,
            r#"https://api.github.com/x; rel="next""#,
        ] {
            assert!(next_link(bad, base).is_err(), "{bad}");
        }
        let many = vec![r#"<https://api.github.com/x>; rel="prev""#; 17].join(", ");
        assert!(next_link(&many, base).unwrap_err().contains("more than"));
        let long = format!("<{base}/{}>; rel=\"next\"", "a".repeat(9000));
        assert!(next_link(&long, base).unwrap_err().contains("longer"));
    }

    proptest::proptest! {
        #[test]
        fn next_links_stay_below_the_base(header in ".{0,300}") {
            if let Ok(Some(path)) = next_link(&header, "https://api.github.com") {
                proptest::prop_assert!(path.starts_with('/') && !path.starts_with("//"));
                proptest::prop_assert!(!path.contains("..") && path.len() <= 2000);
                proptest::prop_assert!(path.bytes().all(|b| b > b' ' && b < 0x7f));
            }
        }

        #[test]
        fn built_next_links_are_found(page in 2u32..1000, extra in "[a-z]{0,10}") {
            let header = format!("<https://api.github.com/orgs/o/repos?page={page}&x={extra}>; rel=\"next\", <https://api.github.com/orgs/o/repos?page=1>; rel=\"first\"");
            let path = next_link(&header, "https://api.github.com").unwrap();
            proptest::prop_assert_eq!(path, Some(format!("/orgs/o/repos?page={page}&x={extra}")));
        }
    }

    #[test]
    fn encodes_gitlab_ids() {
        assert_eq!(encode_path("group/sub/app"), "group%2Fsub%2Fapp");
    }
}
