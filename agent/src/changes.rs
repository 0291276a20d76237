//! Changes the dashboard and the desktop app hear about as they happen: build,
//! job and step status, pushes, mirror health. A broadcast, so a slow or absent
//! listener never holds up the scheduler; a listener that falls behind is told
//! to reload instead of being waited for.

use hangar_core::ids::{BuildId, JobId};
use hangar_core::store::builds::Status;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// How many changes a listener may fall behind before it must reload.
const BACKLOG: usize = 1024;

/// One change, as `/api/v1/events` sends it (`event:` is the `type`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    /// A build was queued or its status changed.
    Build { id: BuildId, status: Status },
    /// A job's status changed.
    Job {
        build: BuildId,
        id: JobId,
        status: Status,
    },
    /// A step of a running job started or ended.
    Step {
        build: BuildId,
        job: JobId,
        number: usize,
        status: Status,
    },
    /// Refs moved in a served repository (`kind`: push or mirror).
    Push {
        repo: String,
        kind: String,
        refs: usize,
    },
    /// A mirror sync ended; `failures` counts the failed attempts in a row.
    Mirror {
        repo: String,
        ok: bool,
        failures: u32,
    },
    /// The build queue was paused or resumed.
    Queue { paused: bool },
}

/// The agent's change feed.
pub struct Changes {
    tx: broadcast::Sender<Change>,
    /// Cancelled when the agent stops, so open streams end and do not hold
    /// up the HTTP server's graceful shutdown.
    pub closed: CancellationToken,
}

impl Default for Changes {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(BACKLOG).0,
            closed: CancellationToken::new(),
        }
    }
}

impl Changes {
    /// Tells every listener; nobody listening is fine.
    pub fn send(&self, change: Change) {
        let _ = self.tx.send(change);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_serialize_with_their_type() {
        let change = Change::Push {
            repo: "alice/app".into(),
            kind: "push".into(),
            refs: 2,
        };
        assert_eq!(
            serde_json::to_value(&change).expect("json"),
            serde_json::json!({ "type": "push", "repo": "alice/app", "kind": "push", "refs": 2 })
        );
    }

    #[test]
    fn a_listener_hears_what_is_sent_after_it_subscribed() {
        let changes = Changes::default();
        changes.send(Change::Mirror {
            repo: "a/b".into(),
            ok: true,
            failures: 0,
        });
        let mut rx = changes.subscribe();
        let sent = Change::Mirror {
            repo: "a/b".into(),
            ok: false,
            failures: 1,
        };
        changes.send(sent.clone());
        assert_eq!(rx.try_recv().expect("one change"), sent);
        assert!(rx.try_recv().is_err());
    }
}
