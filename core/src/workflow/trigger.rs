//! Events, and whether a workflow's `on:` selects them.

use super::syntax::{RefFilters, Triggers};
use std::collections::BTreeMap;

/// What happened, as the agent saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `changed_paths` is `None` when unknown (a new branch, a huge push):
    /// path filters then pass, as on GitHub.
    Push {
        git_ref: String,
        before: String,
        after: String,
        changed_paths: Option<Vec<String>>,
    },
    PullRequest {
        /// `opened`, `synchronize`, `reopened`, `closed`...
        action: String,
        number: u64,
        base_ref: String,
        head_ref: String,
        head_sha: String,
        changed_paths: Option<Vec<String>>,
    },
    WorkflowDispatch {
        git_ref: String,
        sha: String,
        inputs: BTreeMap<String, String>,
    },
    /// `cron` is the schedule that fired, as written in the workflow.
    Schedule {
        cron: String,
        git_ref: String,
        sha: String,
    },
}

impl Event {
    /// The event's name as `github.event_name` gives it.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Push { .. } => "push",
            Event::PullRequest { .. } => "pull_request",
            Event::WorkflowDispatch { .. } => "workflow_dispatch",
            Event::Schedule { .. } => "schedule",
        }
    }
}

/// Whether `on` selects `event`.
pub fn matches(on: &Triggers, event: &Event) -> bool {
    match event {
        Event::Push {
            git_ref,
            changed_paths,
            ..
        } => on
            .push
            .as_ref()
            .is_some_and(|f| push_matches(f, git_ref, changed_paths.as_deref())),
        Event::PullRequest {
            action,
            base_ref,
            changed_paths,
            ..
        } => on.pull_request.as_ref().is_some_and(|pr| {
            let base = base_ref.strip_prefix("refs/heads/").unwrap_or(base_ref);
            pr.types.iter().any(|t| t == action)
                && name_passes(&pr.filters.branches, &pr.filters.branches_ignore, base)
                && paths_pass(&pr.filters, changed_paths.as_deref())
        }),
        Event::WorkflowDispatch { .. } => on.workflow_dispatch.is_some(),
        Event::Schedule { cron, .. } => {
            let normal = |c: &str| c.split_whitespace().collect::<Vec<_>>().join(" ");
            on.schedule.iter().any(|c| normal(c) == normal(cron))
        }
    }
}

fn push_matches(f: &RefFilters, git_ref: &str, changed: Option<&[String]>) -> bool {
    let branch_filters = f.branches.is_some() || f.branches_ignore.is_some();
    let tag_filters = f.tags.is_some() || f.tags_ignore.is_some();
    if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
        // Only branch filters: tags never run. Path filters do not apply to tags.
        (tag_filters || !branch_filters) && name_passes(&f.tags, &f.tags_ignore, tag)
    } else if let Some(branch) = git_ref.strip_prefix("refs/heads/") {
        (branch_filters || !tag_filters)
            && name_passes(&f.branches, &f.branches_ignore, branch)
            && paths_pass(f, changed)
    } else {
        false
    }
}

fn name_passes(
    include: &Option<super::glob::Filter>,
    ignore: &Option<super::glob::Filter>,
    name: &str,
) -> bool {
    include.as_ref().is_none_or(|f| f.matches(name))
        && ignore.as_ref().is_none_or(|f| !f.matches(name))
}

fn paths_pass(f: &RefFilters, changed: Option<&[String]>) -> bool {
    let Some(changed) = changed else {
        return true;
    };
    f.paths
        .as_ref()
        .is_none_or(|p| changed.iter().any(|c| p.matches(c)))
        && f.paths_ignore
            .as_ref()
            .is_none_or(|p| !changed.iter().all(|c| p.matches(c)))
}
