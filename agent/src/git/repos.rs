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
    let trash = path.with_extension(format!("deleted-{}", hangar_core::ids::EventId::new()));
    tokio::fs::rename(path, &trash).await?;
    tokio::fs::remove_dir_all(&trash).await?;
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
