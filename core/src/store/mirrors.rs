//! Mirrors: a repository kept in step with another host, by fetching from it
//! (pull) or pushing to it (push), with its health. One mirror per repository.
//!
//! Times are stored as epoch milliseconds and shown as RFC 3339.

use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Serialize, Serializer};

use super::{Result, cached_execute, cached_query_row, format_ms, now_ms};
use crate::ids::RepoId;
use crate::repo_name::RepoName;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Pull,
    Push,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pull => "pull",
            Kind::Push => "push",
        }
    }
}

/// Where a mirror stands. `new` has never synced; `retrying` has failed fewer
/// than the `failing` threshold in a row; `archived` left its forge list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    New,
    Syncing,
    Ok,
    Retrying,
    Failing,
    Paused,
    Archived,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::New => "new",
            State::Syncing => "syncing",
            State::Ok => "ok",
            State::Retrying => "retrying",
            State::Failing => "failing",
            State::Paused => "paused",
            State::Archived => "archived",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            State::New,
            State::Syncing,
            State::Ok,
            State::Retrying,
            State::Failing,
            State::Paused,
            State::Archived,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

fn time<S: Serializer>(ms: &Option<i64>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => s.serialize_str(&format_ms(*ms)),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Mirror {
    pub repo_id: RepoId,
    pub repo: RepoName,
    pub kind: Kind,
    pub url: String,
    pub allow_http: bool,
    pub interval_secs: u64,
    /// Push mirrors: the branch patterns forwarded (all branches and tags when absent).
    pub branches: Option<String>,
    pub state: State,
    /// git's latest progress line while a sync runs.
    pub progress: Option<String>,
    #[serde(serialize_with = "time")]
    pub last_success: Option<i64>,
    #[serde(serialize_with = "time")]
    pub last_attempt: Option<i64>,
    pub last_error: Option<String>,
    /// Consecutive failed syncs.
    pub failures: u32,
    #[serde(serialize_with = "time")]
    pub next_attempt: Option<i64>,
    /// Bytes received (pull) by the last successful sync.
    pub last_bytes: Option<i64>,
    /// Refs changed by the last successful sync.
    pub last_refs: Option<i64>,
    #[serde(serialize_with = "time")]
    pub created_at: Option<i64>,
}

/// `next_attempt` while a sync runs: never due. A request to sync during the
/// run lowers it, and the run's end keeps that request.
const RUNNING: i64 = i64::MAX / 2;

const SELECT: &str = "SELECT m.*, r.owner, r.name FROM mirrors m JOIN repos r ON r.id = m.repo_id";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Mirror> {
    let owner: String = row.get("owner")?;
    let name: String = row.get("name")?;
    let bad = |e: Box<dyn std::error::Error + Send + Sync>| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e)
    };
    let repo = RepoName::parse(&format!("{owner}/{name}")).map_err(|e| bad(Box::new(e)))?;
    let kind: String = row.get("kind")?;
    let state: String = row.get("state")?;
    Ok(Mirror {
        repo_id: row.get("repo_id")?,
        repo,
        kind: if kind == "push" {
            Kind::Push
        } else {
            Kind::Pull
        },
        url: row.get("url")?,
        allow_http: row.get("allow_http")?,
        interval_secs: row.get::<_, i64>("interval_secs")?.max(1) as u64,
        branches: row.get("branches")?,
        state: State::parse(&state).ok_or_else(|| bad(format!("state {state}").into()))?,
        progress: row.get("progress")?,
        last_success: row.get("last_success")?,
        last_attempt: row.get("last_attempt")?,
        last_error: row.get("last_error")?,
        failures: row.get::<_, i64>("failures")?.max(0) as u32,
        next_attempt: Some(row.get::<_, i64>("next_attempt")?).filter(|t| *t < RUNNING),
        last_bytes: row.get("last_bytes")?,
        last_refs: row.get("last_refs")?,
        created_at: Some(row.get("created_at")?),
    })
}

/// What a new mirror is made of.
#[derive(Debug, Clone)]
pub struct NewMirror<'a> {
    pub kind: Kind,
    pub url: &'a str,
    pub allow_http: bool,
    pub interval_secs: u64,
    pub branches: Option<&'a str>,
}

/// Makes `repo` a mirror, due for its first sync now.
pub fn create(conn: &Connection, repo: RepoId, new: &NewMirror<'_>) -> Result<()> {
    let now = now_ms();
    cached_execute(conn,
        "INSERT INTO mirrors (repo_id, kind, url, allow_http, interval_secs, branches, state, next_attempt, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'new', ?7, ?7)",
        rusqlite::params![
            repo,
            new.kind.as_str(),
            new.url,
            new.allow_http,
            new.interval_secs as i64,
            new.branches,
            now
        ],
    )?;
    Ok(())
}

pub fn get(conn: &Connection, repo: RepoId) -> Result<Option<Mirror>> {
    Ok(cached_query_row(
        conn,
        &format!("{SELECT} WHERE m.repo_id = ?1"),
        [repo],
        from_row,
    )
    .optional()?)
}

/// Every mirror, by repository name.
pub fn list(conn: &Connection) -> Result<Vec<Mirror>> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} ORDER BY r.owner, r.name"))?;
    let mirrors = stmt
        .query_map([], from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(mirrors)
}

/// Pull mirrors of `url` (as stored: the parsed, normalised URL).
pub fn pull_by_url(conn: &Connection, url: &str) -> Result<Vec<RepoId>> {
    let mut stmt =
        conn.prepare_cached("SELECT repo_id FROM mirrors WHERE kind = 'pull' AND url = ?1")?;
    let rows = stmt
        .query_map([url], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// Mirrors that sync on their own (not paused or archived): id and next attempt.
pub fn schedule(conn: &Connection) -> Result<Vec<(RepoId, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT repo_id, next_attempt FROM mirrors WHERE state NOT IN ('paused', 'archived')",
    )?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// Marks the start of a sync.
pub fn start_attempt(conn: &Connection, repo: RepoId) -> Result<()> {
    cached_execute(conn,
        "UPDATE mirrors SET state = 'syncing', last_attempt = ?2, progress = NULL, next_attempt = ?3
         WHERE repo_id = ?1",
        rusqlite::params![repo, now_ms(), RUNNING],
    )?;
    Ok(())
}

pub fn set_progress(conn: &Connection, repo: RepoId, progress: &str) -> Result<()> {
    cached_execute(
        conn,
        "UPDATE mirrors SET progress = ?2 WHERE repo_id = ?1 AND state = 'syncing'",
        rusqlite::params![repo, progress],
    )?;
    Ok(())
}

/// A successful sync; the next is due `interval_secs` later. A mirror paused
/// or archived meanwhile stays so.
pub fn succeed(conn: &Connection, repo: RepoId, bytes: Option<i64>, refs: i64) -> Result<()> {
    let now = now_ms();
    cached_execute(conn,
        "UPDATE mirrors SET state = CASE WHEN state IN ('paused', 'archived') THEN state ELSE 'ok' END,
            progress = NULL, last_success = ?2, last_error = NULL, failures = 0,
            next_attempt = CASE WHEN next_attempt < ?5 THEN next_attempt ELSE ?2 + interval_secs * 1000 END,
            last_bytes = ?3, last_refs = ?4
         WHERE repo_id = ?1",
        rusqlite::params![repo, now, bytes, refs, RUNNING],
    )?;
    Ok(())
}

/// A failed sync, retried after `retry_ms`. Returns the consecutive failures;
/// from `failing_after` on, the state is `failing`.
pub fn fail(
    conn: &Connection,
    repo: RepoId,
    error: &str,
    retry_ms: i64,
    failing_after: u32,
) -> Result<u32> {
    let now = now_ms();
    cached_execute(
        conn,
        "UPDATE mirrors SET failures = failures + 1, progress = NULL, last_error = ?2,
            next_attempt = CASE WHEN next_attempt < ?5 THEN next_attempt ELSE ?3 END,
            state = CASE WHEN state IN ('paused', 'archived') THEN state
                         WHEN failures + 1 >= ?4 THEN 'failing' ELSE 'retrying' END
         WHERE repo_id = ?1",
        rusqlite::params![repo, error, now + retry_ms, failing_after, RUNNING],
    )?;
    let failures: i64 = cached_query_row(
        conn,
        "SELECT failures FROM mirrors WHERE repo_id = ?1",
        [repo],
        |r| r.get(0),
    )?;
    Ok(failures.max(0) as u32)
}

/// Due at once (`hangar mirror sync`, a push to a push mirror's repository).
/// Returns false for paused or archived mirrors, which do not sync.
pub fn request_now(conn: &Connection, repo: RepoId) -> Result<bool> {
    Ok(cached_execute(
        conn,
        "UPDATE mirrors SET next_attempt = ?2 WHERE repo_id = ?1 AND state NOT IN ('paused', 'archived')",
        rusqlite::params![repo, now_ms()],
    )? == 1)
}

pub fn pause(conn: &Connection, repo: RepoId) -> Result<()> {
    cached_execute(
        conn,
        "UPDATE mirrors SET state = 'paused', progress = NULL WHERE repo_id = ?1",
        [repo],
    )?;
    Ok(())
}

/// Back to syncing (paused or archived mirrors), due now, failures forgotten.
pub fn resume(conn: &Connection, repo: RepoId) -> Result<()> {
    cached_execute(
        conn,
        "UPDATE mirrors SET state = CASE WHEN last_success IS NULL THEN 'new' ELSE 'ok' END,
            failures = 0, next_attempt = ?2 WHERE repo_id = ?1",
        rusqlite::params![repo, now_ms()],
    )?;
    Ok(())
}

pub fn archive(conn: &Connection, repo: RepoId) -> Result<()> {
    cached_execute(
        conn,
        "UPDATE mirrors SET state = 'archived', progress = NULL WHERE repo_id = ?1",
        [repo],
    )?;
    Ok(())
}

/// Stops mirroring; the repository stays.
pub fn delete(conn: &Connection, repo: RepoId) -> Result<bool> {
    Ok(cached_execute(conn, "DELETE FROM mirrors WHERE repo_id = ?1", [repo])? == 1)
}

/// At start: syncs cut off by a crash or stop are due again now.
pub fn recover_interrupted(conn: &Connection) -> Result<usize> {
    Ok(cached_execute(
        conn,
        "UPDATE mirrors SET next_attempt = ?1, progress = NULL,
            last_error = 'interrupted by an agent restart; retrying'
         WHERE state = 'syncing'",
        [now_ms()],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{StoreError, repos, test_store};

    fn new_pull() -> NewMirror<'static> {
        NewMirror {
            kind: Kind::Pull,
            url: "https://example.com/a/b.git",
            allow_http: false,
            interval_secs: 60,
            branches: None,
        }
    }

    #[test]
    fn health_moves_through_its_states() {
        let (_dir, store) = test_store();
        let name = RepoName::parse("a/b").unwrap();
        let repo = store
            .write(|tx| {
                let repo = repos::create(tx, &name, false, "")?;
                create(tx, repo.id, &new_pull())?;
                Ok::<_, StoreError>(repo)
            })
            .unwrap();
        let read = || store.read(|c| get(c, repo.id)).unwrap().unwrap();
        assert_eq!(read().state, State::New);
        store.write(|tx| start_attempt(tx, repo.id)).unwrap();
        assert_eq!(read().state, State::Syncing);
        assert_eq!(read().next_attempt, None, "not due while running");
        for expected in [State::Retrying, State::Retrying, State::Failing] {
            store.write(|tx| fail(tx, repo.id, "boom", 10, 3)).unwrap();
            assert_eq!(read().state, expected);
            assert!(read().next_attempt.is_some());
        }
        // A sync requested during a run is kept when the run ends.
        store.write(|tx| start_attempt(tx, repo.id)).unwrap();
        assert!(store.write(|tx| request_now(tx, repo.id)).unwrap());
        store
            .write(|tx| fail(tx, repo.id, "boom", 1_000_000, 3))
            .unwrap();
        assert!(read().next_attempt.unwrap() <= now_ms());
        assert_eq!(read().failures, 4);
        assert_eq!(read().last_error.as_deref(), Some("boom"));
        store.write(|tx| succeed(tx, repo.id, Some(10), 2)).unwrap();
        let ok = read();
        assert_eq!((ok.state, ok.failures, ok.last_error), (State::Ok, 0, None));
        store.write(|tx| pause(tx, repo.id)).unwrap();
        assert!(!store.write(|tx| request_now(tx, repo.id)).unwrap());
        assert!(store.read(schedule).unwrap().is_empty());
        store.write(|tx| resume(tx, repo.id)).unwrap();
        assert_eq!(read().state, State::Ok);
        store.write(|tx| start_attempt(tx, repo.id)).unwrap();
        assert_eq!(store.write(|tx| recover_interrupted(tx)).unwrap(), 1);
        // Deleting the repository deletes its mirror.
        store.write(|tx| repos::delete(tx, repo.id)).unwrap();
        assert!(store.read(list).unwrap().is_empty());
    }
}
