//! A relay client for smee.io-compatible channels: subscribe with
//! Server-Sent Events, and re-post each event's headers and body to this
//! agent's `/hooks/github` or `/hooks/gitlab`, the body byte for byte (so
//! its signature still verifies). Reconnects with backoff.
//!
//! An event's `data` is a JSON object: the delivery's headers (lowercased
//! names), `body` (the payload) and `query`/`timestamp`, which are dropped.

use std::sync::Arc;
use std::time::Duration;

use crate::agent::Agent;
use futures_util::StreamExt as _;

/// Longest SSE line or event kept; longer ones are dropped (25 MB bodies
/// plus headers).
const MAX_EVENT: usize = 26 * 1024 * 1024;
/// Longest wait between reconnects.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Headers that belong to the hop, not the delivery.
const HOP_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "accept-encoding",
    "body",
    "query",
    "timestamp",
];

/// Runs the relay client until the agent stops.
pub fn start(agent: Arc<Agent>, channel: String) -> tokio::task::JoinHandle<()> {
    agent.tunnel.update(|s| {
        s.kind = "relay";
        s.public_url = Some(channel.clone());
    });
    tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        let mut backoff = Duration::from_secs(1);
        loop {
            let result = subscribe(&agent, &http, &channel, &mut backoff).await;
            let error = match result {
                Ok(()) => "the relay closed the stream".to_owned(),
                Err(e) => e,
            };
            tracing::info!(retry_in = ?backoff, "relay: {error}");
            agent.tunnel.down(error);
            tokio::select! {
                _ = agent.builds.stop.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    })
}

async fn subscribe(
    agent: &Arc<Agent>,
    http: &reqwest::Client,
    channel: &str,
    backoff: &mut Duration,
) -> Result<(), String> {
    let response = http
        .get(channel)
        .header("accept", "text/event-stream")
        .send()
        .await
        .map_err(|e| format!("cannot reach the relay: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("the relay answered {}", response.status()));
    }
    agent.tunnel.update(|s| {
        s.connected = true;
        s.last_error = None;
    });
    *backoff = Duration::from_secs(1);
    let mut stream = response.bytes_stream();
    let mut events = EventParser::default();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("the relay stream broke: {e}"))?;
        for (event, data) in events.push(&chunk) {
            if event.is_empty() || event == "message" {
                forward(agent, http, &data).await;
            }
        }
    }
    Ok(())
}

/// Re-posts one relayed delivery to this agent's receiver.
async fn forward(agent: &Arc<Agent>, http: &reqwest::Client, data: &str) {
    let Some((headers, body)) = split_event(data) else {
        tracing::info!("relay: an event without headers and body was skipped");
        return;
    };
    let provider = if headers.iter().any(|(k, _)| k == "x-gitlab-event") {
        "gitlab"
    } else {
        "github"
    };
    let mut request = http
        .post(format!("{}/hooks/{provider}", agent.url))
        .body(body.to_owned());
    for (name, value) in &headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let outcome = match request.send().await {
        Ok(r) => format!("{}", r.status()),
        Err(e) => format!("cannot post locally: {e}"),
    };
    tracing::info!(provider, "relay: delivery re-posted ({outcome})");
    agent.tunnel.update(|s| {
        s.deliveries += 1;
        s.last_delivery = Some(hangar_core::store::format_ms(hangar_core::store::now_ms()));
    });
}

/// The headers (string members, minus hop headers) and the raw text of
/// `body` from an event's JSON `data`; `None` if it is not such an object.
pub fn split_event(data: &str) -> Option<(Vec<(String, String)>, &str)> {
    let value: serde_json::Value = serde_json::from_str(data).ok()?;
    let object = value.as_object()?;
    let headers = object
        .iter()
        .filter(|(k, _)| !HOP_HEADERS.contains(&k.to_ascii_lowercase().as_str()))
        .filter_map(|(k, v)| Some((k.to_ascii_lowercase(), v.as_str()?.to_owned())))
        .collect();
    let body = match object.get("body")? {
        // A body relayed as a string is the payload itself.
        serde_json::Value::String(_) => {
            let raw = member_text(data, "body")?;
            return Some((headers, unquote_span(raw)?));
        }
        _ => member_text(data, "body")?,
    };
    Some((headers, body))
}

/// A string member's raw span is `"..."`; its payload must need no unescaping.
fn unquote_span(raw: &str) -> Option<&str> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('\\')).then_some(inner)
}

/// The exact text of the top-level member `key`'s value in a JSON object.
fn member_text<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let bytes = json.as_bytes();
    let mut i = json.find('{')? + 1;
    loop {
        i = skip_ws(bytes, i);
        if bytes.get(i) == Some(&b'}') {
            return None;
        }
        let key_end = string_end(bytes, i)?;
        let name: String = serde_json::from_str(&json[i..key_end]).ok()?;
        i = skip_ws(bytes, key_end);
        if bytes.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(bytes, i + 1);
        let end = value_end(bytes, start)?;
        if name == key {
            return Some(&json[start..end]);
        }
        i = skip_ws(bytes, end);
        match bytes.get(i) {
            Some(b',') => i += 1,
            _ => return None,
        }
    }
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// The index after the string starting at `i` (which must be `"`).
fn string_end(bytes: &[u8], i: usize) -> Option<usize> {
    if bytes.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    loop {
        match bytes.get(j)? {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
}

/// The index after the JSON value starting at `i`.
fn value_end(bytes: &[u8], i: usize) -> Option<usize> {
    match bytes.get(i)? {
        b'"' => string_end(bytes, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match bytes.get(j)? {
                    b'"' => {
                        j = string_end(bytes, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while bytes
                .get(j)
                .is_some_and(|b| !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace())
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// Splits a Server-Sent Events stream into `(event, data)` pairs.
#[derive(Default)]
pub struct EventParser {
    line: Vec<u8>,
    event: String,
    data: String,
    oversized: bool,
}

impl EventParser {
    pub fn push(&mut self, chunk: &[u8]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for &b in chunk {
            if b != b'\n' {
                if self.line.len() < MAX_EVENT {
                    self.line.push(b);
                } else {
                    self.oversized = true;
                }
                continue;
            }
            let line = String::from_utf8_lossy(&self.line)
                .trim_end_matches('\r')
                .to_owned();
            self.line.clear();
            if line.is_empty() {
                if !self.data.is_empty() && !self.oversized {
                    out.push((
                        std::mem::take(&mut self.event),
                        std::mem::take(&mut self.data),
                    ));
                }
                self.event.clear();
                self.data.clear();
                self.oversized = false;
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.event = value.to_owned(),
                "data" => {
                    if !self.data.is_empty() {
                        self.data.push('\n');
                    }
                    if self.data.len() + value.len() <= MAX_EVENT {
                        self.data.push_str(value);
                    } else {
                        self.oversized = true;
                    }
                }
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks() {
        let mut p = EventParser::default();
        assert!(p.push(b"event: ready\ndata: {}\n").is_empty());
        let out = p.push(b"\n: comment\ndata: {\"a\":\ndata: 1}\n\nevent: ping\ndata: x\n\n");
        assert_eq!(
            out,
            vec![
                ("ready".into(), "{}".into()),
                ("".into(), "{\"a\":\n1}".into()),
                ("ping".into(), "x".into())
            ]
        );
    }

    #[test]
    fn body_is_kept_byte_for_byte() {
        let data = r#"{"x-github-event":"push","Content-Type":"application/json","host":"smee.io","body":{"b": [1, "}"], "a":{}},"query":{},"timestamp":1}"#;
        let (headers, body) = split_event(data).unwrap();
        assert_eq!(body, r#"{"b": [1, "}"], "a":{}}"#);
        assert!(headers.contains(&("content-type".into(), "application/json".into())));
        assert!(!headers.iter().any(|(k, _)| k == "host" || k == "timestamp"));
        assert!(split_event("[1]").is_none());
        assert!(split_event(r#"{"x": "y"}"#).is_none());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in ".{0,200}", chunk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = split_event(&data);
            let _ = EventParser::default().push(&chunk);
        }
    }
}
