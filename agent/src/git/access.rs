//! Who may use a repository over git: one rule for every transport (smart
//! HTTP and SSH), so they can never disagree.

use std::path::PathBuf;
use std::sync::Arc;

use hangar_core::repo_name::{InvalidRepoName, RepoName};
use hangar_core::store::repos::{self, Repo};
use hangar_core::store::users::User;

use super::service::Service;
use crate::agent::Agent;

/// Why a git request was refused. Anonymous callers learn nothing about
/// private or missing repositories.
#[derive(Debug, thiserror::Error)]
pub enum Denied {
    #[error(transparent)]
    BadName(#[from] InvalidRepoName),
    #[error("authentication required")]
    SignInRequired { push: bool },
    #[error("repository {0} not found")]
    NotFound(RepoName),
    #[error("{}", read_only(.0))]
    ReadOnly(User),
    /// A push to a pull mirror; the message names its upstream.
    #[error("{0}")]
    Mirror(String),
    #[error("cannot look up the repository: {0}")]
    Internal(String),
}

/// Readers may clone public repositories anonymously and every repository once signed in.
pub fn can_read(user: Option<&User>, repo: &Repo) -> bool {
    repo.public || user.is_some()
}

/// The explanation a read-only user gets when they try to write.
pub fn read_only(user: &User) -> String {
    format!(
        "{} has the {} role, which is read-only; ask an admin for the member role",
        user.name,
        user.role.as_str()
    )
}

/// Finds the repository `name` (`OWNER/NAME`, `.git` optional) and checks
/// that `user` may use `service` on it; returns it with its path on disk.
pub async fn authorize(
    agent: &Arc<Agent>,
    user: Option<&User>,
    name: &str,
    service: Service,
) -> Result<(Repo, PathBuf), Denied> {
    let name = RepoName::parse(name)?;
    let lookup = name.clone();
    let repo = agent
        .db(move |a| {
            a.store
                .read(|c| repos::by_name(c, &lookup))
                .map_err(|e| Denied::Internal(e.to_string()))
        })
        .await?;
    let repo = match (repo, user) {
        (Some(repo), user) if can_read(user, &repo) => repo,
        (_, None) => return Err(Denied::SignInRequired { push: false }),
        (_, Some(_)) => return Err(Denied::NotFound(name)),
    };
    if service.writes() {
        match user {
            None => return Err(Denied::SignInRequired { push: true }),
            Some(user) if !user.role.can_write() => return Err(Denied::ReadOnly(user.clone())),
            Some(_) => {}
        }
        let check = repo.clone();
        let refusal = agent
            .db(move |a| Ok::<_, tokio::task::JoinError>(crate::mirror::push_refusal(a, &check)))
            .await
            .map_err(|e| Denied::Internal(e.to_string()))?;
        if let Some(message) = refusal {
            return Err(Denied::Mirror(message));
        }
    }
    let path = super::repos::path(&agent.data, &repo.name);
    Ok((repo, path))
}

impl From<tokio::task::JoinError> for Denied {
    fn from(e: tokio::task::JoinError) -> Self {
        Denied::Internal(e.to_string())
    }
}
