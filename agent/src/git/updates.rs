//! What happens after refs moved in a served repository, however they moved
//! (a push over HTTP, a mirror fetch): the event is recorded before anyone
//! hears success, HEAD is pointed at a branch, and maintenance is queued.

use std::path::Path;
use std::sync::Arc;

use hangar_core::ids::{RepoId, UserId};
use hangar_core::repo_name::RepoName;
use hangar_core::store::events::{self, RefUpdate};

use crate::agent::Agent;

/// Records `updates` as an event of `kind` and does the follow-up work.
pub async fn record(
    agent: &Arc<Agent>,
    repo: (RepoId, &RepoName),
    path: &Path,
    kind: &'static str,
    actor: Option<UserId>,
    updates: Vec<RefUpdate>,
) -> anyhow::Result<()> {
    let (repo_id, name) = repo;
    let mut branches: Vec<String> = updates
        .iter()
        .filter(|u| u.name.starts_with("refs/heads/") && !crate::git::push::is_null(&u.new))
        .map(|u| u.name.clone())
        .collect();
    // A mirror of an upstream whose default branch is `master` should serve it.
    branches.sort_by_key(|b| !matches!(b.as_str(), "refs/heads/main" | "refs/heads/master"));
    let count = updates.len();
    agent
        .db(move |a| {
            a.store
                .write(|tx| events::record_updates(tx, repo_id, kind, actor, &updates))
                .map_err(anyhow::Error::from)
        })
        .await?;
    tracing::info!(repo = %name, updates = count, "{kind} recorded");
    agent.changes.send(crate::changes::Change::Push {
        repo: name.to_string(),
        kind: kind.to_owned(),
        refs: count,
    });
    agent.builds.wake();
    crate::git::repos::fix_head(path, &branches).await?;
    agent.maintenance.request(path);
    if kind == events::PUSH {
        agent.mirrors.repo_pushed(agent, repo_id).await;
    }
    Ok(())
}
