//! Events: what happened to a repository (a push, ...), recorded before the
//! client hears success, and consumed by the scheduler.

use rusqlite::{Connection, Row};
use serde::{Deserialize, Serialize};

use super::{Result, cached_execute, format_ms, now_ms};
use crate::ids::{EventId, RepoId, UserId};

/// One ref moved by a push. Object names are hex; all zeros means created/deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefUpdate {
    pub old: String,
    pub new: String,
    #[serde(rename = "ref")]
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: EventId,
    pub repo_id: RepoId,
    pub kind: String,
    pub actor: Option<UserId>,
    pub payload: serde_json::Value,
    pub created_at: String,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Event> {
    let payload: String = row.get("payload")?;
    Ok(Event {
        id: row.get("id")?,
        repo_id: row.get("repo_id")?,
        kind: row.get("kind")?,
        actor: row.get("actor")?,
        payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
        created_at: format_ms(row.get("created_at")?),
    })
}

/// A push to the LAN remote.
pub const PUSH: &str = "push";
/// A pull request opened or updated on a forge (payload: action, number,
/// base_ref, head_ref, head_sha).
pub const PULL_REQUEST: &str = "pull_request";
/// A pull mirror's fetch that moved refs (payload like a push's).
pub const MIRROR_FETCH: &str = "mirror_fetch";
/// A mirror became `failing` (payload: `error`, `failures`).
pub const MIRROR_FAILING: &str = "mirror_failing";

/// Records ref updates that arrived by `kind` ([`PUSH`] or [`MIRROR_FETCH`]).
pub fn record_updates(
    conn: &Connection,
    repo: RepoId,
    kind: &str,
    actor: Option<UserId>,
    updates: &[RefUpdate],
) -> Result<EventId> {
    record(
        conn,
        repo,
        kind,
        actor,
        &serde_json::json!({ "updates": updates }),
    )
}

/// Records an event of `kind` with a JSON payload.
pub fn record(
    conn: &Connection,
    repo: RepoId,
    kind: &str,
    actor: Option<UserId>,
    payload: &serde_json::Value,
) -> Result<EventId> {
    let id = EventId::new();
    cached_execute(
        conn,
        "INSERT INTO events (id, repo_id, kind, actor, payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        rusqlite::params![id, repo, kind, actor, payload.to_string(), now_ms()],
    )?;
    Ok(id)
}

/// The latest events of a repository, newest first.
pub fn list(conn: &Connection, repo: RepoId, limit: usize) -> Result<Vec<Event>> {
    let mut stmt =
        conn.prepare_cached("SELECT * FROM events WHERE repo_id = ?1 ORDER BY id DESC LIMIT ?2")?;
    let events = stmt
        .query_map(rusqlite::params![repo, limit as i64], from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(events)
}

/// Events not yet planned into builds, oldest first.
pub fn unplanned(conn: &Connection) -> Result<Vec<Event>> {
    let mut stmt =
        conn.prepare_cached("SELECT * FROM events WHERE planned = 0 ORDER BY id LIMIT 100")?;
    let events = stmt
        .query_map([], from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(events)
}
