//! Forge lists that create mirrors: a user's starred repositories or an
//! organization's (group's) repositories, polled on a timer with an ETag.

use rusqlite::{Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{Result, format_ms, now_ms};

#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub id: String,
    /// `github` or `gitlab`.
    pub forge: String,
    /// `starred` or `org`.
    pub kind: String,
    /// The user, organization or group.
    pub name: String,
    pub api_url: String,
    pub interval_secs: u64,
    pub delete_missing: bool,
    pub allow_http: bool,
    /// The ETag of the last full answer (sent as `If-None-Match`).
    #[serde(skip)]
    pub etag: Option<String>,
    pub last_poll: Option<String>,
    pub last_error: Option<String>,
    pub next_poll: String,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Source> {
    Ok(Source {
        id: row.get("id")?,
        forge: row.get("forge")?,
        kind: row.get("kind")?,
        name: row.get("name")?,
        api_url: row.get("api_url")?,
        interval_secs: row.get::<_, i64>("interval_secs")?.max(1) as u64,
        delete_missing: row.get("delete_missing")?,
        allow_http: row.get("allow_http")?,
        etag: row.get("etag")?,
        last_poll: row.get::<_, Option<i64>>("last_poll")?.map(format_ms),
        last_error: row.get("last_error")?,
        next_poll: format_ms(row.get("next_poll")?),
    })
}

/// What identifies a forge list, and how it is polled.
#[derive(Debug, Clone)]
pub struct NewSource<'a> {
    pub forge: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
    pub api_url: &'a str,
    pub interval_secs: u64,
    pub delete_missing: bool,
    pub allow_http: bool,
}

/// Creates the source, or updates the settings of the same list; returns it.
pub fn upsert(conn: &Connection, new: &NewSource<'_>) -> Result<Source> {
    let now = now_ms();
    conn.execute(
        "INSERT INTO mirror_sources (id, forge, kind, name, api_url, interval_secs, delete_missing, allow_http, next_poll, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
         ON CONFLICT (forge, kind, name, api_url) DO UPDATE SET
            interval_secs = excluded.interval_secs, delete_missing = excluded.delete_missing,
            allow_http = excluded.allow_http",
        rusqlite::params![
            ulid::Ulid::new().to_string(),
            new.forge,
            new.kind,
            new.name,
            new.api_url,
            new.interval_secs as i64,
            new.delete_missing,
            new.allow_http,
            now
        ],
    )?;
    Ok(conn.query_row(
        "SELECT * FROM mirror_sources WHERE forge = ?1 AND kind = ?2 AND name = ?3 AND api_url = ?4",
        rusqlite::params![new.forge, new.kind, new.name, new.api_url],
        from_row,
    )?)
}

pub fn get(conn: &Connection, id: &str) -> Result<Option<Source>> {
    Ok(conn
        .query_row("SELECT * FROM mirror_sources WHERE id = ?1", [id], from_row)
        .optional()?)
}

pub fn list(conn: &Connection) -> Result<Vec<Source>> {
    let mut stmt = conn.prepare("SELECT * FROM mirror_sources ORDER BY forge, kind, name")?;
    let sources = stmt
        .query_map([], from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(sources)
}

/// Sources whose poll is due: id and next poll time (ms), soonest first.
pub fn schedule(conn: &Connection) -> Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare("SELECT id, next_poll FROM mirror_sources ORDER BY next_poll")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// Records a poll: the new ETag (kept when the answer was 304), the error if
/// it failed, and when to poll next.
pub fn polled(
    conn: &Connection,
    id: &str,
    etag: Option<&str>,
    error: Option<&str>,
    next_in_ms: i64,
) -> Result<()> {
    let now = now_ms();
    conn.execute(
        "UPDATE mirror_sources SET etag = COALESCE(?2, etag), last_error = ?3, last_poll = ?4,
            next_poll = ?5 WHERE id = ?1",
        rusqlite::params![id, etag, error, now, now + next_in_ms],
    )?;
    Ok(())
}

pub fn delete(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM mirror_sources WHERE id = ?1", [id])? == 1)
}
