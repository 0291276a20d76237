//! Sync sources: a user's starred repositories or an organization's (a
//! GitLab group's) repositories, polled through the forge API with ETags.
//! Each listed repository gets a pull mirror made exactly as `hangar mirror
//! add` makes one; a repository that leaves the list has its mirror
//! archived, or deleted when the source was made with `delete_missing` and
//! made that mirror itself (never one it adopted, never one another source
//! still lists). A poll the forge answers 304 changes nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hangar_core::ids::{RepoId, SourceId};
use hangar_core::mirror::url::MirrorUrl;
use hangar_core::repo_name::RepoName;
use hangar_core::store::forges::{self, Forge as ForgeRow, Provider};
use hangar_core::store::mirror_sources::{self as sources, NewSource, Page, Source, SourceKind};
use hangar_core::store::mirrors::{self, Kind, State};
use hangar_core::store::repos;

use super::add::{self, AddError};
use crate::agent::Agent;
use crate::forges::{Forge, ForgeError, hosted};

/// Most pages followed in one poll (100 repositories each).
const MAX_PAGES: usize = 100;

/// A list to follow.
#[derive(Debug, Clone)]
pub struct NewSync {
    pub kind: SourceKind,
    /// `github:USER`, `github:ORG`, `gitlab:USER`, `gitlab:GROUP[/SUBGROUP...]`.
    pub spec: String,
    /// The forge account's name, when several serve the provider.
    pub forge: Option<String>,
    pub interval_secs: Option<u64>,
    /// Mirrors it makes are public on the LAN.
    pub public: bool,
    /// Delete (not archive) the mirrors it made when they leave the list.
    pub delete_missing: bool,
}

/// `github:USER` → provider and target (GitLab groups may nest).
pub fn parse_target(kind: SourceKind, spec: &str) -> Result<(Provider, String), String> {
    let usage = match kind {
        SourceKind::Starred => {
            "expected github:USER, github:@me (the token's own stars) or gitlab:USER"
        }
        SourceKind::Org => "expected github:ORG or gitlab:GROUP[/SUBGROUP]",
    };
    if let Some(provider) = spec.strip_suffix(&format!(":{}", sources::OWN_STARS)) {
        return match (kind, Provider::parse(provider)) {
            (SourceKind::Starred, Some(Provider::Github)) => {
                Ok((Provider::Github, sources::OWN_STARS.to_owned()))
            }
            _ => Err(format!(
                "{spec:?}: {usage} (`@me` is GitHub's stars of the token's own user)"
            )),
        };
    }
    let (provider, target) = hosted::parse_path(spec, 1, usage)?;
    if target.contains('/') && (provider == Provider::Github || kind == SourceKind::Starred) {
        return Err(format!("{spec:?}: {usage} (one name, no `/`)"));
    }
    Ok((provider, target))
}

/// Starts following a list; its first poll runs at once.
pub async fn add(agent: &Arc<Agent>, new: NewSync) -> Result<Source, AddError> {
    let (provider, target) = parse_target(new.kind, &new.spec).map_err(AddError::Invalid)?;
    let secs = new
        .interval_secs
        .unwrap_or(agent.settings.mirror_source_interval_secs);
    let interval = add::interval(agent, Some(secs))?;
    let all = agent
        .db(|a| a.store.read(forges::list).map_err(AddError::from))
        .await?;
    let forge = hosted::pick_forge(all, provider, new.forge.as_deref())?;
    let (kind, public, delete_missing, spec) =
        (new.kind, new.public, new.delete_missing, new.spec.clone());
    let created = agent
        .db(move |a| {
            a.store
                .write(|tx| {
                    sources::create(
                        tx,
                        &NewSource {
                            forge: forge.id,
                            kind,
                            target: &target,
                            interval_secs: interval,
                            public,
                            delete_missing,
                        },
                    )
                })
                .map_err(AddError::from)
        })
        .await?
        .ok_or_else(|| {
            AddError::Conflict(format!(
                "{spec} is already synced (see `hangar mirror sources`)"
            ))
        })?;
    agent.mirrors.wake();
    Ok(created)
}

/// One poll of a source, with its bookkeeping (called by the mirror loop).
pub async fn poll(agent: &Arc<Agent>, id: SourceId) {
    let loaded = agent
        .db(move |a| {
            a.store.read(|c| {
                let Some(source) = sources::get(c, id)? else {
                    return Ok(None);
                };
                let Some(forge) = forges::get(c, source.forge_id)? else {
                    return Ok(None);
                };
                let pages = sources::pages(c, id)?;
                Ok::<_, anyhow::Error>(Some((source, forge, pages)))
            })
        })
        .await;
    let (source, forge, stored) = match loaded {
        Ok(Some(loaded)) => loaded,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!("cannot read a sync source: {e}");
            return;
        }
    };
    let result = match crate::forges::client(agent.secrets.as_ref(), &forge) {
        Ok(client) => run(agent, &source, &forge, client.as_ref(), stored).await,
        Err(e) => Err(e),
    };
    let base = Duration::from_secs(agent.settings.mirror_backoff_secs);
    let recorded = match result {
        Ok(Polled::Unchanged) => {
            tracing::debug!(source = %source.id, "sync source not modified");
            agent
                .db(move |a| {
                    a.store
                        .write(|tx| sources::unchanged(tx, id))
                        .map_err(anyhow::Error::from)
                })
                .await
        }
        Ok(Polled::Read { count, errors }) => {
            tracing::info!(source = %source.id, kind = source.kind.as_str(), target = %source.target, repos = count, "sync source read");
            let error = (!errors.is_empty()).then(|| errors.join("\n"));
            agent
                .db(move |a| {
                    a.store
                        .write(|tx| sources::succeed(tx, id, count, error.as_deref()))
                        .map_err(anyhow::Error::from)
                })
                .await
        }
        Err(error) => {
            let retry = match error.retry_after() {
                Some(secs) => Duration::from_secs(secs),
                None => hangar_core::mirror::backoff(base, source.failures + 1, rand::random()),
            };
            let text = error.to_string();
            tracing::info!(source = %source.id, target = %source.target, retry_in = ?retry, "sync source poll failed: {text}");
            agent
                .db(move |a| {
                    a.store
                        .write(|tx| sources::fail(tx, id, &text, retry.as_millis() as i64))
                        .map_err(anyhow::Error::from)
                })
                .await
                .map(|_| ())
        }
    };
    if let Err(e) = recorded {
        tracing::warn!(source = %source.id, "cannot record the poll: {e}");
    }
}

/// What a poll found.
enum Polled {
    /// Every page answered 304.
    Unchanged,
    /// The list was read: its size, and the repositories that could not be mirrored.
    Read { count: usize, errors: Vec<String> },
}

/// Reads the list page by page (conditionally, with each page's stored
/// ETag), then makes the mirrors agree with it.
async fn run(
    agent: &Arc<Agent>,
    source: &Source,
    forge: &ForgeRow,
    client: &dyn Forge,
    stored: Vec<Page>,
) -> Result<Polled, ForgeError> {
    let mut pages: Vec<Page> = Vec::new();
    let mut changed = false;
    let mut path = Some(client.list_path(source.kind, &source.target));
    while let Some(next) = path {
        if pages.len() >= MAX_PAGES {
            return Err(ForgeError::Request(format!(
                "the list has more than {MAX_PAGES} pages; Hangar follows at most {} repositories per source",
                MAX_PAGES * 100
            )));
        }
        let before = stored.get(pages.len()).filter(|p| p.path == next);
        let etag = before.and_then(|p| p.etag.as_deref());
        let page = match client.list_page(&next, etag).await? {
            Some(page) => {
                changed = true;
                page
            }
            None => before.cloned().ok_or_else(|| {
                ForgeError::Request(format!(
                    "GET {next}: 304 to a request that was not conditional"
                ))
            })?,
        };
        path = page.next_path.clone();
        pages.push(page);
    }
    if !changed && pages.len() == stored.len() {
        return Ok(Polled::Unchanged);
    }
    let errors = reconcile(agent, source, forge, client, &pages).await;
    let id = source.id;
    let count = pages.iter().map(|p| p.repos.len()).sum();
    // After a partial failure, forget the ETags so the next poll reads
    // the list again (and retries) instead of hearing 304.
    if !errors.is_empty() {
        for page in &mut pages {
            page.etag = None;
        }
    }
    agent
        .db(move |a| {
            a.store
                .write(|tx| sources::save_pages(tx, id, &pages))
                .map_err(anyhow::Error::from)
        })
        .await
        .map_err(|e| ForgeError::Request(format!("cannot store the list: {e}")))?;
    Ok(Polled::Read { count, errors })
}

/// Mirrors new repositories, archives (or deletes) the mirrors of ones that
/// left, and resumes the archived mirrors of ones that came back. Returns
/// what failed.
async fn reconcile(
    agent: &Arc<Agent>,
    source: &Source,
    forge: &ForgeRow,
    client: &dyn Forge,
    pages: &[Page],
) -> Vec<String> {
    let listed: BTreeMap<&str, &str> = pages
        .iter()
        .flat_map(|p| &p.repos)
        .map(|r| (r.remote.as_str(), r.clone_url.as_str()))
        .collect();
    let id = source.id;
    let members = match agent
        .db(move |a| {
            a.store
                .read(|c| sources::members(c, id))
                .map_err(anyhow::Error::from)
        })
        .await
    {
        Ok(members) => members,
        Err(e) => return vec![format!("cannot read the source's mirrors: {e}")],
    };
    let mut errors = Vec::new();
    for (remote, clone_url) in &listed {
        let known = members.iter().find(|m| m.remote == *remote);
        let result = match known.and_then(|m| m.repo_id.map(|r| (r, m.listed))) {
            Some((_, true)) => Ok(()),
            Some((repo, false)) => {
                set_listed(agent, source.id, remote, Some(repo), true, None).await
            }
            None => mirror_new(agent, source, forge, client, remote, clone_url).await,
        };
        if let Err(e) = result {
            errors.push(format!("{remote}: {e}"));
        }
    }
    for gone in members
        .iter()
        .filter(|m| m.listed && !listed.contains_key(m.remote.as_str()))
    {
        let left = match gone.repo_id {
            Some(repo) if source.delete_missing && gone.created => {
                delete_left(agent, source.id, &gone.remote, repo).await
            }
            _ => set_listed(agent, source.id, &gone.remote, gone.repo_id, false, None).await,
        };
        if let Err(e) = left {
            errors.push(format!("{}: {e}", gone.remote));
        }
    }
    errors
}

/// Deletes the repository of a mirror the source made, now that it left the
/// list; archives it instead when it is no longer a pull mirror (`hangar
/// mirror remove` made it a plain repository) or another source lists it.
async fn delete_left(
    agent: &Arc<Agent>,
    source: SourceId,
    remote: &str,
    repo: RepoId,
) -> Result<(), String> {
    let remote_owned = remote.to_owned();
    let deleted = agent
        .db(move |a| {
            a.store
                .write(|tx| {
                    let name = match mirrors::get(tx, repo)? {
                        Some(m)
                            if m.kind == Kind::Pull
                                && !sources::listed_elsewhere(tx, repo, source)? =>
                        {
                            m.repo
                        }
                        _ => return Ok(None),
                    };
                    repos::delete(tx, repo)?;
                    sources::set_member(tx, source, &remote_owned, None, false, None)?;
                    Ok::<_, hangar_core::store::StoreError>(Some(name))
                })
                .map_err(anyhow::Error::from)
        })
        .await
        .map_err(|e| e.to_string())?;
    let Some(name) = deleted else {
        return set_listed(agent, source, remote, Some(repo), false, None).await;
    };
    crate::git::repos::remove_deleted(agent, repo, &name)
        .await
        .map_err(|e| format!("deleted {name}, but not all of its files: {e}"))?;
    tracing::info!(%remote, repo = %name, "left its sync source; mirror deleted");
    Ok(())
}

/// Marks a repository as in or out of the list: its mirror is archived when
/// it leaves, and syncs again when it comes back. `created` records whether
/// the source made that mirror (`None`: unchanged).
async fn set_listed(
    agent: &Arc<Agent>,
    source: SourceId,
    remote: &str,
    repo: Option<RepoId>,
    listed: bool,
    created: Option<bool>,
) -> Result<(), String> {
    let remote_owned = remote.to_owned();
    agent
        .db(move |a| {
            a.store
                .write(|tx| {
                    if let Some(repo) = repo
                        && let Some(mirror) = mirrors::get(tx, repo)?
                        && mirror.kind == Kind::Pull
                    {
                        match (listed, mirror.state) {
                            (false, s) if s != State::Archived => mirrors::archive(tx, repo)?,
                            (true, State::Archived) => mirrors::resume(tx, repo)?,
                            _ => {}
                        }
                    }
                    sources::set_member(tx, source, &remote_owned, repo, listed, created)
                })
                .map_err(anyhow::Error::from)
        })
        .await
        .map_err(|e| e.to_string())?;
    if listed {
        agent.mirrors.wake();
    } else {
        tracing::info!(%remote, "left its sync source; mirror archived");
    }
    Ok(())
}

/// Creates the mirror of a newly listed repository, through the same checks
/// as `hangar mirror add`; a pull mirror of the same URL under the same
/// name is adopted instead.
async fn mirror_new(
    agent: &Arc<Agent>,
    source: &Source,
    forge: &ForgeRow,
    client: &dyn Forge,
    remote: &str,
    clone_url: &str,
) -> Result<(), String> {
    let name = hosted::local_name(remote);
    hosted::forge_credential(agent, forge, client, clone_url)
        .await
        .map_err(|e| e.to_string())?;
    let created = add::pull(
        agent,
        add::PullMirror {
            url: clone_url.to_owned(),
            name: Some(name.clone()),
            interval_secs: None,
            public: source.public,
            allow_http: forge.allow_http,
        },
    )
    .await;
    let (repo, made) = match created {
        Ok(mirror) => (mirror.repo_id, true),
        Err(AddError::Conflict(message)) => (
            adoptable(agent, &name, clone_url, forge.allow_http)
                .await
                .ok_or(message)?,
            false,
        ),
        Err(e) => return Err(e.to_string()),
    };
    set_listed(agent, source.id, remote, Some(repo), true, Some(made)).await
}

/// The repository `name` when it already pull-mirrors `clone_url`.
async fn adoptable(
    agent: &Arc<Agent>,
    name: &str,
    clone_url: &str,
    allow_http: bool,
) -> Option<RepoId> {
    let name = RepoName::parse(name).ok()?;
    let url = MirrorUrl::parse(clone_url, allow_http).ok()?.to_string();
    agent
        .db(move |a| {
            a.store.read(|c| {
                let Some(repo) = repos::by_name(c, &name)? else {
                    return Ok(None);
                };
                Ok::<_, anyhow::Error>(
                    mirrors::get(c, repo.id)?
                        .filter(|m| m.kind == Kind::Pull && m.url == url)
                        .map(|m| m.repo_id),
                )
            })
        })
        .await
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            parse_target(SourceKind::Starred, "github:mona").unwrap(),
            (Provider::Github, "mona".to_owned())
        );
        assert_eq!(
            parse_target(SourceKind::Starred, "github:@me").unwrap(),
            (Provider::Github, "@me".to_owned())
        );
        assert_eq!(
            parse_target(SourceKind::Org, "gitlab:group/sub").unwrap(),
            (Provider::Gitlab, "group/sub".to_owned())
        );
        for (kind, bad) in [
            (SourceKind::Org, "github:a/b"),
            (SourceKind::Starred, "gitlab:a/b"),
            (SourceKind::Starred, "mona"),
            (SourceKind::Org, "github:../x"),
            (SourceKind::Org, "github:"),
            (SourceKind::Org, "github:a?b"),
            (SourceKind::Org, "github:@me"),
            (SourceKind::Starred, "gitlab:@me"),
            (SourceKind::Starred, "github:@you"),
            (SourceKind::Starred, "github:"),
        ] {
            assert!(parse_target(kind, bad).is_err(), "{bad}");
        }
    }
}
