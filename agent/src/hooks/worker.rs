//! Processes stored deliveries, oldest first: a push fetches the ref into the
//! hosted repo's mirror and records a `push` event (so it builds); a pull
//! request updates its record, fetches the head and records a
//! `pull_request` event. Failures are retried with backoff. Everything
//! pending is in SQLite, so a restart picks up where a crash left off.

use std::sync::Arc;
use std::time::Duration;

use hangar_core::ids::ForgeId;
use hangar_core::mirror::url::MirrorUrl;
use hangar_core::store::deliveries::{self, Delivery};
use hangar_core::store::events::{self, RefUpdate};
use hangar_core::store::forges::{self, HostedRepo, Provider};
use hangar_core::store::{mirror_sources, mirrors, now_ms, pulls};
use hangar_core::webhook::{self, Event};

use crate::agent::Agent;
use crate::forges::hosted;

/// The payload of a `pull_request` event, as the planner reads it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PullEvent {
    pub action: String,
    pub number: u64,
    pub base_ref: String,
    pub head_ref: String,
    pub head_sha: String,
}

/// Runs until the agent stops.
pub fn start(agent: Arc<Agent>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let nap = match drain(&agent).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!("webhook deliveries: {e:#}");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = agent.builds.stop.cancelled() => return,
                _ = agent.hooks.wake.notified() => {}
                _ = tokio::time::sleep(nap) => {}
            }
        }
    })
}

/// Processes what is due; returns how long to sleep before the next one.
async fn drain(agent: &Arc<Agent>) -> anyhow::Result<Duration> {
    loop {
        let (due, next) = agent
            .db(|a| {
                a.store
                    .read(|c| deliveries::due(c, 50))
                    .map_err(anyhow::Error::from)
            })
            .await?;
        if due.is_empty() {
            let wait = next.map_or(5000, |at| (at - now_ms()).clamp(10, 5000));
            return Ok(Duration::from_millis(wait as u64));
        }
        for delivery in due {
            let id = delivery.id;
            let outcome = process(agent, &delivery).await;
            let attempts = delivery.attempts;
            match &outcome {
                Ok((state, result)) => {
                    tracing::info!(delivery = %id, event = %delivery.event, "webhook {state}: {result}")
                }
                Err(e) => {
                    tracing::info!(delivery = %id, event = %delivery.event, attempts = attempts + 1, "webhook processing failed: {e}")
                }
            }
            agent
                .db(move |a| {
                    a.store
                        .write(|tx| {
                            let outcome = match &outcome {
                                Ok((state, result)) => Ok((*state, result.as_str())),
                                Err(e) => {
                                    let wait = crate::forges::statuses::backoff(attempts);
                                    Err((e.as_str(), now_ms() + wait.as_millis() as i64))
                                }
                            };
                            deliveries::finish(tx, id, outcome)
                        })
                        .map_err(anyhow::Error::from)
                })
                .await?;
        }
    }
}

/// `Ok((state, what happened))` or `Err(why, to retry)`.
async fn process(
    agent: &Arc<Agent>,
    delivery: &Delivery,
) -> Result<(&'static str, String), String> {
    let id = delivery.id;
    let forge_id = delivery.forge_id;
    let (body, forge) = agent
        .db(move |a| {
            a.store.read(|c| {
                let body = deliveries::body(c, id)?;
                let forge = match forge_id {
                    Some(f) => forges::get(c, f)?,
                    None => None,
                };
                Ok::<_, anyhow::Error>((body, forge))
            })
        })
        .await
        .map_err(|e| e.to_string())?;
    let Some(forge) = forge else {
        return Ok(("ignored", "its forge was removed".to_owned()));
    };
    let parsed = match forge.provider {
        Provider::Github => webhook::parse_github(&delivery.event, &body),
        Provider::Gitlab => webhook::parse_gitlab(&delivery.event, &body),
    };
    let event = match parsed {
        Ok(event) => event,
        Err(e) => return Ok(("ignored", format!("unreadable payload: {e}"))),
    };
    let remote = match &event {
        Event::Push { repo, .. } | Event::PullRequest { repo, .. } => repo.clone(),
        Event::Ping { .. } => return Ok(("done", "ping".to_owned())),
        Event::Other { event } => return Ok(("ignored", format!("event {event} is not used"))),
    };
    let lookup = remote.clone();
    let hosted = agent
        .db(move |a| {
            a.store
                .read(|c| forges::hosted_by_remote(c, forge.id, &lookup))
                .map_err(anyhow::Error::from)
        })
        .await
        .map_err(|e| e.to_string())?;
    let Some(hosted) = hosted else {
        if matches!(event, Event::Push { .. }) {
            let synced = sync_plain_mirrors(agent, forge.id, &remote, &body).await?;
            if !synced.is_empty() {
                return Ok(("done", format!("sync of {} requested", synced.join(", "))));
            }
        }
        return Ok((
            "ignored",
            format!(
                "{remote} is not hosted here (add it with `hangar repo add {}:{remote}`)",
                forge.provider.as_str()
            ),
        ));
    };
    match event {
        Event::Push {
            git_ref,
            before,
            after,
            ..
        } => push(agent, &hosted, git_ref, before, after).await,
        Event::PullRequest { action, pull, .. } => pull_request(agent, &hosted, action, pull).await,
        Event::Ping { .. } | Event::Other { .. } => Ok(("ignored", String::new())),
    }
}

/// A push to a repository that is only pull-mirrored here (made by `hangar
/// mirror add` of its clone URL, or by a starred/org sync): those mirrors
/// sync now, like their timer would. Returns their names.
async fn sync_plain_mirrors(
    agent: &Arc<Agent>,
    forge: ForgeId,
    remote: &str,
    body: &[u8],
) -> Result<Vec<String>, String> {
    // Stored mirror URLs are normalised by the same parser.
    let urls: Vec<String> = webhook::clone_urls(body)
        .iter()
        .filter_map(|u| MirrorUrl::parse(u, true).ok())
        .map(|u| u.to_string())
        .collect();
    let remote = remote.to_owned();
    let synced = agent
        .db(move |a| {
            a.store.write(|tx| {
                let mut ids = mirror_sources::repos_of_remote(tx, forge, &remote)?;
                for url in &urls {
                    ids.extend(mirrors::pull_by_url(tx, url)?);
                }
                ids.sort();
                ids.dedup();
                let mut names = Vec::new();
                for id in ids {
                    if let Some(mirror) = mirrors::get(tx, id)?
                        && mirror.kind == mirrors::Kind::Pull
                        && mirrors::request_now(tx, id)?
                    {
                        names.push(mirror.repo.to_string());
                    }
                }
                Ok::<_, anyhow::Error>(names)
            })
        })
        .await
        .map_err(|e| e.to_string())?;
    if !synced.is_empty() {
        agent.mirrors.wake();
    }
    Ok(synced)
}

/// Refs that a push may name: branches and tags, in git's ref syntax.
fn valid_ref(name: &str) -> bool {
    (name.starts_with("refs/heads/") || name.starts_with("refs/tags/"))
        && name.len() <= 1024
        && !name.contains("..")
        && !name.contains("@{")
        && !name.ends_with('/')
        && !name.ends_with(".lock")
        && !name
            .bytes()
            .any(|b| b <= b' ' || b"~^:?*[\\\x7f".contains(&b))
}

async fn push(
    agent: &Arc<Agent>,
    hosted: &HostedRepo,
    git_ref: String,
    before: String,
    after: String,
) -> Result<(&'static str, String), String> {
    if !valid_ref(&git_ref) {
        return Ok(("ignored", format!("ref {git_ref:?} is not a branch or tag")));
    }
    if crate::git::push::is_null(&after) {
        // Deleted upstream: the mirror's next sync prunes it.
        return Ok(("done", format!("{git_ref} deleted")));
    }
    hosted::fetch(agent, hosted, &[format!("+{git_ref}:{git_ref}")]).await?;
    if !hosted::has_commit(agent, hosted, &after).await {
        return Err(format!(
            "{after} is not in {git_ref} after the fetch (pushed again since?)"
        ));
    }
    let path = crate::git::repos::path(&agent.data, &hosted.repo);
    let update = RefUpdate {
        old: before,
        new: after.clone(),
        name: git_ref.clone(),
    };
    crate::git::updates::record(
        agent,
        (hosted.repo_id, &hosted.repo),
        &path,
        events::PUSH,
        None,
        vec![update],
    )
    .await
    .map_err(|e| format!("cannot record the push: {e}"))?;
    Ok((
        "done",
        format!("{git_ref} at {after} fetched; push recorded"),
    ))
}

async fn pull_request(
    agent: &Arc<Agent>,
    hosted: &HostedRepo,
    action: String,
    pull: pulls::Pull,
) -> Result<(&'static str, String), String> {
    let builds = matches!(action.as_str(), "opened" | "synchronize" | "reopened");
    if builds {
        let head = match hosted.provider {
            Provider::Github => format!("refs/pull/{}/head", pull.number),
            Provider::Gitlab => format!("refs/merge-requests/{}/head", pull.number),
        };
        hosted::fetch(agent, hosted, &[format!("+{head}:{head}")]).await?;
        if !hosted::has_commit(agent, hosted, &pull.head_sha).await {
            return Err(format!(
                "{} is not in {head} after the fetch",
                pull.head_sha
            ));
        }
    }
    let (repo, forge) = (hosted.repo_id, hosted.forge_id);
    let number = pull.number;
    let payload = PullEvent {
        action: action.clone(),
        number,
        base_ref: pull.base_ref.clone(),
        head_ref: pull.head_ref.clone(),
        head_sha: pull.head_sha.clone(),
    };
    agent
        .db(move |a| {
            a.store.write(|tx| {
                pulls::upsert(tx, repo, forge, &pull)?;
                if builds {
                    let payload = serde_json::to_value(&payload).unwrap_or_default();
                    events::record(tx, repo, events::PULL_REQUEST, None, &payload)?;
                }
                Ok::<_, anyhow::Error>(())
            })
        })
        .await
        .map_err(|e| e.to_string())?;
    if builds {
        agent.builds.wake();
        Ok((
            "done",
            format!("pull request #{number} {action}; head fetched, build requested"),
        ))
    } else {
        Ok(("done", format!("pull request #{number} {action}")))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn refs_a_push_may_name() {
        assert!(super::valid_ref("refs/heads/main"));
        assert!(super::valid_ref("refs/tags/v1.0"));
        for bad in [
            "refs/pull/1/head",
            "main",
            "refs/heads/a..b",
            "refs/heads/-x:y",
            "refs/heads/a b",
        ] {
            assert!(!super::valid_ref(bad), "{bad}");
        }
    }
}
