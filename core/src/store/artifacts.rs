//! Build artifacts and the `actions/cache` entries: their records (the files
//! themselves live in the data dir, managed by the agent).

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::{Result, cached_execute, cached_query_row, format_ms, now_ms};
use crate::ids::{BuildId, JobId, RepoId};

/// Files one job uploaded under one name, for one build.
#[derive(Debug, Clone, Serialize)]
pub struct Artifact {
    pub build_id: BuildId,
    pub name: String,
    pub job_id: JobId,
    pub files: i64,
    pub size: i64,
    pub created_at: String,
    pub expires_at: String,
}

const ARTIFACT_COLUMNS: &str = "build_id, name, job_id, files, size, created_at, expires_at";

fn artifact(row: &Row<'_>) -> rusqlite::Result<Artifact> {
    Ok(Artifact {
        build_id: row.get(0)?,
        name: row.get(1)?,
        job_id: row.get(2)?,
        files: row.get(3)?,
        size: row.get(4)?,
        created_at: format_ms(row.get(5)?),
        expires_at: format_ms(row.get(6)?),
    })
}

/// Records an artifact kept for `retention_days`; false when the build
/// already has one of that name.
pub fn insert_artifact(
    conn: &Connection,
    build: BuildId,
    name: &str,
    job: JobId,
    files: i64,
    size: i64,
    retention_days: u32,
) -> Result<bool> {
    let now = now_ms();
    let expires_at = now + i64::from(retention_days) * 86_400_000;
    let changed = cached_execute(conn,
        "INSERT OR IGNORE INTO artifacts (build_id, name, job_id, files, size, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![build, name, job, files, size, now, expires_at],
    )?;
    Ok(changed == 1)
}

pub fn list_artifacts(conn: &Connection, build: BuildId) -> Result<Vec<Artifact>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE build_id = ?1 ORDER BY name"
    ))?;
    let rows = stmt.query_map([build], artifact)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn get_artifact(conn: &Connection, build: BuildId, name: &str) -> Result<Option<Artifact>> {
    Ok(cached_query_row(
        conn,
        &format!("SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE build_id = ?1 AND name = ?2"),
        params![build, name],
        artifact,
    )
    .optional()?)
}

/// Artifacts whose retention ended before `now`.
pub fn expired_artifacts(conn: &Connection, now: i64) -> Result<Vec<Artifact>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE expires_at <= ?1"
    ))?;
    let rows = stmt.query_map([now], artifact)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn delete_artifact(conn: &Connection, build: BuildId, name: &str) -> Result<()> {
    cached_execute(
        conn,
        "DELETE FROM artifacts WHERE build_id = ?1 AND name = ?2",
        params![build, name],
    )?;
    Ok(())
}

/// One saved `actions/cache` entry of a repository.
#[derive(Debug, Clone, Serialize)]
pub struct CacheEntry {
    pub repo_id: RepoId,
    pub key: String,
    /// A hash of the cached paths.
    pub version: String,
    /// The archive's file name under `DATA/cache/`.
    #[serde(skip)]
    pub file: String,
    pub size: i64,
    pub created_at: String,
    pub last_used_at: String,
}

const CACHE_COLUMNS: &str = "repo_id, key, version, file, size, created_at, last_used_at";

fn cache_entry(row: &Row<'_>) -> rusqlite::Result<CacheEntry> {
    Ok(CacheEntry {
        repo_id: row.get(0)?,
        key: row.get(1)?,
        version: row.get(2)?,
        file: row.get(3)?,
        size: row.get(4)?,
        created_at: format_ms(row.get(5)?),
        last_used_at: format_ms(row.get(6)?),
    })
}

/// The entry to restore, as `actions/cache` finds it: the exact `key`, else
/// the newest entry whose key starts with the first matching restore key.
/// Only entries saved for the same paths (`version`) count. The flag says
/// whether the key matched exactly.
pub fn find_cache(
    conn: &Connection,
    repo: RepoId,
    version: &str,
    key: &str,
    restore_keys: &[String],
) -> Result<Option<(CacheEntry, bool)>> {
    let exact = cached_query_row(conn,
            &format!("SELECT {CACHE_COLUMNS} FROM cache_entries WHERE repo_id = ?1 AND version = ?2 AND key = ?3"),
            params![repo, version, key],
            cache_entry,
        )
        .optional()?;
    if let Some(entry) = exact {
        return Ok(Some((entry, true)));
    }
    for prefix in restore_keys {
        let found = cached_query_row(
            conn,
            &format!(
                "SELECT {CACHE_COLUMNS} FROM cache_entries
                     WHERE repo_id = ?1 AND version = ?2 AND substr(key, 1, length(?3)) = ?3
                     ORDER BY created_at DESC, key DESC LIMIT 1"
            ),
            params![repo, version, prefix],
            cache_entry,
        )
        .optional()?;
        if let Some(entry) = found {
            return Ok(Some((entry, false)));
        }
    }
    Ok(None)
}

pub fn touch_cache(conn: &Connection, entry: &CacheEntry, now: i64) -> Result<()> {
    cached_execute(
        conn,
        "UPDATE cache_entries SET last_used_at = ?4 WHERE repo_id = ?1 AND key = ?2 AND version = ?3",
        params![entry.repo_id, entry.key, entry.version, now],
    )?;
    Ok(())
}

/// Records a saved entry; false when the key exists (entries never change).
pub fn insert_cache(
    conn: &Connection,
    repo: RepoId,
    key: &str,
    version: &str,
    file: &str,
    size: i64,
    now: i64,
) -> Result<bool> {
    let changed = cached_execute(conn,
        "INSERT OR IGNORE INTO cache_entries (repo_id, key, version, file, size, created_at, last_used_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![repo, key, version, file, size, now],
    )?;
    Ok(changed == 1)
}

/// Entries to evict, least recently used first, so that what stays fits in
/// `cap` bytes.
pub fn cache_over_cap(conn: &Connection, cap: i64) -> Result<Vec<CacheEntry>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CACHE_COLUMNS} FROM cache_entries ORDER BY last_used_at DESC, created_at DESC"
    ))?;
    let all = stmt
        .query_map([], cache_entry)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut kept = 0i64;
    Ok(all
        .into_iter()
        .filter(|e| {
            kept += e.size;
            kept > cap
        })
        .collect())
}

pub fn list_cache(conn: &Connection, repo: Option<RepoId>) -> Result<Vec<CacheEntry>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CACHE_COLUMNS} FROM cache_entries
         WHERE ?1 IS NULL OR repo_id = ?1 ORDER BY last_used_at DESC"
    ))?;
    let rows = stmt.query_map([repo], cache_entry)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Forgets an entry; the caller removes its file.
pub fn delete_cache(conn: &Connection, entry: &CacheEntry) -> Result<()> {
    cached_execute(
        conn,
        "DELETE FROM cache_entries WHERE repo_id = ?1 AND key = ?2 AND version = ?3",
        params![entry.repo_id, entry.key, entry.version],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store;

    fn repo(conn: &Connection) -> RepoId {
        let name = crate::repo_name::RepoName::parse("acme/app").unwrap();
        crate::store::repos::create(conn, &name, false, "")
            .unwrap()
            .id
    }

    #[test]
    fn cache_lookup_follows_actions_cache() {
        let (_dir, store) = test_store();
        store
            .write(|tx| {
                let r = repo(tx);
                insert_cache(tx, r, "deps-linux-aaa", "v", "1", 10, 1)?;
                insert_cache(tx, r, "deps-linux-bbb", "v", "2", 10, 2)?;
                insert_cache(tx, r, "deps-mac-ccc", "v", "3", 10, 3)?;
                insert_cache(tx, r, "deps-mac-ddd", "other-paths", "4", 10, 4)?;
                assert!(!insert_cache(tx, r, "deps-mac-ccc", "v", "5", 99, 5)?);
                let hit = |key: &str, restore: &[&str]| {
                    let restore: Vec<String> = restore.iter().map(|s| s.to_string()).collect();
                    find_cache(tx, r, "v", key, &restore)
                        .unwrap()
                        .map(|(e, exact)| (e.key, exact))
                };
                assert_eq!(
                    hit("deps-linux-aaa", &["deps-"]),
                    Some(("deps-linux-aaa".into(), true))
                );
                // The newest entry of the first restore key that matches.
                assert_eq!(
                    hit("deps-linux-zzz", &["deps-linux-", "deps-"]),
                    Some(("deps-linux-bbb".into(), false))
                );
                assert_eq!(
                    hit("x", &["nope-", "deps-"]),
                    Some(("deps-mac-ccc".into(), false))
                );
                // `%` and `_` are not wildcards.
                assert_eq!(hit("x", &["deps%", "deps_"]), None);
                Ok::<_, crate::store::StoreError>(())
            })
            .unwrap();
    }

    #[test]
    fn eviction_drops_least_recently_used_first() {
        let (_dir, store) = test_store();
        store
            .write(|tx| {
                let r = repo(tx);
                insert_cache(tx, r, "old", "v", "1", 40, 1)?;
                insert_cache(tx, r, "mid", "v", "2", 40, 2)?;
                insert_cache(tx, r, "new", "v", "3", 40, 3)?;
                let old = list_cache(tx, Some(r))?.pop().expect("entries");
                assert_eq!(old.key, "old");
                touch_cache(tx, &old, 10)?;
                let victims: Vec<String> =
                    cache_over_cap(tx, 80)?.into_iter().map(|e| e.key).collect();
                assert_eq!(victims, vec!["mid".to_owned()]);
                assert!(cache_over_cap(tx, 120)?.is_empty());
                Ok::<_, crate::store::StoreError>(())
            })
            .unwrap();
    }
}
