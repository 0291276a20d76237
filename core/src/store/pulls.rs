//! Pull requests (GitHub) and merge requests (GitLab) of hosted repos, as
//! their webhooks last described them.

use rusqlite::{Connection, Row};
use serde::Serialize;

use super::{Result, cached_execute, format_ms, now_ms};
use crate::ids::{ForgeId, RepoId};
use crate::repo_name::RepoName;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pull {
    pub number: u64,
    pub title: String,
    pub author: String,
    pub head_ref: String,
    pub head_sha: String,
    pub base_ref: String,
    pub base_sha: Option<String>,
    /// `open`, `closed` or `merged`.
    pub state: String,
    pub url: String,
}

/// A stored pull request with where it belongs.
#[derive(Debug, Clone, Serialize)]
pub struct StoredPull {
    pub repo: RepoName,
    pub forge: String,
    pub provider: String,
    #[serde(flatten)]
    pub pull: Pull,
    pub created_at: String,
    pub updated_at: String,
}

/// Creates or updates a pull request's record.
pub fn upsert(conn: &Connection, repo: RepoId, forge: ForgeId, pull: &Pull) -> Result<()> {
    cached_execute(conn,
        "INSERT INTO pulls (repo_id, number, forge_id, title, author, head_ref, head_sha, base_ref, base_sha, state, url, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)
         ON CONFLICT (repo_id, number) DO UPDATE SET title = ?4, author = ?5, head_ref = ?6, head_sha = ?7,
             base_ref = ?8, base_sha = ?9, state = ?10, url = ?11, updated_at = ?12",
        rusqlite::params![
            repo,
            pull.number as i64,
            forge,
            pull.title,
            pull.author,
            pull.head_ref,
            pull.head_sha,
            pull.base_ref,
            pull.base_sha,
            pull.state,
            pull.url,
            now_ms()
        ],
    )?;
    Ok(())
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<StoredPull> {
    let owner: String = row.get("owner")?;
    let name: String = row.get("repo_name")?;
    let repo = RepoName::parse(&format!("{owner}/{name}")).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(StoredPull {
        repo,
        forge: row.get("forge")?,
        provider: row.get("provider")?,
        pull: Pull {
            number: row.get::<_, i64>("number")? as u64,
            title: row.get("title")?,
            author: row.get("author")?,
            head_ref: row.get("head_ref")?,
            head_sha: row.get("head_sha")?,
            base_ref: row.get("base_ref")?,
            base_sha: row.get("base_sha")?,
            state: row.get("state")?,
            url: row.get("url")?,
        },
        created_at: format_ms(row.get("created_at")?),
        updated_at: format_ms(row.get("updated_at")?),
    })
}

/// Pull requests, most recently updated first; `state` filters (`open`, ...).
pub fn list(conn: &Connection, state: Option<&str>, limit: usize) -> Result<Vec<StoredPull>> {
    let mut stmt = conn.prepare_cached(
        "SELECT p.*, r.owner, r.name AS repo_name, f.name AS forge, f.provider
         FROM pulls p JOIN repos r ON r.id = p.repo_id JOIN forges f ON f.id = p.forge_id
         WHERE ?1 IS NULL OR p.state = ?1
         ORDER BY p.updated_at DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(rusqlite::params![state, limit as i64], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
