//! Builds: events become builds ([`plan`]), queued jobs take free slots
//! ([`scheduler`]), and [`runner`] runs their steps on the host or in a
//! Docker container ([`docker`]).

pub mod archive;
pub mod artifacts;
pub mod cache;
pub mod docker;
pub mod log;
pub mod output;
pub mod plan;
pub mod runner;
pub mod scheduler;
pub mod xcode;

use std::collections::HashMap;
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
}

#[derive(Clone)]
pub struct RunningJob {
    pub executor: String,
    pub cancel: CancellationToken,
    pub log: Arc<log::JobLog>,
}

impl Builds {
    /// Asks the scheduler to look for new events and free slots now.
    pub fn wake(&self) {
        self.wake.notify_one();
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

    fn busy(&self, executor: &str) -> usize {
        self.lock()
            .values()
            .filter(|j| j.executor == executor)
            .count()
    }
}
