//! Forge accounts (GitHub, GitLab) and the repositories hosted there that
//! this agent mirrors and builds. Tokens and webhook secrets are in the
//! SecretStore under names made by [`token_secret`] and [`webhook_secret`].

use rusqlite::{Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{Result, cached_execute, cached_query_row, format_ms, now_ms};
use crate::ids::{ForgeId, RepoId};
use crate::repo_name::RepoName;

/// Which API and webhook format a forge speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Github,
    Gitlab,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Github => "github",
            Provider::Gitlab => "gitlab",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "github" => Some(Provider::Github),
            "gitlab" => Some(Provider::Gitlab),
            _ => None,
        }
    }

    /// The public service's base URL.
    pub fn default_url(self) -> &'static str {
        match self {
            Provider::Github => "https://api.github.com",
            Provider::Gitlab => "https://gitlab.com",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Forge {
    pub id: ForgeId,
    pub name: String,
    pub provider: Provider,
    pub base_url: String,
    pub allow_http: bool,
    pub created_at: String,
}

/// The SecretStore name of a forge's API token.
pub fn token_secret(id: ForgeId) -> String {
    format!("forge/{id}/token")
}

/// The SecretStore name of the secret its webhooks are signed with.
pub fn webhook_secret(id: ForgeId) -> String {
    format!("forge/{id}/webhook-secret")
}

fn forge_from_row(row: &Row<'_>) -> rusqlite::Result<Forge> {
    let provider: String = row.get("provider")?;
    Ok(Forge {
        id: row.get("id")?,
        name: row.get("name")?,
        provider: Provider::parse(&provider).unwrap_or(Provider::Github),
        base_url: row.get("base_url")?,
        allow_http: row.get("allow_http")?,
        created_at: format_ms(row.get("created_at")?),
    })
}

pub fn create(
    conn: &Connection,
    name: &str,
    provider: Provider,
    base_url: &str,
    allow_http: bool,
) -> Result<Forge> {
    let id = ForgeId::new();
    cached_execute(
        conn,
        "INSERT INTO forges (id, name, provider, base_url, allow_http, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        rusqlite::params![id, name, provider.as_str(), base_url, allow_http, now_ms()],
    )?;
    Ok(get(conn, id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?)
}

pub fn get(conn: &Connection, id: ForgeId) -> Result<Option<Forge>> {
    Ok(cached_query_row(
        conn,
        "SELECT * FROM forges WHERE id = ?1",
        [id],
        forge_from_row,
    )
    .optional()?)
}

pub fn by_name(conn: &Connection, name: &str) -> Result<Option<Forge>> {
    Ok(cached_query_row(
        conn,
        "SELECT * FROM forges WHERE name = ?1",
        [name],
        forge_from_row,
    )
    .optional()?)
}

pub fn list(conn: &Connection) -> Result<Vec<Forge>> {
    let mut stmt = conn.prepare_cached("SELECT * FROM forges ORDER BY name")?;
    let rows = stmt.query_map([], forge_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Removes a forge; refused (returns the count) while repositories use it.
pub fn delete(conn: &Connection, id: ForgeId) -> Result<std::result::Result<(), i64>> {
    let used: i64 = cached_query_row(
        conn,
        "SELECT COUNT(*) FROM hosted_repos WHERE forge_id = ?1",
        [id],
        |r| r.get(0),
    )?;
    if used > 0 {
        return Ok(Err(used));
    }
    cached_execute(conn, "DELETE FROM pulls WHERE forge_id = ?1", [id])?;
    // Its sync sources stop; the mirrors they made stay.
    cached_execute(conn, "DELETE FROM mirror_sources WHERE forge_id = ?1", [id])?;
    cached_execute(conn, "DELETE FROM forges WHERE id = ?1", [id])?;
    Ok(Ok(()))
}

/// A local repository that mirrors one hosted on a forge.
#[derive(Debug, Clone, Serialize)]
pub struct HostedRepo {
    pub repo_id: RepoId,
    pub repo: RepoName,
    pub forge_id: ForgeId,
    pub forge: String,
    pub provider: Provider,
    /// The repository's path on the forge (`OWNER/NAME`, `GROUP/NAME`).
    pub remote: String,
    pub web_url: Option<String>,
    pub hook_id: Option<String>,
    pub hook_url: Option<String>,
    pub created_at: String,
}

const HOSTED: &str = "SELECT h.*, r.owner, r.name AS repo_name, f.name AS forge, f.provider
    FROM hosted_repos h JOIN repos r ON r.id = h.repo_id JOIN forges f ON f.id = h.forge_id";

fn hosted_from_row(row: &Row<'_>) -> rusqlite::Result<HostedRepo> {
    let owner: String = row.get("owner")?;
    let name: String = row.get("repo_name")?;
    let repo = RepoName::parse(&format!("{owner}/{name}")).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let provider: String = row.get("provider")?;
    Ok(HostedRepo {
        repo_id: row.get("repo_id")?,
        repo,
        forge_id: row.get("forge_id")?,
        forge: row.get("forge")?,
        provider: Provider::parse(&provider).unwrap_or(Provider::Github),
        remote: row.get("remote")?,
        web_url: row.get("web_url")?,
        hook_id: row.get("hook_id")?,
        hook_url: row.get("hook_url")?,
        created_at: format_ms(row.get("created_at")?),
    })
}

pub fn add_hosted(
    conn: &Connection,
    repo: RepoId,
    forge: ForgeId,
    remote: &str,
    web_url: Option<&str>,
) -> Result<()> {
    cached_execute(
        conn,
        "INSERT INTO hosted_repos (repo_id, forge_id, remote, web_url, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        rusqlite::params![repo, forge, remote, web_url, now_ms()],
    )?;
    Ok(())
}

pub fn hosted(conn: &Connection, repo: RepoId) -> Result<Option<HostedRepo>> {
    Ok(cached_query_row(
        conn,
        &format!("{HOSTED} WHERE h.repo_id = ?1"),
        [repo],
        hosted_from_row,
    )
    .optional()?)
}

/// The hosted repo a webhook names (case-insensitively, as forges do).
pub fn hosted_by_remote(
    conn: &Connection,
    forge: ForgeId,
    remote: &str,
) -> Result<Option<HostedRepo>> {
    Ok(cached_query_row(
        conn,
        &format!("{HOSTED} WHERE h.forge_id = ?1 AND lower(h.remote) = lower(?2)"),
        rusqlite::params![forge, remote],
        hosted_from_row,
    )
    .optional()?)
}

pub fn list_hosted(conn: &Connection) -> Result<Vec<HostedRepo>> {
    let mut stmt = conn.prepare_cached(&format!("{HOSTED} ORDER BY r.owner, r.name"))?;
    let rows = stmt.query_map([], hosted_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Records the webhook registered for a hosted repo.
pub fn set_hook(conn: &Connection, repo: RepoId, hook_id: &str, hook_url: &str) -> Result<()> {
    cached_execute(
        conn,
        "UPDATE hosted_repos SET hook_id = ?2, hook_url = ?3 WHERE repo_id = ?1",
        rusqlite::params![repo, hook_id, hook_url],
    )?;
    Ok(())
}
