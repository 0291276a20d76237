//! Background repacking after pushes: full packs with bitmaps and a
//! commit-graph keep clones and fetches fast. Runs one repository at a time,
//! after pushes have been quiet for a moment, never on a request's path.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;

/// How long a repository must go without pushes before it is repacked.
const QUIET: Duration = Duration::from_secs(2);

pub struct Maintenance {
    queue: Option<mpsc::UnboundedSender<PathBuf>>,
    task: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Maintenance {
    /// Starts the worker; when `enabled` is false, requests are ignored.
    pub fn start(enabled: bool) -> Self {
        if !enabled {
            return Self {
                queue: None,
                task: tokio::sync::Mutex::new(None),
            };
        }
        let (queue, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(rx));
        Self {
            queue: Some(queue),
            task: tokio::sync::Mutex::new(Some(task)),
        }
    }

    /// Asks for `repo` to be repacked soon.
    pub fn request(&self, repo: &Path) {
        if let Some(queue) = &self.queue {
            let _ = queue.send(repo.to_owned());
        }
    }

    /// Stops the worker; a repack in progress is left to git, which never
    /// removes old packs before the new one is complete.
    pub async fn shutdown(&self) {
        if let Some(task) = self.task.lock().await.take() {
            task.abort();
        }
    }
}

async fn run(mut rx: mpsc::UnboundedReceiver<PathBuf>) {
    let mut pending: BTreeSet<PathBuf> = BTreeSet::new();
    loop {
        let next = if pending.is_empty() {
            rx.recv().await
        } else {
            match tokio::time::timeout(QUIET, rx.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    for repo in std::mem::take(&mut pending) {
                        repack(&repo).await;
                    }
                    continue;
                }
            }
        };
        match next {
            Some(repo) => {
                pending.insert(repo);
            }
            None => return,
        }
    }
}

async fn repack(repo: &Path) {
    if !repo.exists() {
        return;
    }
    let steps: [&[&str]; 2] = [
        &["repack", "-a", "-d", "-q", "--write-bitmap-index"],
        &["commit-graph", "write", "--reachable", "--no-progress"],
    ];
    for args in steps {
        let output = tokio::process::Command::new("git")
            .arg("--git-dir")
            .arg(repo)
            .args(args)
            .kill_on_drop(true)
            .output()
            .await;
        match output {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                tracing::warn!(repo = %repo.display(), "git {} failed: {}", args[0], String::from_utf8_lossy(&out.stderr).trim());
                return;
            }
            Err(e) => {
                tracing::warn!(repo = %repo.display(), "cannot run git {}: {e}", args[0]);
                return;
            }
        }
    }
    tracing::debug!(repo = %repo.display(), "repacked");
}
