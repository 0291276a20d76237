//! Creating mirrors: checks first (URL rules, addresses, names), then the
//! repository, its directory and the mirror row together; a refusal creates
//! nothing.

use std::sync::Arc;

use hangar_core::mirror::url::MirrorUrl;
use hangar_core::repo_name::RepoName;
use hangar_core::store::mirrors::{self, Kind, Mirror, NewMirror};
use hangar_core::store::{StoreError, repos};

use crate::agent::Agent;

/// Why a mirror was not created.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for AddError {
    fn from(e: StoreError) -> Self {
        AddError::Internal(e.into())
    }
}

impl From<hangar_core::store::SqlError> for AddError {
    fn from(e: hangar_core::store::SqlError) -> Self {
        AddError::Internal(e.into())
    }
}

impl From<tokio::task::JoinError> for AddError {
    fn from(e: tokio::task::JoinError) -> Self {
        AddError::Internal(e.into())
    }
}

/// A pull mirror to create.
#[derive(Debug, Clone)]
pub struct PullMirror {
    pub url: String,
    /// `OWNER/NAME` here; derived from the URL when absent.
    pub name: Option<String>,
    pub interval_secs: Option<u64>,
    pub public: bool,
    pub allow_http: bool,
}

/// Checks a URL for a new mirror, including where its host points.
pub async fn check_url(agent: &Agent, text: &str, allow_http: bool) -> Result<MirrorUrl, AddError> {
    let url = MirrorUrl::parse(text, allow_http).map_err(|e| AddError::Invalid(e.to_string()))?;
    super::remote::check_host(&url, agent.settings.allow_local_mirrors)
        .await
        .map_err(AddError::Invalid)?;
    Ok(url)
}

pub fn interval(agent: &Agent, secs: Option<u64>) -> Result<u64, AddError> {
    let secs = secs.unwrap_or(agent.settings.mirror_interval_secs);
    if secs == 0 || secs > 30 * 86400 {
        return Err(AddError::Invalid(
            "interval must be 1 second to 30 days".into(),
        ));
    }
    Ok(secs)
}

/// Creates a repository that mirrors `new.url`; its first fetch (the
/// initial clone) starts in the background at once.
pub async fn pull(agent: &Arc<Agent>, new: PullMirror) -> Result<Mirror, AddError> {
    let url =
        MirrorUrl::parse(&new.url, new.allow_http).map_err(|e| AddError::Invalid(e.to_string()))?;
    let name_text = new.name.clone().unwrap_or_else(|| url.suggested_name());
    let name = RepoName::parse(&name_text).map_err(|e| {
        AddError::Invalid(format!("{e}; choose the local name with --as OWNER/NAME"))
    })?;
    let interval = interval(agent, new.interval_secs)?;
    check_url(agent, &new.url, new.allow_http).await?;
    let lookup = name.clone();
    if agent
        .db(move |a| {
            a.store
                .read(|c| repos::by_name(c, &lookup))
                .map_err(AddError::from)
        })
        .await?
        .is_some()
    {
        return Err(AddError::Conflict(format!(
            "repository {name} already exists; choose another name with --as OWNER/NAME"
        )));
    }
    let path = crate::git::repos::path(&agent.data, &name);
    crate::git::repos::init(&path)
        .await
        .map_err(|e| AddError::Conflict(e.to_string()))?;
    let text = url.to_string();
    let created = {
        let name = name.clone();
        agent
            .db(move |a| {
                a.store
                    .write(|tx| {
                        if repos::by_name(tx, &name)?.is_some() {
                            return Ok(None);
                        }
                        let repo =
                            repos::create(tx, &name, new.public, &format!("Mirror of {text}"))?;
                        mirrors::create(
                            tx,
                            repo.id,
                            &NewMirror {
                                kind: Kind::Pull,
                                url: &text,
                                allow_http: new.allow_http,
                                interval_secs: interval,
                                branches: None,
                            },
                        )?;
                        mirrors::get(tx, repo.id)
                    })
                    .map_err(AddError::from)
            })
            .await
    };
    match created {
        Ok(Some(mirror)) => {
            agent.mirrors.wake();
            Ok(mirror)
        }
        failed => {
            let _ = crate::git::repos::remove(&path).await;
            failed?;
            Err(AddError::Conflict(format!(
                "repository {name} already exists"
            )))
        }
    }
}

/// Makes the existing repository `name` forward its pushes to `url`.
pub async fn push(
    agent: &Arc<Agent>,
    name: &RepoName,
    url: &str,
    branches: Option<String>,
    interval_secs: Option<u64>,
    allow_http: bool,
) -> Result<Mirror, AddError> {
    MirrorUrl::parse(url, allow_http).map_err(|e| AddError::Invalid(e.to_string()))?;
    if let Some(patterns) = &branches {
        hangar_core::mirror::parse_branch_patterns(patterns).map_err(AddError::Invalid)?;
    }
    let interval = interval(agent, interval_secs)?;
    let url = check_url(agent, url, allow_http).await?;
    let name = name.clone();
    let text = url.to_string();
    let mirror = agent
        .db(move |a| {
            a.store
                .write(|tx| {
                    let Some(repo) = repos::by_name(tx, &name)? else {
                        return Err(AddError::NotFound(format!("repository {name} not found")));
                    };
                    if let Some(existing) = mirrors::get(tx, repo.id)? {
                        return Err(AddError::Conflict(format!(
                            "{name} already has a {} mirror ({}); remove it first with `hangar mirror remove {name}`",
                            existing.kind.as_str(),
                            existing.url
                        )));
                    }
                    mirrors::create(
                        tx,
                        repo.id,
                        &NewMirror {
                            kind: Kind::Push,
                            url: &text,
                            allow_http,
                            interval_secs: interval,
                            branches: branches.as_deref(),
                        },
                    )?;
                    Ok(mirrors::get(tx, repo.id)?)
                })
        })
        .await?;
    agent.mirrors.wake();
    mirror.ok_or_else(|| AddError::Internal(anyhow::anyhow!("mirror vanished after creation")))
}
