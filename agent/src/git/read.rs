//! Reading repositories with gix: branches, tags, commits, ref targets.

use std::path::Path;

use serde::Serialize;

/// A branch or tag with the commit it points at.
#[derive(Debug, Clone, Serialize)]
pub struct RefInfo {
    pub name: String,
    pub target: String,
    pub commit: Option<CommitInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CommitInfo {
    pub id: String,
    pub summary: String,
    pub author: String,
    pub author_email: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub parents: Vec<String>,
}

/// A repository read failed (a broken or missing repository).
#[derive(Debug, thiserror::Error)]
#[error("cannot read repository: {0}")]
pub struct ReadError(String);

fn err(e: impl std::fmt::Display) -> ReadError {
    ReadError(e.to_string())
}

fn open(path: &Path) -> Result<gix::Repository, ReadError> {
    gix::open_opts(path, gix::open::Options::isolated()).map_err(err)
}

fn commit_info(commit: &gix::Commit<'_>) -> Result<CommitInfo, ReadError> {
    let author = commit.author().map_err(err)?;
    let seconds = author.time().map_err(err)?.seconds;
    Ok(CommitInfo {
        id: commit.id.to_string(),
        summary: commit.message().map_err(err)?.summary().to_string(),
        author: author.name.to_string(),
        author_email: author.email.to_string(),
        time: hangar_core::store::format_ms(seconds.saturating_mul(1000)),
        parents: commit.parent_ids().map(|p| p.to_string()).collect(),
    })
}

/// Branches (`refs/heads/*`) or tags (`refs/tags/*`), sorted by name.
pub fn refs(path: &Path, prefix: &str) -> Result<Vec<RefInfo>, ReadError> {
    let repo = open(path)?;
    let platform = repo.references().map_err(err)?;
    let mut out = Vec::new();
    for reference in platform.prefixed(prefix).map_err(err)? {
        let mut reference = reference.map_err(err)?;
        let name = reference.name().as_bstr().to_string();
        let Ok(id) = reference.peel_to_id() else {
            continue;
        };
        let commit = repo
            .find_commit(id)
            .ok()
            .map(|c| commit_info(&c))
            .transpose()?;
        let short = name.strip_prefix(prefix).unwrap_or(&name).to_owned();
        out.push(RefInfo {
            name: short,
            target: id.to_string(),
            commit,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Up to `limit` commits reachable from `start` (a ref name or commit id),
/// newest first.
pub fn commits(path: &Path, start: &str, limit: usize) -> Result<Vec<CommitInfo>, ReadError> {
    let repo = open(path)?;
    let id = repo
        .rev_parse_single(start)
        .map_err(|_| ReadError(format!("no branch, tag or commit named {start:?}")))?;
    let walk = repo
        .rev_walk([id.detach()])
        .sorting(gix::revision::walk::Sorting::ByCommitTime(
            Default::default(),
        ))
        .all()
        .map_err(err)?;
    let mut out = Vec::new();
    for info in walk.take(limit) {
        let info = info.map_err(err)?;
        out.push(commit_info(&info.object().map_err(err)?)?);
    }
    Ok(out)
}

/// The object a ref points at, if it exists.
pub fn ref_target(path: &Path, name: &str) -> Result<Option<String>, ReadError> {
    let repo = open(path)?;
    let Some(mut reference) = repo.try_find_reference(name).map_err(err)? else {
        return Ok(None);
    };
    Ok(reference.peel_to_id().ok().map(|id| id.to_string()))
}

/// The ref HEAD names (`refs/heads/main`), if HEAD is symbolic.
pub fn head_target(path: &Path) -> Result<Option<String>, ReadError> {
    let repo = open(path)?;
    let head = repo.head_name().map_err(err)?;
    Ok(head.map(|n| n.as_bstr().to_string()))
}

/// Largest workflow file read (the workflow parser's own limit).
const MAX_WORKFLOW_FILE: usize = 512 * 1024;

/// The workflow files (path, contents) at commit `sha`: every blob directly in
/// one of the workflow directories; the parser picks the `.yml`/`.yaml` ones.
pub fn workflow_files(path: &Path, sha: &str) -> Result<Vec<(String, String)>, ReadError> {
    let repo = open(path)?;
    let id = gix::ObjectId::from_hex(sha.as_bytes()).map_err(err)?;
    let tree = repo.find_commit(id).map_err(err)?.tree().map_err(err)?;
    let mut files = Vec::new();
    for dir in hangar_core::workflow::WORKFLOW_DIRS {
        let Some(entry) = tree.lookup_entry_by_path(dir).map_err(err)? else {
            continue;
        };
        let Ok(subtree) = entry.object().map_err(err)?.try_into_tree() else {
            continue;
        };
        for item in subtree.iter() {
            let item = item.map_err(err)?;
            if !item.mode().is_blob() {
                continue;
            }
            let blob = repo.find_object(item.oid()).map_err(err)?;
            let name = format!("{dir}/{}", item.filename());
            let data = &blob.data[..blob.data.len().min(MAX_WORKFLOW_FILE + 1)];
            files.push((name, String::from_utf8_lossy(data).into_owned()));
        }
    }
    Ok(files)
}
