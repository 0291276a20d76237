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
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ForgeError::Request(format!("{what}: {}", without_url(&e))))?;
        if !status.is_success() {
            let message = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            return Err(ForgeError::Status {
                status: status.as_u16(),
                what,
                message: message.chars().take(MAX_MESSAGE).collect(),
            });
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| ForgeError::Request(format!("{what}: the answer is not JSON: {e}")))
    }
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
    fn encodes_gitlab_ids() {
        assert_eq!(encode_path("group/sub/app"), "group%2Fsub%2Fapp");
    }
}
