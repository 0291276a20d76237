//! Builds: events become builds ([`plan`]), queued jobs take free slots
//! ([`scheduler`]), and [`runner`] runs their steps on the host or in a
//! Docker container ([`docker`]).

pub mod admission;
pub mod archive;
pub mod artifacts;
pub mod cache;
pub mod checkout;
pub mod docker;
pub mod log;
pub mod output;
pub mod plan;
pub mod runner;
pub mod scheduler;
pub mod secrets;
pub mod xcode;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use hangar_core::ids::JobId;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The agent's build state that is not in SQLite: which jobs run right now,
/// how to stop them, and their live logs.
#[derive(Default)]
pub struct Builds {
    wake: Notify,
    running: Mutex<HashMap<JobId, RunningJob>>,
    /// Cancelled at shutdown: stops the scheduler and kills running jobs.
    pub stop: CancellationToken,
    /// While set, the scheduler plans builds but starts no jobs.
    paused: AtomicBool,
}

#[derive(Clone)]
pub struct RunningJob {
    pub executor: String,
    pub cancel: CancellationToken,
    pub log: Arc<log::JobLog>,
}

/// The marker file that keeps the queue paused across restarts.
fn paused_marker(data_dir: &Path) -> PathBuf {
    data_dir.join("queue-paused")
}

impl Builds {
    /// The build state of a starting agent: the queue stays paused if it was.
    pub fn load(data_dir: &Path) -> Self {
        let builds = Self::default();
        builds
            .paused
            .store(paused_marker(data_dir).exists(), Ordering::SeqCst);
        builds
    }

    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// Pauses or resumes the queue. The marker file is on disk before this
    /// returns, so an acknowledged pause survives a crash.
    pub fn set_paused(&self, data_dir: &Path, paused: bool) -> anyhow::Result<()> {
        let marker = paused_marker(data_dir);
        if paused {
            crate::agent::write_private(&marker, b"paused by the queue API\n")?;
        } else if let Err(e) = std::fs::remove_file(&marker)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(
                anyhow::Error::new(e).context(format!("cannot remove {}", marker.display()))
            );
        }
        self.paused.store(paused, Ordering::SeqCst);
        self.wake();
        Ok(())
    }

    /// How many jobs run right now.
    pub fn running_jobs(&self) -> usize {
        self.lock().len()
    }

    /// Asks the scheduler to look for new events and free slots now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Stops running jobs (they record `cancelled` when they end).
    pub fn stop_jobs(&self, jobs: &[JobId]) {
        let running = self.lock();
        for job in jobs {
            if let Some(r) = running.get(job) {
                r.cancel.cancel();
            }
        }
    }

    pub fn running(&self, job: JobId) -> Option<RunningJob> {
        self.lock().get(&job).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, RunningJob>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits (up to `limit`) until no job is running, after a stop.
    pub async fn wait_idle(&self, limit: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.lock().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn busy(&self, executor: &str) -> usize {
        self.lock()
            .values()
            .filter(|j| j.executor == executor)
            .count()
    }
}
