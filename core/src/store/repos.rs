//! Repositories known to the agent (the bare repos live under `repos/`).

use rusqlite::{Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{Result, cached_execute, cached_query_row, format_ms, now_ms};
use crate::ids::RepoId;
use crate::repo_name::RepoName;

#[derive(Debug, Clone, Serialize)]
pub struct Repo {
    pub id: RepoId,
    #[serde(rename = "full_name")]
    pub name: RepoName,
    pub public: bool,
    pub description: String,
    pub created_at: String,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Repo> {
    let owner: String = row.get("owner")?;
    let name: String = row.get("name")?;
    let full = RepoName::parse(&format!("{owner}/{name}")).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(Repo {
        id: row.get("id")?,
        name: full,
        public: row.get("public")?,
        description: row.get("description")?,
        created_at: format_ms(row.get("created_at")?),
    })
}

pub fn create(conn: &Connection, name: &RepoName, public: bool, description: &str) -> Result<Repo> {
    let id = RepoId::new();
    let now = now_ms();
    cached_execute(
        conn,
        "INSERT INTO repos (id, owner, name, public, description, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        rusqlite::params![id, name.owner(), name.name(), public, description, now],
    )?;
    Ok(Repo {
        id,
        name: name.clone(),
        public,
        description: description.to_owned(),
        created_at: format_ms(now),
    })
}

pub fn get(conn: &Connection, id: RepoId) -> Result<Option<Repo>> {
    Ok(cached_query_row(conn, "SELECT * FROM repos WHERE id = ?1", [id], from_row).optional()?)
}

pub fn by_name(conn: &Connection, name: &RepoName) -> Result<Option<Repo>> {
    Ok(cached_query_row(
        conn,
        "SELECT * FROM repos WHERE owner = ?1 AND name = ?2",
        [name.owner(), name.name()],
        from_row,
    )
    .optional()?)
}

/// One page of repositories ordered by name, after the name `after` if given.
pub fn list(conn: &Connection, after: Option<&RepoName>, limit: usize) -> Result<Vec<Repo>> {
    let after = after.map(|n| n.to_string()).unwrap_or_default();
    let mut stmt = conn.prepare_cached(
        "SELECT * FROM repos WHERE owner || '/' || name > ?1 ORDER BY owner || '/' || name LIMIT ?2",
    )?;
    let repos = stmt
        .query_map(rusqlite::params![after, limit as i64], from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(repos)
}

pub fn delete(conn: &Connection, id: RepoId) -> Result<bool> {
    Ok(cached_execute(conn, "DELETE FROM repos WHERE id = ?1", [id])? == 1)
}
