//! One sync of one mirror: a pull mirror fetches every ref from upstream
//! (pruning what upstream deleted); a push mirror forwards its branches.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hangar_core::store::events::{self, RefUpdate};
use hangar_core::store::mirrors::{self, Mirror};

use super::remote::{self, Remote};
use crate::agent::Agent;

/// What a successful sync changed.
#[derive(Debug, Default)]
pub struct Outcome {
    pub refs_changed: i64,
    pub bytes: Option<i64>,
}

/// Fetches all refs of a pull mirror and records the ones that moved.
pub async fn fetch(agent: &Arc<Agent>, mirror: &Mirror) -> Result<Outcome, String> {
    let path = crate::git::repos::path(&agent.data, &mirror.repo);
    let remote = Remote::open(agent, &mirror.url, mirror.allow_http).await?;
    // Missing only after a crash between the two renames of `clone`.
    let before = if path.exists() {
        refs(&path).await?
    } else {
        BTreeMap::new()
    };
    let size_before = objects_size(&path).await;

    if before.is_empty() {
        clone(agent, mirror, &remote, &path).await?;
    } else {
        let (mut cmd, _key) = remote.git(&path).map_err(|e| e.to_string())?;
        cmd.args([
            "fetch",
            "--prune",
            "--progress",
            "--no-tags",
            "--end-of-options",
        ])
        .arg(remote.url.to_string())
        .arg("+refs/*:refs/*");
        run_with_progress(agent, mirror, cmd)
            .await
            .map_err(|e| remote.explain(e))?;
    }

    let after = refs(&path).await?;
    let updates = diff(&before, &after);
    let bytes = (objects_size(&path).await - size_before).max(0);
    let outcome = Outcome {
        refs_changed: updates.len() as i64,
        bytes: Some(bytes),
    };
    if !updates.is_empty() {
        crate::git::updates::record(
            agent,
            (mirror.repo_id, &mirror.repo),
            &path,
            events::MIRROR_FETCH,
            None,
            updates,
        )
        .await
        .map_err(|e| format!("fetched, but cannot record the fetch: {e}"))?;
    }
    Ok(outcome)
}

/// The first sync of a pull mirror (or any sync while it has no refs):
/// `git clone --mirror` beside the repository, which then replaces the empty
/// one the mirror was created with. Cheaper than a fetch into an empty
/// repository (index-pack checks the pack is self-contained, so no separate
/// connectivity walk), and the clone's HEAD follows upstream's default
/// branch. A failed or cut-off clone leaves only the staging directory,
/// removed before the next attempt.
async fn clone(
    agent: &Arc<Agent>,
    mirror: &Mirror,
    remote: &Remote,
    path: &Path,
) -> Result<(), String> {
    let staging = crate::git::repos::staging(path)
        .await
        .map_err(|e| format!("cannot prepare the clone beside {}: {e}", path.display()))?;
    let (mut cmd, _key) = remote.command().map_err(|e| e.to_string())?;
    cmd.args(["clone", "--mirror", "--progress", "--end-of-options"])
        .arg(remote.url.to_string())
        .arg(&staging);
    let cloned = async {
        run_with_progress(agent, mirror, cmd)
            .await
            .map_err(|e| remote.explain(e))?;
        // The upstream URL lives in SQLite; the repository stays as plain
        // as one `hangar repo create` makes.
        let status = tokio::process::Command::new("git")
            .arg("--git-dir")
            .arg(&staging)
            .args(["config", "--remove-section", "remote.origin"])
            .status()
            .await
            .map_err(|e| format!("cannot run git: {e}"))?;
        if !status.success() {
            return Err("cloned, but cannot drop the clone's remote from its config".to_owned());
        }
        // A mirror removed while it cloned must not reappear on disk.
        if super::row(agent, mirror.repo_id).await?.is_none() {
            return Err("the mirror was removed during its initial clone".to_owned());
        }
        crate::git::repos::replace(path, &staging)
            .await
            .map_err(|e| format!("cloned, but {e:#}"))
    }
    .await;
    if cloned.is_err() {
        let _ = tokio::fs::remove_dir_all(&staging).await;
    }
    cloned
}

/// Pushes a push mirror's branches (all branches and tags, or the chosen
/// branch patterns) to its remote, deleting there what was deleted here.
pub async fn forward(agent: &Arc<Agent>, mirror: &Mirror) -> Result<Outcome, String> {
    let path = crate::git::repos::path(&agent.data, &mirror.repo);
    let remote = Remote::open(agent, &mirror.url, mirror.allow_http).await?;
    let refspecs: Vec<String> = match &mirror.branches {
        Some(patterns) => hangar_core::mirror::parse_branch_patterns(patterns)?
            .iter()
            .map(|p| format!("+refs/heads/{p}:refs/heads/{p}"))
            .collect(),
        None => vec![
            "+refs/heads/*:refs/heads/*".to_owned(),
            "+refs/tags/*:refs/tags/*".to_owned(),
        ],
    };
    if refs(&path).await?.is_empty() {
        // Nothing pushed here yet: nothing to forward (and nothing to prune).
        return Ok(Outcome::default());
    }
    let (mut cmd, _key) = remote.git(&path).map_err(|e| e.to_string())?;
    cmd.args([
        "push",
        "--porcelain",
        "--prune",
        "--progress",
        "--end-of-options",
    ])
    .arg(remote.url.to_string())
    .args(&refspecs);
    let output = run_with_progress(agent, mirror, cmd)
        .await
        .map_err(|e| remote.explain(e))?;
    let (changed, rejected) = parse_porcelain(&output.stdout);
    if !rejected.is_empty() {
        return Err(format!("upstream rejected: {}", rejected.join("; ")));
    }
    Ok(Outcome {
        refs_changed: changed,
        bytes: None,
    })
}

/// Runs git while copying its latest progress line to the mirror's row at
/// most twice a second, so `hangar mirror show` can follow a long clone.
async fn run_with_progress(
    agent: &Arc<Agent>,
    mirror: &Mirror,
    cmd: tokio::process::Command,
) -> Result<remote::Output, String> {
    let (progress, mut lines) = tokio::sync::watch::channel(String::new());
    let writer = {
        let agent = agent.clone();
        let id = mirror.repo_id;
        tokio::spawn(async move {
            while lines.changed().await.is_ok() {
                let line = lines.borrow_and_update().clone();
                let _ = agent
                    .db(move |a| {
                        a.store
                            .write(|tx| mirrors::set_progress(tx, id, &line))
                            .map_err(anyhow::Error::from)
                    })
                    .await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    let result = remote::run(cmd, progress).await;
    writer.abort();
    result
}

/// `(changed, rejected)` from `git push --porcelain`: lines `FLAG\tFROM:TO\tSUMMARY`.
fn parse_porcelain(stdout: &str) -> (i64, Vec<String>) {
    let mut changed = 0;
    let mut rejected = Vec::new();
    for line in stdout.lines() {
        let mut parts = line.split('\t');
        let (Some(flag), Some(refs)) = (parts.next(), parts.next()) else {
            continue;
        };
        match flag {
            " " | "+" | "-" | "*" => changed += 1,
            "!" => rejected.push(format!("{refs} ({})", parts.next().unwrap_or("rejected"))),
            _ => {}
        }
    }
    (changed, rejected)
}

/// Every ref and the object it names.
async fn refs(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let output = tokio::process::Command::new("git")
        .arg("--git-dir")
        .arg(path)
        .args(["for-each-ref", "--format=%(objectname) %(refname)"])
        .output()
        .await
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cannot list refs of {}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(oid, name)| (name.to_owned(), oid.to_owned()))
        .collect())
}

/// The ref updates that turn `before` into `after` (all zeros = none).
fn diff(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<RefUpdate> {
    let width = before
        .values()
        .chain(after.values())
        .map(String::len)
        .next()
        .unwrap_or(40);
    let zero = "0".repeat(width);
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let old = before.get(name).unwrap_or(&zero);
            let new = after.get(name).unwrap_or(&zero);
            (old != new).then(|| RefUpdate {
                old: old.clone(),
                new: new.clone(),
                name: name.clone(),
            })
        })
        .collect()
}

/// Bytes under `objects/`, to tell how much a fetch brought.
async fn objects_size(path: &Path) -> i64 {
    let objects = path.join("objects");
    tokio::task::spawn_blocking(move || {
        let mut total = 0i64;
        let mut stack = vec![objects];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                match entry.metadata() {
                    Ok(m) if m.is_dir() => stack.push(entry.path()),
                    Ok(m) => total += m.len() as i64,
                    Err(_) => {}
                }
            }
        }
        total
    })
    .await
    .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn porcelain_counts_changes_and_rejections() {
        let out = "To http://x/a.git\n*\trefs/heads/new:refs/heads/new\t[new branch]\n=\trefs/heads/same:refs/heads/same\t[up to date]\n-\t:refs/heads/gone\t[deleted]\n!\trefs/heads/main:refs/heads/main\t[rejected] (fetch first)\nDone\n";
        let (changed, rejected) = parse_porcelain(out);
        assert_eq!(changed, 2);
        assert_eq!(rejected.len(), 1);
        assert!(rejected[0].contains("fetch first"));
    }

    #[test]
    fn diff_names_created_moved_and_deleted_refs() {
        let a = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.repeat(40)))
                .collect()
        };
        let updates = diff(
            &a(&[
                ("refs/heads/main", "1"),
                ("refs/heads/gone", "2"),
                ("refs/tags/v1", "3"),
            ]),
            &a(&[
                ("refs/heads/main", "4"),
                ("refs/heads/new", "5"),
                ("refs/tags/v1", "3"),
            ]),
        );
        let names: Vec<_> = updates.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(
            names,
            ["refs/heads/gone", "refs/heads/main", "refs/heads/new"]
        );
        assert!(crate::git::push::is_null(&updates[0].new));
        assert!(crate::git::push::is_null(&updates[2].old));
    }
}
