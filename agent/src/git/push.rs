//! The command list at the start of a receive-pack request (`old new ref`
//! lines), and recording which of those updates took effect.

use std::path::Path;
use std::sync::Arc;

use hangar_core::ids::UserId;
use hangar_core::pktline::{self, Packet};
use hangar_core::store::events::{self, RefUpdate};
use hangar_core::store::repos::Repo;

use crate::agent::Agent;

/// Most ref updates one push may carry.
pub const MAX_COMMANDS: usize = 10_000;
/// Most bytes the command list may take before the pack starts.
pub const MAX_COMMAND_BYTES: usize = 4 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("malformed push: {0}")]
    Pkt(#[from] pktline::PktError),
    #[error("malformed push command {0:?}: expected `OLD NEW REF`")]
    Command(String),
    #[error(
        "push has more than {MAX_COMMANDS} ref updates or a command list over {MAX_COMMAND_BYTES} bytes"
    )]
    TooMany,
}

/// Parses the command list at the start of `buf`. Returns `Ok(None)` until the
/// flush that ends it has arrived, then the updates and the bytes consumed.
pub fn parse_commands(buf: &[u8]) -> Result<Option<(Vec<RefUpdate>, usize)>, CommandError> {
    let mut updates = Vec::new();
    let mut at = 0;
    loop {
        if at > MAX_COMMAND_BYTES {
            return Err(CommandError::TooMany);
        }
        let Some((packet, used)) = pktline::decode(&buf[at..])? else {
            return if buf.len() > MAX_COMMAND_BYTES {
                Err(CommandError::TooMany)
            } else {
                Ok(None)
            };
        };
        at += used;
        let line = match packet {
            Packet::Flush => return Ok(Some((updates, at))),
            Packet::Data(line) => line,
            Packet::Delim | Packet::ResponseEnd => {
                return Err(CommandError::Command("special packet".into()));
            }
        };
        // Capabilities follow a NUL on the first line; `shallow` lines carry no update.
        let line = line.split(|b| *b == 0).next().unwrap_or_default();
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        if line.starts_with(b"shallow ") {
            continue;
        }
        updates.push(parse_update(line)?);
        if updates.len() > MAX_COMMANDS {
            return Err(CommandError::TooMany);
        }
    }
}

fn parse_update(line: &[u8]) -> Result<RefUpdate, CommandError> {
    let bad = || {
        CommandError::Command(String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned())
    };
    let text = std::str::from_utf8(line).map_err(|_| bad())?;
    let mut parts = text.splitn(3, ' ');
    let (Some(old), Some(new), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let is_oid = |s: &str| matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_oid(old) || !is_oid(new) || !name.starts_with("refs/") || name.len() > 1024 {
        return Err(bad());
    }
    Ok(RefUpdate {
        old: old.to_owned(),
        new: new.to_owned(),
        name: name.to_owned(),
    })
}

/// True for the all-zero object name git uses for "no object".
pub fn is_null(oid: &str) -> bool {
    oid.bytes().all(|b| b == b'0')
}

/// After git receive-pack has run: records a push event with the updates that
/// actually moved (git may have refused some), points HEAD at a pushed branch
/// if it dangles, and asks for maintenance. Runs before the client hears the
/// result, so an acknowledged push is always recorded.
pub async fn record(
    agent: &Arc<Agent>,
    actor: Option<UserId>,
    repo: &Repo,
    path: &Path,
    updates: Vec<RefUpdate>,
) -> anyhow::Result<()> {
    let check = path.to_owned();
    let applied = tokio::task::spawn_blocking(move || {
        updates
            .into_iter()
            .filter(|u| {
                let now = crate::git::read::ref_target(&check, &u.name).ok().flatten();
                match now {
                    Some(now) => now == u.new,
                    None => is_null(&u.new),
                }
            })
            .collect::<Vec<_>>()
    })
    .await?;
    if applied.is_empty() {
        return Ok(());
    }
    crate::git::updates::record(
        agent,
        (repo.id, &repo.name),
        path,
        events::PUSH,
        actor,
        applied,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    fn packet(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        pktline::encode(text.as_bytes(), &mut out).unwrap();
        out
    }

    #[test]
    fn parses_commands_until_the_flush() {
        let mut buf = packet(&format!(
            "{A} {B} refs/heads/main\0report-status side-band-64k\n"
        ));
        buf.extend(packet(&format!("{B} {A} refs/tags/v1\n")));
        assert_eq!(parse_commands(&buf).unwrap(), None);
        pktline::flush(&mut buf);
        let used = buf.len();
        buf.extend_from_slice(b"PACK...");
        let (updates, at) = parse_commands(&buf).unwrap().unwrap();
        assert_eq!(at, used);
        assert_eq!(updates.len(), 2);
        assert_eq!(updates[0].name, "refs/heads/main");
        assert_eq!(updates[1].new, A);
    }

    #[test]
    fn refuses_malformed_commands() {
        for line in [
            "hello",
            &format!("{A} {B}"),
            &format!("{A} xyz refs/heads/x"),
            &format!("{A} {B} HEAD"),
        ] {
            let mut buf = packet(line);
            pktline::flush(&mut buf);
            assert!(parse_commands(&buf).is_err(), "{line}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_commands(&bytes);
        }
    }
}
