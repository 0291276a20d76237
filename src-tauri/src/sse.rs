//! The client side of the agent's server-sent event stream
//! (`GET /api/v1/events`): a pure, bounded parser of the `text/event-stream`
//! format and the reconnect policy. No I/O here; the tray feeds it bytes.
//!
//! The agent does not number its events (no `id:` lines), so there is no
//! `Last-Event-ID` to resume from: after every (re)connect the tray reads the
//! state it shows from the REST API instead.

use std::time::Duration;

/// Longest line accepted. The agent's events are one short JSON line; a
/// longer one means the peer is not the agent (or is broken).
pub const MAX_LINE: usize = 64 * 1024;

/// One dispatched event: its name (`message` when the stream gave none) and
/// its data lines joined with `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: String,
    pub data: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error(
        "an event-stream line is longer than {MAX_LINE} bytes: the peer is not a Hangar agent's /api/v1/events"
    )]
    LineTooLong,
    #[error(
        "an event's data is longer than {MAX_LINE} bytes: the peer is not a Hangar agent's /api/v1/events"
    )]
    DataTooLong,
}

/// Parses `text/event-stream` bytes as they arrive, in chunks of any size
/// (a line or a UTF-8 character may be split across chunks).
#[derive(Debug, Default)]
pub struct Parser {
    /// The unfinished line.
    line: Vec<u8>,
    /// Whether the last chunk ended in `\r` (a following `\n` belongs to it).
    after_cr: bool,
    name: String,
    data: String,
    has_data: bool,
    /// The last `retry:` the stream asked for.
    pub retry: Option<Duration>,
}

impl Parser {
    /// Feeds bytes; returns the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Event>, ParseError> {
        let mut events = Vec::new();
        for &byte in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, byte == b'\r');
            match byte {
                b'\n' if after_cr => {}
                b'\r' | b'\n' => {
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.line_done(&String::from_utf8_lossy(&line))? {
                        events.push(event);
                    }
                }
                _ if self.line.len() >= MAX_LINE => return Err(ParseError::LineTooLong),
                _ => self.line.push(byte),
            }
        }
        Ok(events)
    }

    fn line_done(&mut self, line: &str) -> Result<Option<Event>, ParseError> {
        if line.is_empty() {
            let name = std::mem::take(&mut self.name);
            let data = std::mem::take(&mut self.data);
            if !std::mem::take(&mut self.has_data) {
                return Ok(None);
            }
            let name = if name.is_empty() {
                "message".to_owned()
            } else {
                name
            };
            return Ok(Some(Event { name, data }));
        }
        let (field, value) = match line.split_once(':') {
            // A comment (`: keepalive`).
            Some(("", _)) => return Ok(None),
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.name),
            "data" => {
                if self.data.len() + value.len() + 1 > MAX_LINE {
                    return Err(ParseError::DataTooLong);
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "retry" => {
                if let Ok(ms) = value.parse::<u64>() {
                    self.retry = Some(Duration::from_millis(ms));
                }
            }
            // `id` (the agent sends none) and unknown fields are ignored,
            // as the format says.
            _ => {}
        }
        Ok(None)
    }
}

/// How long to wait before reconnecting: doubles after each failed attempt,
/// from the stream's `retry:` (or 1 s) up to 30 s, and starts over once a
/// stream was up.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    pub const MAX: Duration = Duration::from_secs(30);

    /// The delay before the next attempt, counting this failure.
    pub fn next(&mut self, base: Option<Duration>) -> Duration {
        let base = base.unwrap_or(Duration::from_secs(1)).min(Self::MAX);
        let delay = base
            .saturating_mul(1 << self.failures.min(16))
            .min(Self::MAX);
        self.failures = self.failures.saturating_add(1);
        delay
    }

    /// A stream came up: the next drop waits the base delay again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event(name: &str, data: &str) -> Event {
        Event {
            name: name.to_owned(),
            data: data.to_owned(),
        }
    }

    #[test]
    fn parses_what_the_agent_sends() {
        let mut parser = Parser::default();
        let got = parser
            .push(b"retry: 2000\nevent: hello\ndata: {}\n\n: keepalive\n\nevent: build\ndata: {\"id\":\"b1\"}\n\n")
            .expect("valid stream");
        assert_eq!(
            got,
            [event("hello", "{}"), event("build", "{\"id\":\"b1\"}")]
        );
        assert_eq!(parser.retry, Some(Duration::from_secs(2)));
    }

    #[test]
    fn follows_the_format_rules() {
        let mut parser = Parser::default();
        // CRLF and CR line ends, multi-line data, no space after the colon,
        // an unnamed event, a field without a colon, an event without data.
        let got = parser
            .push(b"data:a\r\ndata: b\r\n\r\nevent: x\rdata\r\revent: empty\n\n")
            .expect("valid stream");
        assert_eq!(got, [event("message", "a\nb"), event("x", "")]);
    }

    #[test]
    fn long_lines_are_refused() {
        let mut parser = Parser::default();
        let line = vec![b'a'; MAX_LINE + 1];
        assert_eq!(parser.push(&line), Err(ParseError::LineTooLong));
        let mut parser = Parser::default();
        let data = format!("data: {}\n", "a".repeat(MAX_LINE / 2));
        parser.push(data.as_bytes()).expect("first half");
        assert_eq!(parser.push(data.as_bytes()), Err(ParseError::DataTooLong));
    }

    #[test]
    fn backoff_doubles_to_a_limit_and_resets() {
        let mut backoff = Backoff::default();
        let base = Some(Duration::from_secs(2));
        let delays: Vec<u64> = (0..6).map(|_| backoff.next(base).as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 16, 30, 30]);
        backoff.reset();
        assert_eq!(backoff.next(None), Duration::from_secs(1));
        for _ in 0..100 {
            assert!(backoff.next(Some(Duration::MAX)) <= Backoff::MAX);
        }
    }

    proptest! {
        /// However the stream is cut into chunks, the same events come out.
        #[test]
        fn chunking_does_not_matter(
            events in proptest::collection::vec(("[a-z]{1,8}", "[ -~]{0,40}"), 0..8),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let text: String = events
                .iter()
                .map(|(name, data)| format!("event: {name}\r\ndata: {data}\r\n\r\n: ping\n\n"))
                .collect();
            let bytes = text.as_bytes();
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut parser = Parser::default();
            let mut got = Vec::new();
            let mut from = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                got.extend(parser.push(&bytes[from..cut]).expect("valid stream"));
                from = cut;
            }
            let want: Vec<Event> = events.iter().map(|(n, d)| event(n, d)).collect();
            prop_assert_eq!(got, want);
        }

        /// Any bytes: no panic, and the parser never holds more than its limits.
        #[test]
        fn arbitrary_bytes_stay_bounded(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..4096), 0..40)) {
            let mut parser = Parser::default();
            for chunk in chunks {
                if parser.push(&chunk).is_err() {
                    break;
                }
                prop_assert!(parser.line.len() <= MAX_LINE);
                prop_assert!(parser.data.len() <= MAX_LINE);
            }
        }
    }
}
