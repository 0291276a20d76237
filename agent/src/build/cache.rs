//! `actions/cache` (restore now, save after a successful job),
//! `actions/cache/restore` and `actions/cache/save`, built in: one plain tar
//! per entry under `DATA/cache/`, recorded per repository in SQLite, the least
//! recently used evicted beyond `cache_max_mb`.
//!
//! Each path line is stored under its index (`0/...`, `1/...`), so entries
//! restore to the same places whether they are in the workspace or in `~`
//! (DerivedData, SwiftPM caches).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use hangar_core::store::artifacts::{self as records, CacheEntry};
use hangar_core::store::builds::{self, Job};
use sha2::{Digest, Sha256};

use super::archive;
use super::artifacts::{Dirs, human_size};
use crate::agent::Agent;

/// Longest key GitHub accepts.
const MAX_KEY: usize = 512;

/// A save to run when the job has succeeded.
#[derive(Debug, Clone)]
pub struct PendingSave {
    key: String,
    paths: String,
}

/// What a restore found, as the action's outputs.
pub struct Restored {
    pub outputs: BTreeMap<String, String>,
    pub message: String,
    /// Set by `actions/cache` when the key did not hit exactly.
    pub save_later: Option<PendingSave>,
}

struct Request {
    key: String,
    paths: String,
    version: String,
}

fn request(with: &BTreeMap<String, String>) -> Result<Request, String> {
    let key = with
        .get("key")
        .map(|k| k.trim().to_owned())
        .unwrap_or_default();
    if key.is_empty() || key.len() > MAX_KEY || key.contains(',') {
        return Err(format!(
            "cache `key` {key:?} is not valid: give 1 to {MAX_KEY} characters without commas"
        ));
    }
    let paths = with.get("path").cloned().unwrap_or_default();
    let lines = archive::lines(&paths);
    if lines.is_empty() {
        return Err(
            "the cache needs `path`: the directories or files to keep, one per line".into(),
        );
    }
    if let Some(line) = lines.iter().find(|l| l.contains(['*', '?', '[', '!'])) {
        return Err(format!(
            "cache path {line:?} has a wildcard or exclusion; list the directories or files themselves"
        ));
    }
    // The same key saved for other paths is another entry (GitHub's "version").
    let version = hex::encode(Sha256::digest(lines.join("\n").as_bytes()));
    Ok(Request {
        key,
        paths,
        version,
    })
}

pub async fn restore(
    agent: &Arc<Agent>,
    job: &Job,
    place: &Dirs<'_>,
    with: &BTreeMap<String, String>,
    save_after: bool,
) -> Result<Restored, String> {
    let req = request(with)?;
    let restore_keys: Vec<String> = with
        .get("restore-keys")
        .map(|t| archive::lines(t).into_iter().map(String::from).collect())
        .unwrap_or_default();
    let repo = repo_of(agent, job).await?;
    let (version, key) = (req.version.clone(), req.key.clone());
    let found = agent
        .db(move |a| {
            a.store
                .write(|tx| {
                    let found = records::find_cache(tx, repo, &version, &key, &restore_keys)?;
                    if let Some((entry, _)) = &found {
                        records::touch_cache(tx, entry, hangar_core::store::now_ms())?;
                    }
                    Ok::<_, hangar_core::store::StoreError>(found)
                })
                .map_err(anyhow::Error::from)
        })
        .await
        .map_err(|e| format!("cannot read the cache: {e}"))?;
    let mut outputs = BTreeMap::from([
        ("cache-primary-key".to_owned(), req.key.clone()),
        ("cache-hit".to_owned(), "false".to_owned()),
    ]);
    let later = PendingSave {
        key: req.key.clone(),
        paths: req.paths.clone(),
    };
    let Some((entry, exact)) = found else {
        return Ok(Restored {
            outputs,
            message: format!("Cache not found for key `{}`", req.key),
            save_later: save_after.then_some(later),
        });
    };
    let targets = archive::lines(&req.paths)
        .iter()
        .map(|l| archive::resolve(place.workspace, place.home, l))
        .collect::<Result<Vec<PathBuf>, String>>()?;
    let file = agent.data.root().join("cache").join(&entry.file);
    let files = tokio::task::spawn_blocking(move || {
        archive::extract(&file, |name| {
            let mut parts = name.components();
            let index: usize = match parts.next() {
                Some(Component::Normal(i)) => i.to_str()?.parse().ok()?,
                _ => return None,
            };
            let rest = parts.as_path();
            let target = targets.get(index)?;
            Some(if rest.as_os_str().is_empty() {
                target.clone()
            } else {
                target.join(rest)
            })
        })
    })
    .await
    .map_err(|e| format!("cache restore failed: {e}"))??;
    outputs.insert("cache-hit".into(), exact.to_string());
    outputs.insert("cache-matched-key".into(), entry.key.clone());
    Ok(Restored {
        outputs,
        message: format!(
            "Cache restored from key `{}` ({files} files, {})",
            entry.key,
            human_size(entry.size.max(0) as u64)
        ),
        save_later: (save_after && !exact).then_some(later),
    })
}

/// `actions/cache/save`, or the post step of `actions/cache`.
pub async fn save(
    agent: &Arc<Agent>,
    job: &Job,
    place: &Dirs<'_>,
    with: &BTreeMap<String, String>,
) -> Result<String, String> {
    let req = request(with)?;
    let repo = repo_of(agent, job).await?;
    let sources: Vec<(usize, PathBuf)> = archive::lines(&req.paths)
        .iter()
        .map(|l| archive::resolve(place.workspace, place.home, l))
        .collect::<Result<Vec<PathBuf>, String>>()?
        .into_iter()
        .enumerate()
        .collect();
    let dir = agent.data.root().join("cache");
    let file_name = format!("{}.tar", hangar_core::ids::EventId::new());
    let file = dir.join(&file_name);
    let written = file.clone();
    let packed = tokio::task::spawn_blocking(move || {
        let mut entries = Vec::new();
        for (index, source) in &sources {
            let selection = archive::select(source, None, &source.to_string_lossy(), true)?;
            for f in selection.files {
                let rest = f.strip_prefix(source).unwrap_or(&f);
                let name = if rest.as_os_str().is_empty() {
                    PathBuf::from(index.to_string())
                } else {
                    Path::new(&index.to_string()).join(rest)
                };
                entries.push((f, name));
            }
        }
        if entries.is_empty() {
            return Ok(None);
        }
        archive::write(&written, &entries).map(|size| Some((entries.len(), size)))
    })
    .await
    .map_err(|e| format!("cache save failed: {e}"))??;
    let Some((files, size)) = packed else {
        return Ok(format!(
            "Warning: nothing to cache for key `{}`: none of the paths exist",
            req.key
        ));
    };
    let cap = agent.settings.cache_max_mb.saturating_mul(1 << 20) as i64;
    let (key, version, name) = (req.key.clone(), req.version.clone(), file_name.clone());
    let (inserted, evicted) = agent
        .db(move |a| {
            a.store
                .write(|tx| {
                    let now = hangar_core::store::now_ms();
                    let inserted =
                        records::insert_cache(tx, repo, &key, &version, &name, size as i64, now)?;
                    let evicted = records::cache_over_cap(tx, cap)?;
                    for entry in &evicted {
                        records::delete_cache(tx, entry)?;
                    }
                    Ok::<_, hangar_core::store::StoreError>((inserted, evicted))
                })
                .map_err(anyhow::Error::from)
        })
        .await
        .map_err(|e| format!("cannot record the cache entry: {e}"))?;
    remove_files(&dir, &evicted);
    if !inserted {
        let _ = std::fs::remove_file(&file);
        return Ok(format!(
            "Cache key `{}` was saved meanwhile by another job; keeping that one",
            req.key
        ));
    }
    Ok(format!(
        "Cache saved with key `{}` ({files} files, {})",
        req.key,
        human_size(size)
    ))
}

/// Runs the saves `actions/cache` steps asked for, once the job succeeded.
pub async fn post(
    agent: &Arc<Agent>,
    job: &Job,
    place: &Dirs<'_>,
    pending: &PendingSave,
) -> Result<String, String> {
    let with = BTreeMap::from([
        ("key".to_owned(), pending.key.clone()),
        ("path".to_owned(), pending.paths.clone()),
    ]);
    save(agent, job, place, &with).await
}

/// Removes the files of forgotten entries (after their records are gone).
pub fn remove_files(dir: &Path, entries: &[CacheEntry]) {
    for entry in entries {
        let _ = std::fs::remove_file(dir.join(&entry.file));
    }
}

async fn repo_of(agent: &Arc<Agent>, job: &Job) -> Result<hangar_core::ids::RepoId, String> {
    let build = job.build_id;
    agent
        .db(move |a| {
            a.store
                .read(|c| builds::get(c, build))
                .map_err(anyhow::Error::from)
        })
        .await
        .map_err(|e| format!("cannot read the build: {e}"))?
        .map(|b| b.repo_id)
        .ok_or_else(|| "the build is gone".to_owned())
}
