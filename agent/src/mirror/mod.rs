//! The mirror loop: pull mirrors fetch from upstream, push mirrors forward
//! pushes; each on its timer, with backoff on failure and a bounded number
//! of syncs at once.
//!
//! All state lives in SQLite (`mirrors`), so a restart
//! resumes where the agent stopped; a sync cut off by a crash runs again.

pub mod add;
pub mod credentials;
pub mod remote;
pub mod source;
pub mod sync;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use hangar_core::ids::{RepoId, SourceId};
use hangar_core::store::mirror_sources;
use hangar_core::store::mirrors::{self, Kind};
use hangar_core::store::{events, now_ms};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use crate::agent::Agent;

/// Longest the loop sleeps without looking at the schedule again.
const MAX_NAP: Duration = Duration::from_secs(30);

pub struct Mirrors {
    wake: Notify,
    slots: Arc<Semaphore>,
    task: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// One unit of work for the loop.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Job {
    Mirror(RepoId),
    /// A poll of a sync source (starred repos, an organization).
    Source(SourceId),
}

impl Mirrors {
    pub fn new(concurrency: usize) -> Self {
        Self {
            wake: Notify::new(),
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            task: tokio::sync::Mutex::new(None),
        }
    }

    /// Starts the loop (after marking interrupted syncs as due).
    pub async fn start(agent: &Arc<Agent>) -> anyhow::Result<()> {
        let recovered = agent
            .db(|a| {
                a.store
                    .write(|tx| mirrors::recover_interrupted(tx))
                    .map_err(anyhow::Error::from)
            })
            .await?;
        if recovered > 0 {
            tracing::info!(
                mirrors = recovered,
                "retrying syncs interrupted by a restart"
            );
        }
        let task = tokio::spawn(run(agent.clone()));
        *agent.mirrors.task.lock().await = Some(task);
        Ok(())
    }

    /// Makes the loop look at the schedule now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// After a push to `repo`: its push mirror, if any, forwards now.
    pub async fn repo_pushed(&self, agent: &Arc<Agent>, repo: RepoId) {
        let requested = agent
            .db(move |a| {
                a.store
                    .write(|tx| match mirrors::get(tx, repo)? {
                        Some(m) if m.kind == Kind::Push => mirrors::request_now(tx, repo),
                        _ => Ok(false),
                    })
                    .map_err(anyhow::Error::from)
            })
            .await;
        match requested {
            Ok(true) => self.wake(),
            Ok(false) => {}
            Err(e) => tracing::warn!("cannot schedule the push mirror: {e}"),
        }
    }

    /// Stops the loop; syncs in flight are cut off (git is killed) and run
    /// again at the next start.
    pub async fn shutdown(&self) {
        if let Some(task) = self.task.lock().await.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

/// The mirror row of a repository, if it is a mirror.
pub async fn row(agent: &Arc<Agent>, repo: RepoId) -> Result<Option<mirrors::Mirror>, String> {
    agent
        .db(move |a| {
            a.store
                .read(|c| mirrors::get(c, repo))
                .map_err(anyhow::Error::from)
        })
        .await
        .map_err(|e| e.to_string())
}

/// Why a push to `repo` is refused, if it is a pull mirror: git shows the
/// message to the pusher. Every transport that accepts pushes calls this.
pub fn push_refusal(agent: &Agent, repo: &hangar_core::store::repos::Repo) -> Option<String> {
    let mirror = agent
        .store
        .read(|c| mirrors::get(c, repo.id))
        .ok()
        .flatten()?;
    (mirror.kind == Kind::Pull).then(|| {
        format!(
            "{} is a read-only mirror of {}; push there instead (or run `hangar mirror remove {}` to make it a normal repository)",
            repo.name, mirror.url, repo.name
        )
    })
}

async fn run(agent: Arc<Agent>) {
    let mut running: HashSet<Job> = HashSet::new();
    let mut jobs: JoinSet<Job> = JoinSet::new();
    loop {
        let schedule = agent
            .db(|a| {
                a.store.read(|c| {
                    let mirrors = mirrors::schedule(c)?;
                    let sources = mirror_sources::schedule(c)?;
                    Ok::<_, anyhow::Error>((mirrors, sources))
                })
            })
            .await;
        let now = now_ms();
        let mut next = now + MAX_NAP.as_millis() as i64;
        match schedule {
            Ok((mirror_times, source_times)) => {
                let all = mirror_times
                    .into_iter()
                    .map(|(id, at)| (Job::Mirror(id), at))
                    .chain(
                        source_times
                            .into_iter()
                            .map(|(id, at)| (Job::Source(id), at)),
                    );
                for (job, at) in all {
                    if running.contains(&job) {
                        continue;
                    }
                    if at <= now {
                        running.insert(job.clone());
                        jobs.spawn(run_job(agent.clone(), job));
                    } else {
                        next = next.min(at);
                    }
                }
            }
            Err(e) => tracing::warn!("cannot read the mirror schedule: {e}"),
        }
        let nap = Duration::from_millis((next - now).max(10) as u64);
        tokio::select! {
            _ = tokio::time::sleep(nap) => {}
            _ = agent.mirrors.wake.notified() => {}
            Some(done) = jobs.join_next(), if !jobs.is_empty() => {
                match done {
                    Ok(job) => { running.remove(&job); }
                    Err(e) => tracing::error!("a mirror sync panicked: {e}"),
                }
                while let Some(done) = jobs.try_join_next() {
                    if let Ok(job) = done {
                        running.remove(&job);
                    }
                }
            }
        }
    }
}

async fn run_job(agent: Arc<Agent>, job: Job) -> Job {
    let Ok(_slot) = agent.mirrors.slots.clone().acquire_owned().await else {
        return job;
    };
    match &job {
        Job::Mirror(id) => sync_mirror(&agent, *id).await,
        Job::Source(id) => source::poll(&agent, *id).await,
    }
    job
}

/// One sync with its bookkeeping: state, health, backoff, alerts.
async fn sync_mirror(agent: &Arc<Agent>, id: RepoId) {
    let started = agent
        .db(move |a| {
            a.store
                .write(|tx| {
                    let mirror = mirrors::get(tx, id)?;
                    if let Some(m) = &mirror
                        && !matches!(m.state, mirrors::State::Paused | mirrors::State::Archived)
                    {
                        mirrors::start_attempt(tx, id)?;
                        return Ok(mirror);
                    }
                    Ok::<_, hangar_core::store::StoreError>(None)
                })
                .map_err(anyhow::Error::from)
        })
        .await;
    let mirror = match started {
        Ok(Some(mirror)) => mirror,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!("cannot start a mirror sync: {e}");
            return;
        }
    };
    let result = match mirror.kind {
        Kind::Pull => sync::fetch(agent, &mirror).await,
        Kind::Push => sync::forward(agent, &mirror).await,
    };
    let settings = &agent.settings;
    let failing_after = settings.mirror_failing_after;
    let base = Duration::from_secs(settings.mirror_backoff_secs);
    let outcome = match result {
        Ok(outcome) => {
            tracing::info!(repo = %mirror.repo, kind = mirror.kind.as_str(), refs = outcome.refs_changed, "mirror synced");
            agent
                .db(move |a| {
                    a.store
                        .write(|tx| mirrors::succeed(tx, id, outcome.bytes, outcome.refs_changed))
                        .map_err(anyhow::Error::from)
                })
                .await
                .map(|()| 0)
        }
        Err(error) => {
            let retry = hangar_core::mirror::backoff(base, mirror.failures + 1, rand::random());
            let error = error.chars().take(2000).collect::<String>();
            let failures = {
                let error = error.clone();
                agent
                    .db(move |a| {
                        a.store
                            .write(|tx| {
                                let failures = mirrors::fail(tx, id, &error, retry.as_millis() as i64, failing_after)?;
                                if failures == failing_after {
                                    events::record(
                                        tx,
                                        id,
                                        events::MIRROR_FAILING,
                                        None,
                                        &serde_json::json!({ "error": error, "failures": failures }),
                                    )?;
                                }
                                Ok::<_, hangar_core::store::StoreError>(failures)
                            })
                            .map_err(anyhow::Error::from)
                    })
                    .await
            };
            match &failures {
                Ok(n) if *n >= failing_after => {
                    tracing::warn!(repo = %mirror.repo, failures = n, retry_in = ?retry, "mirror is failing: {error}")
                }
                Ok(n) => {
                    tracing::info!(repo = %mirror.repo, failures = n, retry_in = ?retry, "mirror sync failed: {error}")
                }
                Err(_) => {}
            }
            failures
        }
    };
    match outcome {
        Ok(failures) => agent.changes.send(crate::changes::Change::Mirror {
            repo: mirror.repo.to_string(),
            ok: failures == 0,
            failures,
        }),
        Err(e) => tracing::warn!(repo = %mirror.repo, "cannot record the mirror sync: {e}"),
    }
}
