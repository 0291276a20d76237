//! The scheduler: plans new events, then starts queued jobs whose `needs`
//! are done, while the executor has a free slot.

use std::sync::Arc;
use std::time::Duration;

use hangar_core::ids::BuildId;
use hangar_core::store::builds::{self, Job, Status};
use hangar_core::workflow::JobSpec;
use hangar_core::workflow::expr::{self, Context, Value};

use super::RunningJob;
use crate::agent::Agent;

/// Starts the scheduler: first it resumes what a crash interrupted, then it
/// wakes on pushes (and every second, as a safety net).
pub fn start(agent: Arc<Agent>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // Steps a crashed agent left running would otherwise go on forever.
        let boot = super::runner::boot_time();
        let leftovers = agent.db(move |a| {
            a.store
                .read(|c| builds::leftover_processes(c, boot))
                .map_err(anyhow::Error::from)
        });
        match leftovers.await {
            Ok(groups) => {
                if !groups.is_empty() {
                    tracing::info!(
                        "stopping {} step process group(s) left by the last run",
                        groups.len()
                    );
                }
                groups
                    .into_iter()
                    .for_each(|g| super::runner::kill_group(Some(g)));
            }
            Err(e) => tracing::error!("cannot look for leftover step processes: {e:#}"),
        }
        remove_leftover_containers(&agent).await;
        match agent
            .db(|a| {
                a.store
                    .write(|tx| builds::recover(tx))
                    .map_err(anyhow::Error::from)
            })
            .await
        {
            Ok(touched) if !touched.is_empty() => {
                tracing::info!("resumed {} interrupted build(s)", touched.len())
            }
            Ok(_) => {}
            Err(e) => tracing::error!("cannot resume interrupted jobs: {e:#}"),
        }
        loop {
            if let Err(e) = tick(&agent).await {
                tracing::error!("scheduler: {e:#}");
            }
            tokio::select! {
                _ = agent.builds.stop.cancelled() => return,
                _ = agent.builds.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    })
}

/// Removes the job containers a crashed agent left, before their jobs are
/// queued again. Only when a Docker job was running: an agent that runs host
/// jobs alone never waits for an engine.
async fn remove_leftover_containers(agent: &Arc<Agent>) {
    let used = agent.db(|a| {
        a.store
            .read(builds::docker_jobs_running)
            .map_err(anyhow::Error::from)
    });
    match used.await {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => tracing::error!("cannot tell whether Docker jobs were running: {e:#}"),
    }
    match super::docker::remove_leftovers(agent.data.root()).await {
        Ok(0) => {}
        Ok(n) => tracing::info!("removed {n} job container(s) left by the last run"),
        Err(e) => tracing::warn!("cannot look for leftover job containers: {e}"),
    }
}

async fn tick(agent: &Arc<Agent>) -> anyhow::Result<()> {
    super::plan::plan_pending(agent).await?;
    if agent.builds.paused() {
        // Pushes still become queued builds; they start on resume.
        return Ok(());
    }
    let queued = agent
        .db(|a| {
            a.store
                .read(builds::queued_jobs)
                .map_err(anyhow::Error::from)
        })
        .await?;
    for job in queued {
        dispatch(agent, job).await?;
    }
    Ok(())
}

/// What to do with one queued job.
enum Decision {
    Wait,
    Skip(String),
    Fail(String),
    Start,
}

async fn dispatch(agent: &Arc<Agent>, job: Job) -> anyhow::Result<()> {
    let build_id = job.build_id;
    let id = job.id;
    let (siblings, spec) = agent
        .db(move |a| {
            a.store.read(|c| {
                Ok::<_, anyhow::Error>((builds::jobs(c, build_id)?, builds::job_spec(c, id)?))
            })
        })
        .await?;
    let decision = match serde_json::from_str::<JobSpec>(&spec) {
        Ok(spec) => decide(agent, &job, spec.condition.as_deref(), &siblings),
        Err(e) => Decision::Fail(format!("stored job spec is unreadable: {e}")),
    };
    let (status, reason) = match decision {
        Decision::Wait => return Ok(()),
        Decision::Skip(reason) => (Status::Skipped, Some(reason)),
        Decision::Fail(reason) => (Status::Failure, Some(reason)),
        Decision::Start => (Status::Running, None),
    };
    let stored_reason = reason.clone();
    agent
        .db(move |a| {
            a.store
                .write(|tx| {
                    builds::set_job_status(tx, id, status, stored_reason.as_deref())?;
                    builds::refresh_build(tx, build_id)
                })
                .map_err(anyhow::Error::from)
        })
        .await?;
    if status == Status::Running {
        start_job(agent, job, &siblings).await?;
    } else {
        tracing::info!(job = %id, "job {}: {}", status.as_str(), reason.unwrap_or_default());
    }
    Ok(())
}

fn decide(agent: &Arc<Agent>, job: &Job, condition: Option<&str>, siblings: &[Job]) -> Decision {
    let needed: Vec<&Job> = siblings
        .iter()
        .filter(|s| job.needs.contains(&s.key))
        .collect();
    if needed.iter().any(|n| !n.status.is_finished()) {
        return Decision::Wait;
    }
    let needs_ok = needed
        .iter()
        .all(|n| matches!(n.status, Status::Success | Status::Skipped));
    let ctx = Context {
        contexts: [("needs".to_owned(), needs_context(&needed))]
            .into_iter()
            .collect(),
        status: if needs_ok {
            expr::Status::Success
        } else {
            expr::Status::Failure
        },
        hasher: None,
    };
    let run = match condition {
        Some(text) => match expr::evaluate_condition(text, &ctx) {
            Ok(run) => run,
            Err(e) => return Decision::Fail(format!("job `if:` cannot be evaluated: {e}")),
        },
        None => needs_ok,
    };
    if !run {
        let why = if needs_ok {
            "its `if:` condition is false"
        } else {
            "a job it needs did not succeed"
        };
        return Decision::Skip(format!("skipped: {why}"));
    }
    let slots = match job.executor.as_str() {
        "host" => agent.settings.host_slots,
        "docker" => agent.settings.docker_slots,
        other => return Decision::Fail(format!("unknown executor {other:?}")),
    };
    if agent.builds.busy(&job.executor) >= slots {
        return Decision::Wait;
    }
    Decision::Start
}

/// The `needs` context: each needed job's `result` and `outputs`.
pub fn needs_context(needed: &[&Job]) -> Value {
    let mut map = std::collections::BTreeMap::new();
    for job in needed {
        let entry = serde_json::json!({ "result": job.status.as_str(), "outputs": job.outputs });
        map.insert(job.key.clone(), Value::from(&entry));
    }
    Value::Object(map)
}

async fn start_job(agent: &Arc<Agent>, job: Job, siblings: &[Job]) -> anyhow::Result<()> {
    let log_path = agent
        .data
        .root()
        .join("logs")
        .join(job.build_id.to_string())
        .join(format!("{}.log", job.id));
    let log = Arc::new(super::log::JobLog::create(
        &log_path,
        agent.settings.max_log_mb.saturating_mul(1 << 20),
    )?);
    let running = RunningJob {
        executor: job.executor.clone(),
        cancel: agent.builds.stop.child_token(),
        log,
    };
    agent.builds.lock().insert(job.id, running.clone());
    let needed: Vec<Job> = siblings
        .iter()
        .filter(|s| job.needs.contains(&s.key))
        .cloned()
        .collect();
    let agent = agent.clone();
    tokio::spawn(async move {
        let id = job.id;
        let build_id = job.build_id;
        let outcome = super::runner::run(&agent, &job, &needed, &running).await;
        running.log.finish();
        agent.builds.lock().remove(&id);
        finish(&agent, build_id, id, outcome).await;
        agent.builds.wake();
    });
    Ok(())
}

async fn finish(
    agent: &Arc<Agent>,
    build: BuildId,
    job: hangar_core::ids::JobId,
    outcome: super::runner::Outcome,
) {
    if agent.builds.stop.is_cancelled() && outcome.status == Status::Cancelled {
        // The agent is stopping: the row stays `running`, and the next start
        // marks it interrupted and queues it again.
        return;
    }
    let result = agent
        .db(move |a| {
            a.store
                .write(|tx| {
                    builds::set_job_outputs(tx, job, &outcome.outputs)?;
                    builds::set_job_status(tx, job, outcome.status, outcome.reason.as_deref())?;
                    builds::refresh_build(tx, build)
                })
                .map_err(anyhow::Error::from)
        })
        .await;
    match result {
        Ok(status) => {
            tracing::info!(build = %build, job = %job, "job finished; build is {}", status.as_str())
        }
        Err(e) => tracing::error!(job = %job, "cannot record the job's end: {e:#}"),
    }
}
