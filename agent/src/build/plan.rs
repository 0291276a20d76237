//! Turning events (pushes, manual runs) into builds: read the workflow files
//! at the commit, keep the workflows whose `on:` matches, and queue one row
//! per job — all in one transaction with the event's "planned" mark, so a
//! crash never plans an event twice or loses it.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use hangar_core::store::builds::{self, NewBuild, Status};
use hangar_core::store::events::{self, Event as StoredEvent, RefUpdate};
use hangar_core::store::{repos, users};
use hangar_core::workflow::{self, Event, Executor, PlanContext};

use crate::agent::Agent;

/// Most changed paths listed for path filters; beyond it they count as unknown.
const MAX_CHANGED_PATHS: usize = 5000;

/// A manual run's request, as stored in a `dispatch` event.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Dispatch {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: String,
    pub workflow: Option<String>,
    #[serde(default)]
    pub inputs: std::collections::BTreeMap<String, String>,
}

/// Plans every event not planned yet. Returns how many builds were queued.
pub async fn plan_pending(agent: &Arc<Agent>) -> anyhow::Result<usize> {
    let pending = agent
        .db(|a| a.store.read(events::unplanned).map_err(anyhow::Error::from))
        .await?;
    let mut queued = 0;
    for event in pending {
        let id = event.id;
        queued += plan_event(agent, event)
            .await
            .with_context(|| format!("planning event {id}"))?;
    }
    Ok(queued)
}

/// One build to insert: the workflow's identity and either jobs or an error.
struct Planned {
    file: String,
    name: String,
    title: String,
    git_ref: String,
    sha: String,
    trigger: &'static str,
    outcome: Result<workflow::Plan, String>,
}

async fn plan_event(agent: &Arc<Agent>, event: StoredEvent) -> anyhow::Result<usize> {
    let repo_id = event.repo_id;
    let actor = event.actor;
    let found = agent
        .db(move |a| {
            a.store.read(|c| {
                let repo = repos::get(c, repo_id)?;
                let actor = match actor {
                    Some(id) => users::get(c, id)?.map(|u| u.name),
                    None => None,
                };
                Ok::<_, anyhow::Error>(repo.map(|r| (r, actor)))
            })
        })
        .await?;
    let mut planned = Vec::new();
    if let Some((repo, actor)) = found {
        let path = crate::git::repos::path(&agent.data, &repo.name);
        let pc = PlanContext {
            repository: repo.name.to_string(),
            actor: actor.unwrap_or_else(|| "hangar".to_owned()),
            host: workflow::Host {
                docker: agent.settings.docker_images.clone(),
                ..workflow::Host::default()
            },
            ..PlanContext::default()
        };
        for (trigger, event, only) in triggers(&event)? {
            let path = path.clone();
            let pc = pc.clone();
            let mut found =
                tokio::task::spawn_blocking(move || plan_commit(&path, &event, &pc, trigger))
                    .await??;
            if let Some(only) = &only {
                found.retain(|p| &p.file == only);
            }
            planned.extend(found);
        }
    }
    let event_id = event.id;
    agent
        .db(move |a| {
            a.store.write(|tx| {
                if !builds::mark_planned(tx, event_id)? {
                    return Ok(0);
                }
                for p in &planned {
                    insert(tx, repo_id, event_id, p)?;
                }
                Ok::<_, anyhow::Error>(planned.len())
            })
        })
        .await
}

/// The workflow events a stored event stands for.
fn triggers(event: &StoredEvent) -> anyhow::Result<Vec<(&'static str, Event, Option<String>)>> {
    match event.kind.as_str() {
        "push" => {
            let updates: Vec<RefUpdate> = serde_json::from_value(event.payload["updates"].clone())?;
            Ok(updates
                .into_iter()
                .filter(|u| !crate::git::push::is_null(&u.new))
                .map(|u| {
                    let event = Event::Push {
                        git_ref: u.name,
                        before: u.old,
                        after: u.new,
                        changed_paths: None,
                    };
                    ("push", event, None)
                })
                .collect())
        }
        "dispatch" => {
            let d: Dispatch = serde_json::from_value(event.payload.clone())?;
            let event = Event::WorkflowDispatch {
                git_ref: d.git_ref,
                sha: d.sha,
                inputs: d.inputs,
            };
            Ok(vec![("workflow_dispatch", event, d.workflow)])
        }
        _ => Ok(Vec::new()),
    }
}

/// Reads and plans the workflows at the event's commit.
fn plan_commit(
    path: &Path,
    event: &Event,
    pc: &PlanContext,
    trigger: &'static str,
) -> anyhow::Result<Vec<Planned>> {
    let (git_ref, sha) = match event {
        Event::Push { git_ref, after, .. } => (git_ref.clone(), after.clone()),
        Event::WorkflowDispatch { git_ref, sha, .. } | Event::Schedule { git_ref, sha, .. } => {
            (git_ref.clone(), sha.clone())
        }
        Event::PullRequest {
            head_ref, head_sha, ..
        } => (head_ref.clone(), head_sha.clone()),
    };
    let event = match event.clone() {
        Event::Push {
            git_ref,
            before,
            after,
            ..
        } => {
            let changed_paths = changed_paths(path, &before, &after);
            Event::Push {
                git_ref,
                before,
                after,
                changed_paths,
            }
        }
        other => other,
    };
    let files = crate::git::read::workflow_files(path, &sha)?;
    let mut out = Vec::new();
    for parsed in workflow::discover(&files) {
        let base = |file: &str, name: &str| Planned {
            file: file.to_owned(),
            name: name.to_owned(),
            title: name.to_owned(),
            git_ref: git_ref.clone(),
            sha: sha.clone(),
            trigger,
            outcome: Err(String::new()),
        };
        match parsed {
            Err(e) => out.push(Planned {
                outcome: Err(e.to_string()),
                ..base(&e.file, &e.file)
            }),
            Ok(wf) => {
                let name = wf.name.clone().unwrap_or_else(|| wf.file.clone());
                match workflow::plan(&wf, &event, pc) {
                    Ok(None) => {}
                    Ok(Some(plan)) => out.push(Planned {
                        title: plan.run_name.clone(),
                        outcome: Ok(plan),
                        ..base(&wf.file, &name)
                    }),
                    Err(e) => out.push(Planned {
                        outcome: Err(e.message),
                        ..base(&wf.file, &name)
                    }),
                }
            }
        }
    }
    Ok(out)
}

/// Paths changed between two commits, or `None` when unknown (new branch, too many).
fn changed_paths(path: &Path, before: &str, after: &str) -> Option<Vec<String>> {
    if crate::git::push::is_null(before) {
        return None;
    }
    let output = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(path)
        .args([
            "diff",
            "--name-only",
            "-z",
            "--no-renames",
            before,
            after,
            "--",
        ])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let paths: Vec<String> = output
        .stdout
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    (paths.len() <= MAX_CHANGED_PATHS).then_some(paths)
}

fn insert(
    tx: &hangar_core::store::Transaction<'_>,
    repo_id: hangar_core::ids::RepoId,
    event_id: hangar_core::ids::EventId,
    p: &Planned,
) -> anyhow::Result<()> {
    let (context, concurrency, error) = match &p.outcome {
        Ok(plan) => (
            serde_json::json!({ "github": plan.github, "inputs": plan.inputs }),
            plan.concurrency.as_ref().map(|c| c.group.clone()),
            None,
        ),
        Err(message) => (serde_json::json!({}), None, Some(message.as_str())),
    };
    let build = builds::insert_build(
        tx,
        &NewBuild {
            repo_id,
            event_id: Some(event_id),
            workflow_file: &p.file,
            workflow_name: &p.name,
            title: &p.title,
            trigger: p.trigger,
            git_ref: &p.git_ref,
            sha: &p.sha,
            error,
            concurrency: concurrency.as_deref(),
            context: &context,
        },
    )?;
    let Ok(plan) = &p.outcome else { return Ok(()) };
    for job in &plan.jobs {
        let executor = match job.executor {
            Executor::Host => "host",
            Executor::Docker { .. } => "docker",
        };
        let spec = serde_json::to_string(job)?;
        builds::insert_job(
            tx,
            build,
            &job.id,
            &job.name,
            &job.needs,
            executor,
            &spec,
            Status::Queued,
            None,
        )?;
    }
    for blocked in &plan.blocked {
        let reason = blocked.reasons.join("; ");
        builds::insert_job(
            tx,
            build,
            &blocked.id,
            &blocked.name,
            &[],
            "none",
            "{}",
            Status::Invalid,
            Some(&reason),
        )?;
    }
    builds::refresh_build(tx, build)?;
    Ok(())
}
