//! Bare repositories on disk: `DATA/repos/OWNER/NAME.git`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use hangar_core::data_dir::DataDir;
use hangar_core::repo_name::RepoName;

/// Where a (validated) repository lives.
pub fn path(data: &DataDir, name: &RepoName) -> PathBuf {
    data.repos().join(name.relative_path())
}

/// `git init --bare` with `main` as the default branch.
pub async fn init(path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        anyhow::bail!(
            "{} already exists on disk; remove it or pick another name",
            path.display()
        );
    }
    let output = tokio::process::Command::new("git")
        .args(["init", "--quiet", "--bare", "--initial-branch=main"])
        .arg(path)
        .output()
        .await
        .context("cannot run git; is it installed and on PATH?")?;
    if !output.status.success() {
        anyhow::bail!(
            "git init failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Moves a repository out of the way, then removes it, so a half-removed
/// tree is never served under its name.
pub async fn remove(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let trash = beside(path, "deleted");
    tokio::fs::rename(path, &trash).await?;
    tokio::fs::remove_dir_all(&trash).await?;
    Ok(())
}

/// After a repository's row is deleted: its workflow secrets (which would
/// otherwise outlive it, unreachable) and its directory.
pub async fn remove_deleted(
    agent: &std::sync::Arc<crate::agent::Agent>,
    id: hangar_core::ids::RepoId,
    name: &RepoName,
) -> anyhow::Result<()> {
    agent
        .db(move |a| {
            crate::build::secrets::remove_all(a.secrets.as_ref(), id).map_err(anyhow::Error::from)
        })
        .await?;
    remove(&path(&agent.data, name)).await
}

/// A fresh name next to `path` (`NAME.WHAT-ULID`): never a repository's
/// name, since those all end in `.git`.
fn beside(path: &Path, what: &str) -> PathBuf {
    path.with_extension(format!("{what}-{}", hangar_core::ids::EventId::new()))
}

/// Where to build a repository that will replace `path` once complete
/// (see [`replace`]). Leftovers of earlier attempts (a crash, a killed git)
/// are removed first; a repository whose name merely starts the same way
/// (`NAME.staging-x.git`) is not one of them.
pub async fn staging(path: &Path) -> anyhow::Result<PathBuf> {
    const WHAT: &str = "staging";
    if let (Some(dir), Some(stem)) = (path.parent(), path.file_stem()) {
        let prefix = format!("{}.{WHAT}-", stem.to_string_lossy());
        if let Ok(mut entries) = tokio::fs::read_dir(dir).await {
            while let Some(entry) = entries.next_entry().await? {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(&prefix) && !name.ends_with(".git") {
                    tokio::fs::remove_dir_all(entry.path()).await?;
                }
            }
        }
    }
    Ok(beside(path, WHAT))
}

/// Puts the complete repository `new` where `path` is. What stood there is
/// moved aside first and removed after, so `path` never holds a mix; when it
/// is missing (a crash between the two renames), `new` just moves in.
pub async fn replace(path: &Path, new: &Path) -> anyhow::Result<()> {
    let old = beside(path, "deleted");
    let moved = match tokio::fs::rename(path, &old).await {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e).with_context(|| format!("cannot move {} aside", path.display())),
    };
    tokio::fs::rename(new, path)
        .await
        .with_context(|| format!("cannot move {} into place", new.display()))?;
    if moved {
        tokio::fs::remove_dir_all(&old).await?;
    }
    Ok(())
}

/// After a push into a repository whose HEAD names a branch that does not
/// exist (a first push of `master` or `trunk`), points HEAD at a pushed branch
/// so clones check something out.
pub async fn fix_head(path: &Path, pushed_branches: &[String]) -> anyhow::Result<()> {
    let head = crate::git::read::head_target(path)?;
    let Some(head) = head else { return Ok(()) };
    if crate::git::read::ref_target(path, &head)?.is_some() {
        return Ok(());
    }
    let Some(branch) = pushed_branches
        .iter()
        .find(|b| *b == "refs/heads/main")
        .or(pushed_branches.first())
    else {
        return Ok(());
    };
    let status = tokio::process::Command::new("git")
        .arg("--git-dir")
        .arg(path)
        .args(["symbolic-ref", "HEAD"])
        .arg(branch)
        .status()
        .await?;
    anyhow::ensure!(status.success(), "git symbolic-ref HEAD {branch} failed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn staging_clears_leftovers_but_no_repository() {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = dir.path().join("app.git");
        let leftover = dir.path().join("app.staging-01OLD");
        let lookalike = dir.path().join("app.staging-x.git");
        let other = dir.path().join("apps.staging-01OLD");
        for d in [&repo, &leftover, &lookalike, &other] {
            std::fs::create_dir_all(d.join("objects")).expect("mkdir");
        }
        let staging = staging(&repo).await.expect("staging");
        assert_eq!(staging.parent(), Some(dir.path()));
        assert!(!staging.exists());
        assert!(!leftover.exists());
        assert!(repo.exists() && lookalike.exists() && other.exists());

        std::fs::create_dir_all(staging.join("refs")).expect("mkdir");
        replace(&repo, &staging).await.expect("replace");
        assert!(repo.join("refs").exists() && !repo.join("objects").exists());
        assert!(!staging.exists());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("read dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 3, "the old repository is gone: {names:?}");
    }
}
