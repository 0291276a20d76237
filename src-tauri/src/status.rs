//! What the tray shows, derived from what the agent's API says: a pure state
//! machine (no I/O), so every rule here is unit-tested. The tray follows the
//! agent's event stream; [`Refresh::after`] says which events make it read
//! the REST API again, and each read gives a [`Snapshot`], from which this
//! module derives the tray's [`TrayState`] and the [`Notice`]s worth a
//! desktop notification.

use serde::Deserialize;

/// A build as `GET /api/v1/builds` lists it (the fields the tray uses).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Build {
    pub id: String,
    pub repo: String,
    pub number: i64,
    pub workflow_name: String,
    pub status: String,
}

impl Build {
    pub fn is_active(&self) -> bool {
        matches!(self.status.as_str(), "queued" | "running")
    }

    pub fn is_failed(&self) -> bool {
        matches!(self.status.as_str(), "failure" | "interrupted" | "invalid")
    }

    /// A finished build that says something about its workflow's health
    /// (cancelled and skipped builds say nothing).
    fn verdict(&self) -> Option<bool> {
        match self.status.as_str() {
            "success" => Some(true),
            _ if self.is_failed() => Some(false),
            _ => None,
        }
    }

    /// One workflow of one repository: the unit that fails and recovers.
    fn pipeline(&self) -> (&str, &str) {
        (&self.repo, &self.workflow_name)
    }

    /// `acme/app #12 CI: failure`, for the tray menu.
    pub fn label(&self) -> String {
        format!(
            "{} #{} {}: {}",
            self.repo, self.number, self.workflow_name, self.status
        )
    }
}

/// A mirror as `GET /api/v1/mirrors` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Mirror {
    pub repo: String,
    pub state: String,
    #[serde(default)]
    pub last_error: Option<String>,
}

/// One look at the agent. `builds` is newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub paused: bool,
    pub builds: Vec<Build>,
    pub mirrors: Vec<Mirror>,
}

/// The tray icon's states. A paused queue wins over everything, because
/// nothing will change until someone resumes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayState {
    Idle,
    Building,
    Failed,
    Paused,
}

impl TrayState {
    pub fn as_str(self) -> &'static str {
        match self {
            TrayState::Idle => "idle",
            TrayState::Building => "building",
            TrayState::Failed => "failed",
            TrayState::Paused => "paused",
        }
    }
}

impl Snapshot {
    pub fn state(&self) -> TrayState {
        if self.paused {
            TrayState::Paused
        } else if self.builds.iter().any(Build::is_active) {
            TrayState::Building
        } else if !self.red_pipelines().is_empty() {
            TrayState::Failed
        } else {
            TrayState::Idle
        }
    }

    /// Workflows whose latest verdict is a failure, as `repo workflow`.
    pub fn red_pipelines(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        let mut red = Vec::new();
        for build in &self.builds {
            let Some(ok) = build.verdict() else { continue };
            if seen.insert(build.pipeline()) && !ok {
                red.push(format!("{} {}", build.repo, build.workflow_name));
            }
        }
        red
    }

    /// The tray's first line.
    pub fn status_line(&self) -> String {
        let active = self.builds.iter().filter(|b| b.is_active()).count();
        let red = self.red_pipelines();
        let state = self.state();
        match state {
            TrayState::Paused if active > 0 => {
                format!("Queue paused ({active} build(s) waiting or finishing)")
            }
            TrayState::Paused => "Queue paused".to_owned(),
            TrayState::Building => format!("Building: {active} build(s)"),
            TrayState::Failed => format!("Failing: {}", red.join(", ")),
            TrayState::Idle => "Idle: all builds green".to_owned(),
        }
    }
}

/// Something to tell the user about, and the dashboard page it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub title: String,
    pub body: String,
    /// Path on the agent's dashboard, e.g. `/builds/ID`.
    pub page: String,
}

/// What changed between two looks that deserves a notification: a build
/// that finished failing, a build that succeeded after its workflow's
/// previous verdict was a failure (recovered), a mirror that became failing.
/// The first look (`before` = `None`) never notifies: old news is not news.
pub fn notices(before: Option<&Snapshot>, after: &Snapshot) -> Vec<Notice> {
    let Some(before) = before else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, build) in after.builds.iter().enumerate() {
        let Some(ok) = build.verdict() else { continue };
        let was_done = before
            .builds
            .iter()
            .any(|b| b.id == build.id && b.verdict().is_some());
        if was_done {
            continue;
        }
        let page = format!("/builds/{}", build.id);
        if !ok {
            out.push(Notice {
                title: format!("Build failed: {} #{}", build.repo, build.number),
                body: format!("{} ended with {}", build.workflow_name, build.status),
                page,
            });
        } else if previous_verdict(&after.builds[i + 1..], build)
            .or_else(|| previous_verdict(&before.builds, build))
            == Some(false)
        {
            out.push(Notice {
                title: format!("Build fixed: {} #{}", build.repo, build.number),
                body: format!("{} is green again", build.workflow_name),
                page,
            });
        }
    }
    for mirror in &after.mirrors {
        let was_failing = before
            .mirrors
            .iter()
            .any(|m| m.repo == mirror.repo && m.state == "failing");
        if mirror.state == "failing" && !was_failing {
            out.push(Notice {
                title: format!("Mirror failing: {}", mirror.repo),
                body: mirror
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "syncs keep failing".to_owned()),
                page: format!("/mirrors/{}", mirror.repo),
            });
        }
    }
    out
}

/// What to read again from the REST API after an event of the stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refresh {
    /// Builds, mirrors and the queue (the [`Snapshot`]).
    pub snapshot: bool,
    /// The repositories of the clone-URL menu.
    pub repos: bool,
}

impl Refresh {
    /// `hello` opens every (re)connected stream and `reload` says changes
    /// were dropped: both re-read everything. Build, mirror and queue
    /// changes alter the snapshot; a push may be a new repository's first.
    /// Job and step changes show in the window only.
    pub fn after(event: &str) -> Refresh {
        match event {
            "hello" | "reload" => Refresh {
                snapshot: true,
                repos: true,
            },
            "build" | "mirror" | "queue" => Refresh {
                snapshot: true,
                repos: false,
            },
            "push" => Refresh {
                snapshot: false,
                repos: true,
            },
            _ => Refresh::default(),
        }
    }

    pub fn any(self) -> bool {
        self.snapshot || self.repos
    }

    /// Both reads, for events that arrived close together.
    pub fn and(self, other: Refresh) -> Refresh {
        Refresh {
            snapshot: self.snapshot || other.snapshot,
            repos: self.repos || other.repos,
        }
    }
}

/// The verdict of the newest older build of the same workflow in `older`.
fn previous_verdict(older: &[Build], build: &Build) -> Option<bool> {
    older
        .iter()
        .filter(|b| b.id != build.id && b.pipeline() == build.pipeline())
        .find_map(Build::verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(id: &str, repo: &str, status: &str) -> Build {
        Build {
            id: id.to_owned(),
            repo: repo.to_owned(),
            number: id.trim_start_matches('b').parse().unwrap_or(0),
            workflow_name: "CI".to_owned(),
            status: status.to_owned(),
        }
    }

    fn snap(builds: Vec<Build>) -> Snapshot {
        Snapshot {
            builds,
            ..Snapshot::default()
        }
    }

    #[test]
    fn empty_agent_is_idle() {
        assert_eq!(Snapshot::default().state(), TrayState::Idle);
        assert_eq!(Snapshot::default().status_line(), "Idle: all builds green");
    }

    #[test]
    fn active_builds_mean_building() {
        let s = snap(vec![
            build("b2", "a/x", "queued"),
            build("b1", "a/x", "failure"),
        ]);
        assert_eq!(s.state(), TrayState::Building);
        assert_eq!(s.status_line(), "Building: 1 build(s)");
    }

    #[test]
    fn latest_verdict_per_workflow_decides_failed() {
        // a/x failed then recovered; a/y's latest is a failure.
        let s = snap(vec![
            build("b4", "a/x", "success"),
            build("b3", "a/y", "failure"),
            build("b2", "a/x", "failure"),
            build("b1", "a/y", "success"),
        ]);
        assert_eq!(s.state(), TrayState::Failed);
        assert_eq!(s.red_pipelines(), vec!["a/y CI".to_owned()]);
        // A cancelled build says nothing: the failure below it still counts.
        let s = snap(vec![
            build("b2", "a/y", "cancelled"),
            build("b1", "a/y", "failure"),
        ]);
        assert_eq!(s.state(), TrayState::Failed);
        let s = snap(vec![
            build("b2", "a/y", "success"),
            build("b1", "a/y", "failure"),
        ]);
        assert_eq!(s.state(), TrayState::Idle);
    }

    #[test]
    fn paused_wins() {
        let mut s = snap(vec![build("b1", "a/x", "running")]);
        s.paused = true;
        assert_eq!(s.state(), TrayState::Paused);
        assert!(s.status_line().starts_with("Queue paused (1"));
    }

    #[test]
    fn first_look_never_notifies() {
        let s = snap(vec![build("b1", "a/x", "failure")]);
        assert!(notices(None, &s).is_empty());
    }

    #[test]
    fn failure_and_recovery_notify_once() {
        let running = snap(vec![
            build("b2", "a/x", "running"),
            build("b1", "a/x", "success"),
        ]);
        let failed = snap(vec![
            build("b2", "a/x", "failure"),
            build("b1", "a/x", "success"),
        ]);
        let got = notices(Some(&running), &failed);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].title, "Build failed: a/x #2");
        assert_eq!(got[0].page, "/builds/b2");
        // Seen again: nothing new.
        assert!(notices(Some(&failed), &failed).is_empty());

        let fixed = snap(vec![
            build("b3", "a/x", "success"),
            build("b2", "a/x", "failure"),
            build("b1", "a/x", "success"),
        ]);
        let got = notices(Some(&failed), &fixed);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].title, "Build fixed: a/x #3");

        // Success after success is not news.
        let green = snap(vec![
            build("b4", "a/x", "success"),
            build("b3", "a/x", "success"),
        ]);
        assert!(notices(Some(&fixed), &green).is_empty());
    }

    #[test]
    fn recovery_is_found_in_the_earlier_look_when_the_failure_scrolled_away() {
        // The failure is no longer in the newest list, but the previous look had it.
        let before = snap(vec![
            build("b2", "a/x", "running"),
            build("b1", "a/x", "failure"),
        ]);
        let after = snap(vec![build("b2", "a/x", "success")]);
        assert_eq!(
            notices(Some(&before), &after)[0].title,
            "Build fixed: a/x #2"
        );
    }

    #[test]
    fn other_workflows_do_not_count_as_recovery() {
        let mut other = build("b1", "a/x", "failure");
        other.workflow_name = "Lint".to_owned();
        let before = snap(vec![build("b2", "a/x", "running"), other.clone()]);
        let after = snap(vec![build("b2", "a/x", "success"), other]);
        assert!(notices(Some(&before), &after).is_empty());
    }

    #[test]
    fn only_events_that_change_the_tray_refresh_it() {
        let all = Refresh {
            snapshot: true,
            repos: true,
        };
        assert_eq!(Refresh::after("hello"), all);
        assert_eq!(Refresh::after("reload"), all);
        for name in ["build", "mirror", "queue"] {
            assert_eq!(
                Refresh::after(name),
                Refresh {
                    snapshot: true,
                    repos: false
                },
                "{name}"
            );
        }
        assert!(!Refresh::after("push").snapshot && Refresh::after("push").repos);
        for name in ["job", "step", "message", "keepalive"] {
            assert!(!Refresh::after(name).any(), "{name}");
        }
        assert_eq!(Refresh::after("push").and(Refresh::after("build")), all);
    }

    #[test]
    fn mirror_that_starts_failing_notifies() {
        let mirror = |state: &str| Mirror {
            repo: "up/lib".to_owned(),
            state: state.to_owned(),
            last_error: Some("connection refused".to_owned()),
        };
        let ok = Snapshot {
            mirrors: vec![mirror("retrying")],
            ..Snapshot::default()
        };
        let failing = Snapshot {
            mirrors: vec![mirror("failing")],
            ..Snapshot::default()
        };
        let got = notices(Some(&ok), &failing);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].title, "Mirror failing: up/lib");
        assert_eq!(got[0].body, "connection refused");
        assert_eq!(got[0].page, "/mirrors/up/lib");
        assert!(notices(Some(&failing), &failing).is_empty());
    }
}
