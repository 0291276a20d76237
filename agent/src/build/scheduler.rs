//! The scheduler: plans new events, then starts queued jobs whose `needs`
//! are done, while the executor has a free slot.

use std::sync::Arc;
use std::time::Duration;

use hangar_core::ids::BuildId;
use hangar_core::store::builds::{self, Job, Status};
use hangar_core::workflow::JobSpec;
use hangar_core::workflow::expr::{self, Context, Value};

use super::{RunningJob, admission};
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
    // One read for every queued job, its build's jobs (for `needs` and
    // `max-parallel`) and its spec: a tick with hundreds of queued jobs must
    // not cost hundreds of reads.
    let builds = agent
        .db(|a| {
            a.store
                .read(builds::queued_by_build)
                .map_err(anyhow::Error::from)
        })
        .await?;
    if builds.is_empty() {
        return Ok(());
    }
    // Reading the disks costs more than the rest of a tick: only when a job
    // could start.
    let free = if builds
        .iter()
        .flat_map(|b| &b.queued)
        .any(|(job, _)| agent.builds.busy(&job.executor) < slots(agent, &job.executor))
    {
        let root = agent.data.root().to_path_buf();
        tokio::task::spawn_blocking(move || admission::measure(&root)).await?
    } else {
        admission::Free {
            memory: None,
            disk: None,
        }
    };
    for mut build in builds {
        for (job, condition) in build.queued {
            dispatch(agent, job, condition.as_deref(), &mut build.jobs, &free).await?;
        }
    }
    Ok(())
}

/// An executor's slots; 0 for one this agent does not know.
fn slots(agent: &Agent, executor: &str) -> usize {
    match executor {
        "host" => agent.settings.host_slots,
        "docker" => agent.settings.docker_slots,
        _ => 0,
    }
}

/// What to do with one queued job.
enum Decision {
    Wait,
    /// Wait, with the reason shown on the job.
    Hold(String),
    Skip(String),
    Fail(String),
    Start,
}

/// What a queued job waits on besides its `needs` and a slot.
struct Waits {
    /// The build of its workflow-level concurrency group that runs now.
    holder: Option<builds::Build>,
    /// Unfinished jobs of its job-level concurrency group (itself excluded),
    /// each with whether it is an older pending one: queued before this job
    /// and waiting only for the group (its `needs` are done).
    group: Vec<(Job, bool)>,
}

/// Decides what happens to one queued job of a build whose jobs are
/// `siblings`, and records it there too, so the next job of the same tick
/// sees it (for `max-parallel`).
async fn dispatch(
    agent: &Arc<Agent>,
    job: Job,
    condition: Option<&str>,
    siblings: &mut [Job],
    free: &admission::Free,
) -> anyhow::Result<()> {
    let build_id = job.build_id;
    let id = job.id;
    let decision = match decide(agent, &job, condition, siblings, free) {
        Decision::Start => {
            let (spec, waits) = agent
                .db(move |a| a.store.read(|c| waits(c, id, build_id)))
                .await?;
            match spec {
                Ok(spec) => concurrency(agent, &job, &spec, siblings, &waits).await?,
                Err(e) => Decision::Fail(format!("stored job spec is unreadable: {e}")),
            }
        }
        other => other,
    };
    let (status, reason) = match decision {
        Decision::Wait => return Ok(()),
        Decision::Hold(reason) if job.reason.as_deref() == Some(&reason) => return Ok(()),
        Decision::Hold(reason) => {
            return agent
                .db(move |a| {
                    a.store
                        .write(|tx| builds::set_job_status(tx, id, Status::Queued, Some(&reason)))
                        .map_err(anyhow::Error::from)
                })
                .await;
        }
        Decision::Skip(reason) => (Status::Skipped, Some(reason)),
        Decision::Fail(reason) => (Status::Failure, Some(reason)),
        Decision::Start => (Status::Running, None),
    };
    let stored_reason = reason.clone();
    let build_status = agent
        .db(move |a| {
            a.store
                .write(|tx| {
                    builds::set_job_status(tx, id, status, stored_reason.as_deref())?;
                    builds::refresh_build(tx, build_id)
                })
                .map_err(anyhow::Error::from)
        })
        .await?;
    announce(agent, build_id, id, status, build_status);
    if let Some(sibling) = siblings.iter_mut().find(|s| s.id == id) {
        sibling.status = status;
    }
    if status == Status::Running {
        start_job(agent, job, siblings).await?;
    } else {
        tracing::info!(job = %id, "job {}: {}", status.as_str(), reason.unwrap_or_default());
    }
    Ok(())
}

fn decide(
    agent: &Arc<Agent>,
    job: &Job,
    condition: Option<&str>,
    siblings: &[Job],
    free: &admission::Free,
) -> Decision {
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
        "host" | "docker" => slots(agent, &job.executor),
        other => return Decision::Fail(format!("unknown executor {other:?}")),
    };
    if agent.builds.busy(&job.executor) >= slots {
        return Decision::Wait;
    }
    if let Some(reason) = admission::hold_reason(free, &agent.settings) {
        return Decision::Hold(reason);
    }
    Decision::Start
}

/// The job's parsed spec, and what it waits on.
fn waits(
    c: &hangar_core::store::Connection,
    id: hangar_core::ids::JobId,
    build_id: BuildId,
) -> anyhow::Result<(serde_json::Result<JobSpec>, Waits)> {
    let spec = serde_json::from_str::<JobSpec>(&builds::job_spec(c, id)?);
    let Some(build) = builds::get(c, build_id)? else {
        let waits = Waits {
            holder: None,
            group: Vec::new(),
        };
        return Ok((spec, waits));
    };
    let holder = builds::group_holder(c, &build)?;
    let group_name = spec
        .as_ref()
        .ok()
        .and_then(|s| s.concurrency.as_ref())
        .map(|g| g.group.clone());
    let mut group = Vec::new();
    if let Some(name) = group_name {
        // In planned order, so "older" is not left to ids made in the same millisecond.
        let mut before = true;
        for other in builds::group_jobs(c, build.repo_id, &name)? {
            if other.id == id {
                before = false;
                continue;
            }
            let pending = before
                && other.status == Status::Queued
                && builds::jobs(c, other.build_id)?
                    .iter()
                    .filter(|s| other.needs.contains(&s.key))
                    .all(|s| s.status.is_finished());
            group.push((other, pending));
        }
    }
    Ok((spec, Waits { holder, group }))
}

/// A job that could start, held back by concurrency: its build's group, its
/// matrix's `max-parallel`, its own job-level group (GitHub's rules: one
/// running and one pending; a newer pending job replaces an older one, and
/// with `cancel-in-progress` it stops the running one).
async fn concurrency(
    agent: &Arc<Agent>,
    job: &Job,
    spec: &JobSpec,
    siblings: &[Job],
    waits: &Waits,
) -> anyhow::Result<Decision> {
    if let Some(holder) = &waits.holder {
        return Ok(Decision::Hold(format!(
            "waiting for build #{} of concurrency group {:?}",
            holder.number,
            holder.concurrency.as_deref().unwrap_or_default()
        )));
    }
    if let Some(max) = spec.strategy.get("max-parallel").map(Value::to_number)
        && max >= 1.0
    {
        let running = siblings
            .iter()
            .filter(|s| s.key == job.key && s.status == Status::Running)
            .count();
        if running as f64 >= max {
            return Ok(Decision::Hold(format!(
                "waiting: max-parallel {max} of its matrix are running"
            )));
        }
    }
    let Some(group) = &spec.concurrency else {
        return Ok(Decision::Start);
    };
    let running: Vec<_> = waits
        .group
        .iter()
        .filter(|(j, _)| j.status == Status::Running)
        .map(|(j, _)| j.id)
        .collect();
    if running.is_empty() {
        return Ok(Decision::Start);
    }
    if group.cancel_in_progress {
        let reason = format!(
            "cancelled: a newer job entered concurrency group {:?} with cancel-in-progress",
            group.group
        );
        let stopping = running.clone();
        agent
            .db(move |a| {
                a.store
                    .write(|tx| {
                        for id in &stopping {
                            builds::note_stop(tx, *id, &reason)?;
                        }
                        Ok::<_, hangar_core::store::StoreError>(())
                    })
                    .map_err(anyhow::Error::from)
            })
            .await?;
        agent.builds.stop_jobs(&running);
    }
    // This job is now the group's pending one: older pending ones give way.
    let replaced: Vec<(hangar_core::ids::JobId, BuildId)> = waits
        .group
        .iter()
        .filter(|(_, older_pending)| *older_pending)
        .map(|(j, _)| (j.id, j.build_id))
        .collect();
    if !replaced.is_empty() {
        let reason = format!(
            "cancelled: replaced by a newer job waiting in concurrency group {:?}",
            group.group
        );
        agent
            .db(move |a| {
                a.store
                    .write(|tx| {
                        for (id, build) in &replaced {
                            builds::set_job_status(tx, *id, Status::Cancelled, Some(&reason))?;
                            builds::refresh_build(tx, *build)?;
                        }
                        Ok::<_, hangar_core::store::StoreError>(())
                    })
                    .map_err(anyhow::Error::from)
            })
            .await?;
    }
    Ok(Decision::Hold(format!(
        "waiting for a running job of concurrency group {:?}",
        group.group
    )))
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
    let job_status = outcome.status;
    let result = agent
        .db(move |a| {
            a.store.write(|tx| {
                builds::set_job_outputs(tx, job, &outcome.outputs)?;
                // A job stopped by its concurrency group or fail-fast says so.
                let reason = match outcome.status {
                    Status::Cancelled => builds::stop_reason(tx, job)?.or(outcome.reason),
                    _ => outcome.reason,
                };
                builds::set_job_status(tx, job, outcome.status, reason.as_deref())?;
                let stop = match outcome.status {
                    Status::Failure => fail_fast(tx, job, build)?,
                    _ => Vec::new(),
                };
                Ok::<_, anyhow::Error>((builds::refresh_build(tx, build)?, stop))
            })
        })
        .await;
    match result {
        Ok((status, stop)) => {
            agent.builds.stop_jobs(&stop);
            announce(agent, build, job, job_status, status);
            tracing::info!(build = %build, job = %job, "job finished; build is {}", status.as_str())
        }
        Err(e) => tracing::error!(job = %job, "cannot record the job's end: {e:#}"),
    }
}

/// `strategy.fail-fast` (on by default): a failed matrix job cancels the
/// other jobs of its matrix. Returns the running ones to stop.
fn fail_fast(
    tx: &hangar_core::store::Connection,
    job: hangar_core::ids::JobId,
    build: BuildId,
) -> anyhow::Result<Vec<hangar_core::ids::JobId>> {
    let spec: JobSpec = serde_json::from_str(&builds::job_spec(tx, job)?)?;
    let strategy = &spec.strategy;
    let in_matrix = strategy.get("job-total").map(Value::to_number) > Some(1.0);
    let fail_fast = strategy.get("fail-fast").is_none_or(Value::is_truthy);
    if !in_matrix || !fail_fast {
        return Ok(Vec::new());
    }
    let Some(failed) = builds::job(tx, job)? else {
        return Ok(Vec::new());
    };
    let reason = format!(
        "cancelled: {} failed and the matrix is fail-fast",
        failed.name
    );
    Ok(builds::cancel_jobs(tx, build, Some(&spec.id), &reason)?)
}

/// Tells event-stream listeners about a job's new status and its build's.
fn announce(
    agent: &Agent,
    build: BuildId,
    job: hangar_core::ids::JobId,
    status: Status,
    build_status: Status,
) {
    use crate::changes::Change;
    agent.changes.send(Change::Job {
        build,
        id: job,
        status,
    });
    agent.changes.send(Change::Build {
        id: build,
        status: build_status,
    });
}
