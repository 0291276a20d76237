//! Forges (GitHub, GitLab): their REST APIs behind the [`Forge`] trait, the
//! repositories hosted there that this agent mirrors and builds
//! ([`hosted`]), and the commit statuses sent back ([`statuses`]).
//!
//! Tokens and webhook secrets come from the SecretStore and never leave this
//! module except as request headers to the forge.

pub mod account;
pub mod api;
pub mod github;
pub mod gitlab;
pub mod hosted;
pub mod statuses;

use std::sync::{Arc, RwLock};

use futures_util::future::BoxFuture;
use hangar_core::ids::ForgeId;
use hangar_core::secrets::SecretStore;
use hangar_core::store::forges::{self, Forge as ForgeRow, Provider};
use hangar_core::store::mirror_sources::{Listed, Page, SourceKind};

use crate::agent::Agent;

/// A forge API failure.
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    #[error("{0}")]
    Request(String),
    /// The forge answered with an error status.
    #[error("{status} from {what}: {message}")]
    Status {
        status: u16,
        what: String,
        message: String,
    },
    /// The rate limit is spent; retry after `retry_after_secs`.
    #[error("rate limited by the forge for {retry_after_secs}s more")]
    RateLimited { retry_after_secs: u64 },
    #[error("no token for forge {0}; add it again with `hangar forge add`")]
    NoToken(String),
}

impl ForgeError {
    /// Seconds to wait before trying again, when the forge said so.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ForgeError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        }
    }
}

/// A repository as its forge describes it.
#[derive(Debug, Clone)]
pub struct RemoteRepo {
    /// The HTTPS clone URL.
    pub clone_url: String,
    pub web_url: String,
}

/// One commit status to report.
#[derive(Debug, Clone)]
pub struct CommitStatus {
    /// `pending`, `success`, `failure` or `error` (GitHub's words).
    pub state: String,
    /// `hangar/WORKFLOW/JOB`.
    pub context: String,
    pub description: String,
    pub target_url: String,
}

/// A forge's REST API. Implementations keep their own rate-limit state and
/// are shared between tasks.
pub trait Forge: Send + Sync {
    /// Looks up a repository (`OWNER/NAME` or `GROUP/NAME`).
    fn repo<'a>(&'a self, remote: &'a str) -> BoxFuture<'a, Result<RemoteRepo, ForgeError>>;
    /// Sets the status of `sha` for one context.
    fn set_status<'a>(
        &'a self,
        remote: &'a str,
        sha: &'a str,
        status: &'a CommitStatus,
    ) -> BoxFuture<'a, Result<(), ForgeError>>;
    /// Creates the repository's webhook to `url`, or updates the one already
    /// pointing there (or at `previous`); returns the hook's id.
    fn ensure_hook<'a>(
        &'a self,
        remote: &'a str,
        url: &'a str,
        previous: Option<&'a str>,
        secret: &'a str,
    ) -> BoxFuture<'a, Result<String, ForgeError>>;
    /// The user name git sends with the token over HTTPS.
    fn git_username(&self) -> &'static str;
    /// The first page of a list (below the API base): `target`'s starred
    /// repositories, or the repositories of organization/group `target`.
    fn list_path(&self, kind: SourceKind, target: &str) -> String;
    /// One page of a repository list; `None` when the forge says it has not
    /// changed since `etag`.
    fn list_page<'a>(
        &'a self,
        path: &'a str,
        etag: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Option<Page>, ForgeError>>;
}

/// Most repositories read from one page.
const MAX_PAGE_ITEMS: usize = 1000;

/// One list page read from `answer`: `name` and `url` are the fields that
/// hold each repository's forge path and HTTPS clone URL.
fn page(
    path: &str,
    etag: Option<&str>,
    next_path: Option<String>,
    answer: &serde_json::Value,
    name: &str,
    url: &str,
) -> Result<Page, ForgeError> {
    Ok(Page {
        path: path.to_owned(),
        etag: etag.map(str::to_owned),
        next_path,
        repos: listed(path, answer, name, url)?,
    })
}

fn listed(
    path: &str,
    answer: &serde_json::Value,
    name: &str,
    url: &str,
) -> Result<Vec<Listed>, ForgeError> {
    let items = answer
        .as_array()
        .ok_or_else(|| ForgeError::Request(format!("GET {path}: the answer is not a list")))?;
    if items.len() > MAX_PAGE_ITEMS {
        return Err(ForgeError::Request(format!(
            "GET {path}: more than {MAX_PAGE_ITEMS} repositories on one page"
        )));
    }
    items
        .iter()
        .map(|item| {
            let field = |f: &str| {
                item[f]
                    .as_str()
                    .filter(|v| !v.is_empty() && v.len() <= 2000)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        ForgeError::Request(format!("GET {path}: a repository has no `{f}`"))
                    })
            };
            Ok(Listed {
                remote: field(name)?,
                clone_url: field(url)?,
            })
        })
        .collect()
}

/// The API client for a stored forge account.
pub fn client(secrets: &dyn SecretStore, forge: &ForgeRow) -> Result<Arc<dyn Forge>, ForgeError> {
    let token = secrets
        .get(&forges::token_secret(forge.id))
        .map_err(|e| ForgeError::Request(e.to_string()))?
        .ok_or_else(|| ForgeError::NoToken(forge.name.clone()))?;
    Ok(match forge.provider {
        Provider::Github => Arc::new(github::GitHub::new(&forge.base_url, &token)),
        Provider::Gitlab => Arc::new(gitlab::GitLab::new(&forge.base_url, &token)),
    })
}

/// The webhook secrets of every forge, kept in memory so a flood of forged
/// requests never reaches the SecretStore or the database.
#[derive(Default)]
pub struct HookSecrets {
    secrets: RwLock<Vec<(ForgeId, Provider, Vec<u8>)>>,
}

impl HookSecrets {
    /// Reloads the secrets after forges changed.
    pub fn reload(&self, agent: &Agent) -> anyhow::Result<()> {
        let all = agent.store.read(forges::list)?;
        let mut loaded = Vec::new();
        for forge in all {
            if let Some(secret) = agent.secrets.get(&forges::webhook_secret(forge.id))? {
                loaded.push((forge.id, forge.provider, secret.into_bytes()));
            }
        }
        *self.secrets.write().unwrap_or_else(|p| p.into_inner()) = loaded;
        Ok(())
    }

    /// Runs `check` over the secrets of `provider`'s forges; returns the forge
    /// whose secret it accepted.
    pub fn find<E>(
        &self,
        provider: Provider,
        check: impl FnOnce(&mut dyn Iterator<Item = &[u8]>) -> Result<usize, E>,
    ) -> Result<ForgeId, E> {
        let all = self.secrets.read().unwrap_or_else(|p| p.into_inner());
        let of: Vec<&(ForgeId, Provider, Vec<u8>)> =
            all.iter().filter(|(_, p, _)| *p == provider).collect();
        let index = check(&mut of.iter().map(|(_, _, s)| s.as_slice()))?;
        Ok(of[index].0)
    }
}

/// A fresh random webhook secret (hex, 32 bytes).
pub fn new_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// `hangar/WORKFLOW/JOB`, the status context of a job.
pub fn context(workflow: &str, job: &str) -> String {
    format!("hangar/{workflow}/{job}")
}
