//! Sync sources: a forge list (a user's starred repositories, an
//! organization's or group's repositories) that the agent polls with ETags,
//! making a pull mirror of each listed repository and archiving the mirrors
//! of repositories that leave the list (or, when the source was asked to,
//! deleting the ones it created).

use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize, Serializer};

use super::{Result, cached_execute, cached_query_row, format_ms, now_ms};
use crate::ids::{ForgeId, RepoId, SourceId};
use crate::store::forges::Provider;

/// Which list a source follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A user's starred repositories.
    Starred,
    /// An organization's (GitHub) or group's (GitLab, with subgroups) repositories.
    Org,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Starred => "starred",
            SourceKind::Org => "org",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "starred" => Some(SourceKind::Starred),
            "org" => Some(SourceKind::Org),
            _ => None,
        }
    }
}

/// The target of a starred source that follows the token's own stars
/// (`github:@me`, GitHub's `GET /user/starred`, private repositories included).
pub const OWN_STARS: &str = "@me";

fn time<S: Serializer>(ms: &Option<i64>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => s.serialize_str(&format_ms(*ms)),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub id: SourceId,
    pub forge_id: ForgeId,
    /// The forge account's name.
    pub forge: String,
    pub provider: Provider,
    pub kind: SourceKind,
    /// The user, organization or group.
    pub target: String,
    pub interval_secs: u64,
    /// Mirrors it creates are public on the LAN.
    pub public: bool,
    /// Mirrors it created are deleted (not archived) when their repository
    /// leaves the list.
    pub delete_missing: bool,
    #[serde(serialize_with = "time")]
    pub next_poll: Option<i64>,
    #[serde(serialize_with = "time")]
    pub last_poll: Option<i64>,
    #[serde(serialize_with = "time")]
    pub last_success: Option<i64>,
    pub last_error: Option<String>,
    /// Consecutive failed polls.
    pub failures: u32,
    /// Polls in a row that the forge answered "not modified".
    pub unchanged: u32,
    /// Repositories in the list at the last successful poll.
    pub repo_count: u32,
    #[serde(serialize_with = "time")]
    pub created_at: Option<i64>,
}

/// A repository as a forge list names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed {
    /// `OWNER/NAME` (GitHub's `full_name`, GitLab's `path_with_namespace`).
    pub remote: String,
    /// The HTTPS clone URL.
    pub clone_url: String,
}

/// One page of a list as last answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The request path below the API base.
    pub path: String,
    pub etag: Option<String>,
    pub next_path: Option<String>,
    pub repos: Vec<Listed>,
}

/// A repository a source listed, and its local mirror.
#[derive(Debug, Clone)]
pub struct Member {
    pub remote: String,
    pub repo_id: Option<RepoId>,
    /// Still in the list (false: its mirror was archived).
    pub listed: bool,
    /// The source created the mirror (false: it adopted an existing one).
    pub created: bool,
}

const SELECT: &str = "SELECT s.*, f.name AS forge, f.provider FROM mirror_sources s JOIN forges f ON f.id = s.forge_id";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Source> {
    let provider: String = row.get("provider")?;
    let kind: String = row.get("kind")?;
    let count =
        |name: &str| -> rusqlite::Result<u32> { Ok(row.get::<_, i64>(name)?.max(0) as u32) };
    Ok(Source {
        id: row.get("id")?,
        forge_id: row.get("forge_id")?,
        forge: row.get("forge")?,
        provider: Provider::parse(&provider).unwrap_or(Provider::Github),
        kind: SourceKind::parse(&kind).unwrap_or(SourceKind::Org),
        target: row.get("target")?,
        interval_secs: row.get::<_, i64>("interval_secs")?.max(1) as u64,
        public: row.get("public")?,
        delete_missing: row.get("delete_missing")?,
        next_poll: Some(row.get("next_poll")?),
        last_poll: row.get("last_poll")?,
        last_success: row.get("last_success")?,
        last_error: row.get("last_error")?,
        failures: count("failures")?,
        unchanged: count("unchanged")?,
        repo_count: count("repo_count")?,
        created_at: Some(row.get("created_at")?),
    })
}

/// What a new source is made of.
#[derive(Debug, Clone)]
pub struct NewSource<'a> {
    pub forge: ForgeId,
    pub kind: SourceKind,
    pub target: &'a str,
    pub interval_secs: u64,
    pub public: bool,
    pub delete_missing: bool,
}

/// Records a source, due for its first poll now; `None` when the same list
/// of the same forge is already followed.
pub fn create(conn: &Connection, new: &NewSource<'_>) -> Result<Option<Source>> {
    let id = SourceId::new();
    let now = now_ms();
    let inserted = cached_execute(conn,
        "INSERT OR IGNORE INTO mirror_sources (id, forge_id, kind, target, interval_secs, public, delete_missing, next_poll, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
        rusqlite::params![id, new.forge, new.kind.as_str(), new.target, new.interval_secs as i64, new.public, new.delete_missing, now],
    )?;
    if inserted == 0 {
        return Ok(None);
    }
    get(conn, id)
}

pub fn get(conn: &Connection, id: SourceId) -> Result<Option<Source>> {
    Ok(cached_query_row(conn, &format!("{SELECT} WHERE s.id = ?1"), [id], from_row).optional()?)
}

pub fn list(conn: &Connection) -> Result<Vec<Source>> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} ORDER BY f.name, s.kind, s.target"))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Stops following a source; its mirrors stay as they are.
pub fn delete(conn: &Connection, id: SourceId) -> Result<bool> {
    Ok(cached_execute(conn, "DELETE FROM mirror_sources WHERE id = ?1", [id])? == 1)
}

/// Every source and when it is next due.
pub fn schedule(conn: &Connection) -> Result<Vec<(SourceId, i64)>> {
    let mut stmt = conn.prepare_cached("SELECT id, next_poll FROM mirror_sources")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// Due at once.
pub fn request_now(conn: &Connection, id: SourceId) -> Result<bool> {
    Ok(cached_execute(
        conn,
        "UPDATE mirror_sources SET next_poll = ?2 WHERE id = ?1",
        rusqlite::params![id, now_ms()],
    )? == 1)
}

/// The pages of the last answer, in order.
pub fn pages(conn: &Connection, id: SourceId) -> Result<Vec<Page>> {
    let mut stmt = conn.prepare_cached(
        "SELECT path, etag, next_path, repos FROM mirror_source_pages WHERE source_id = ?1 ORDER BY page",
    )?;
    let rows = stmt.query_map([id], |r| {
        let repos: String = r.get(3)?;
        Ok(Page {
            path: r.get(0)?,
            etag: r.get(1)?,
            next_path: r.get(2)?,
            // A damaged row only costs a full fetch of that page next time.
            repos: serde_json::from_str(&repos).unwrap_or_default(),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Replaces the stored pages with a new answer.
pub fn save_pages(conn: &Connection, id: SourceId, pages: &[Page]) -> Result<()> {
    cached_execute(
        conn,
        "DELETE FROM mirror_source_pages WHERE source_id = ?1",
        [id],
    )?;
    for (n, page) in pages.iter().enumerate() {
        let repos = serde_json::to_string(&page.repos).unwrap_or_else(|_| "[]".to_owned());
        cached_execute(
            conn,
            "INSERT INTO mirror_source_pages (source_id, page, path, etag, next_path, repos) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![id, n as i64, page.path, page.etag, page.next_path, repos],
        )?;
    }
    Ok(())
}

pub fn members(conn: &Connection, id: SourceId) -> Result<Vec<Member>> {
    let mut stmt = conn.prepare_cached(
        "SELECT remote, repo_id, listed, created FROM mirror_source_repos WHERE source_id = ?1 ORDER BY remote",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok(Member {
            remote: r.get(0)?,
            repo_id: r.get(1)?,
            listed: r.get(2)?,
            created: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Records a listed repository and its mirror; `created` says whether the
/// source made that mirror (`None` keeps what is known).
pub fn set_member(
    conn: &Connection,
    id: SourceId,
    remote: &str,
    repo: Option<RepoId>,
    listed: bool,
    created: Option<bool>,
) -> Result<()> {
    cached_execute(
        conn,
        "INSERT INTO mirror_source_repos (source_id, remote, repo_id, listed, created)
         VALUES (?1, ?2, ?3, ?4, coalesce(?5, 0))
         ON CONFLICT (source_id, remote) DO UPDATE SET repo_id = excluded.repo_id,
            listed = excluded.listed, created = coalesce(?5, created)",
        rusqlite::params![id, remote, repo, listed, created],
    )?;
    Ok(())
}

/// Whether a source other than `except` lists `repo` now.
pub fn listed_elsewhere(conn: &Connection, repo: RepoId, except: SourceId) -> Result<bool> {
    Ok(cached_query_row(
        conn,
        "SELECT EXISTS (SELECT 1 FROM mirror_source_repos WHERE repo_id = ?1 AND listed = 1 AND source_id != ?2)",
        rusqlite::params![repo, except],
        |r| r.get(0),
    )?)
}

/// The local repositories that sources of `forge` made for `remote`.
pub fn repos_of_remote(conn: &Connection, forge: ForgeId, remote: &str) -> Result<Vec<RepoId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT m.repo_id FROM mirror_source_repos m JOIN mirror_sources s ON s.id = m.source_id
         WHERE s.forge_id = ?1 AND lower(m.remote) = lower(?2) AND m.repo_id IS NOT NULL",
    )?;
    let rows = stmt.query_map(rusqlite::params![forge, remote], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A poll that the forge answered "not modified" throughout: nothing changes
/// but the times.
pub fn unchanged(conn: &Connection, id: SourceId) -> Result<()> {
    let now = now_ms();
    cached_execute(conn,
        "UPDATE mirror_sources SET last_poll = ?2, last_success = ?2, last_error = NULL, failures = 0,
            unchanged = unchanged + 1, next_poll = ?2 + interval_secs * 1000 WHERE id = ?1",
        rusqlite::params![id, now],
    )?;
    Ok(())
}

/// A poll that read the list; `error` names repositories that could not be
/// mirrored (the poll itself succeeded).
pub fn succeed(
    conn: &Connection,
    id: SourceId,
    repo_count: usize,
    error: Option<&str>,
) -> Result<()> {
    let now = now_ms();
    cached_execute(conn,
        "UPDATE mirror_sources SET last_poll = ?2, last_success = ?2, last_error = ?4, failures = 0,
            unchanged = 0, repo_count = ?3, next_poll = ?2 + interval_secs * 1000 WHERE id = ?1",
        rusqlite::params![id, now, repo_count as i64, error],
    )?;
    Ok(())
}

/// A failed poll, retried after `retry_ms`.
pub fn fail(conn: &Connection, id: SourceId, error: &str, retry_ms: i64) -> Result<u32> {
    let now = now_ms();
    cached_execute(
        conn,
        "UPDATE mirror_sources SET last_poll = ?2, last_error = ?3, failures = failures + 1,
            next_poll = ?2 + ?4 WHERE id = ?1",
        rusqlite::params![id, now, error, retry_ms],
    )?;
    let failures: i64 = cached_query_row(
        conn,
        "SELECT failures FROM mirror_sources WHERE id = ?1",
        [id],
        |r| r.get(0),
    )?;
    Ok(failures.max(0) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{StoreError, forges, test_store};

    #[test]
    fn sources_keep_pages_and_members() {
        let (_dir, store) = test_store();
        let source = store
            .write(|tx| {
                let forge = forges::create(
                    tx,
                    "github",
                    Provider::Github,
                    "https://api.github.com",
                    false,
                )?;
                let new = NewSource {
                    forge: forge.id,
                    kind: SourceKind::Starred,
                    target: "mona",
                    interval_secs: 3600,
                    public: false,
                    delete_missing: true,
                };
                let source = create(tx, &new)?.expect("created");
                assert!(create(tx, &new)?.is_none(), "the same list twice");
                Ok::<_, StoreError>(source)
            })
            .unwrap();
        assert_eq!(source.forge, "github");
        let page = Page {
            path: "/users/mona/starred?per_page=100".into(),
            etag: Some("W/\"1\"".into()),
            next_path: None,
            repos: vec![Listed {
                remote: "octo/a".into(),
                clone_url: "https://github.com/octo/a.git".into(),
            }],
        };
        store
            .write(|tx| save_pages(tx, source.id, std::slice::from_ref(&page)))
            .unwrap();
        assert_eq!(store.read(|c| pages(c, source.id)).unwrap(), vec![page]);
        assert!(source.delete_missing);
        store
            .write(|tx| set_member(tx, source.id, "octo/a", None, true, Some(true)))
            .unwrap();
        store
            .write(|tx| set_member(tx, source.id, "octo/a", None, false, None))
            .unwrap();
        let all = store.read(|c| members(c, source.id)).unwrap();
        assert_eq!(all.len(), 1);
        assert!(!all[0].listed);
        assert!(all[0].created, "kept when not given");
        store
            .write(|tx| set_member(tx, source.id, "octo/a", None, true, Some(false)))
            .unwrap();
        assert!(!store.read(|c| members(c, source.id)).unwrap()[0].created);
        store.write(|tx| unchanged(tx, source.id)).unwrap();
        store.write(|tx| fail(tx, source.id, "down", 10)).unwrap();
        let read = store.read(|c| get(c, source.id)).unwrap().unwrap();
        assert_eq!((read.unchanged, read.failures), (1, 1));
        assert!(store.write(|tx| delete(tx, source.id)).unwrap());
        assert!(store.read(|c| pages(c, source.id)).unwrap().is_empty());
    }
}
