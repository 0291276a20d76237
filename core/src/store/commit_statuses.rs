//! The commit-status outbox. Rows are written by SQL triggers on `jobs`
//! (migration 0005) in the same transaction that changes a job of a hosted
//! repo, so no state change is lost; the agent sends them to the forge later,
//! retrying with backoff, and builds never wait for it.

use rusqlite::{Connection, Row};

use super::{Result, cached_execute, cached_query_row, now_ms};
use crate::ids::{BuildId, ForgeId, JobId};

/// One status to send, with what the forge needs to know.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: i64,
    pub job_id: JobId,
    /// `pending`, `success`, `failure` or `error`.
    pub state: String,
    pub attempts: i64,
    pub next_attempt: i64,
    pub build_id: BuildId,
    pub sha: String,
    pub workflow: String,
    pub job: String,
    pub forge_id: ForgeId,
    pub remote: String,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Outgoing> {
    Ok(Outgoing {
        id: row.get("id")?,
        job_id: row.get("job_id")?,
        state: row.get("state")?,
        attempts: row.get("attempts")?,
        next_attempt: row.get("next_attempt")?,
        build_id: row.get("build_id")?,
        sha: row.get("sha")?,
        workflow: row.get("workflow_name")?,
        job: row.get("job_name")?,
        forge_id: row.get("forge_id")?,
        remote: row.get("remote")?,
    })
}

/// Unsent statuses in the order they were written (oldest first).
pub fn unsent(conn: &Connection, limit: usize) -> Result<Vec<Outgoing>> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.id, s.job_id, s.state, s.attempts, s.next_attempt, b.id AS build_id, b.sha,
                b.workflow_name, j.name AS job_name, h.forge_id, h.remote
         FROM commit_statuses s JOIN jobs j ON j.id = s.job_id JOIN builds b ON b.id = j.build_id
              JOIN hosted_repos h ON h.repo_id = b.repo_id
         WHERE s.sent_at IS NULL ORDER BY s.id LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn sent(conn: &Connection, id: i64) -> Result<()> {
    cached_execute(
        conn,
        "UPDATE commit_statuses SET sent_at = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
        rusqlite::params![id, now_ms()],
    )?;
    Ok(())
}

pub fn failed(conn: &Connection, id: i64, error: &str, retry_at: i64) -> Result<()> {
    cached_execute(
        conn,
        "UPDATE commit_statuses SET attempts = attempts + 1, last_error = ?2, next_attempt = ?3 WHERE id = ?1",
        rusqlite::params![id, error, retry_at],
    )?;
    Ok(())
}

/// Unsent statuses (for status output).
pub fn backlog(conn: &Connection) -> Result<i64> {
    Ok(cached_query_row(
        conn,
        "SELECT COUNT(*) FROM commit_statuses WHERE sent_at IS NULL",
        [],
        |r| r.get(0),
    )?)
}
