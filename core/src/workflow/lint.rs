//! What parses but cannot run here: each becomes a reason on the workflow or
//! job, so nothing is silently ignored.

use super::Diagnostic;
use super::syntax::{StepAction, Workflow};

/// Actions the runner implements itself (matched without the `@version`).
pub const BUILTIN_ACTIONS: &[&str] = &[
    "actions/checkout",
    "actions/upload-artifact",
    "actions/download-artifact",
    "actions/cache",
    "actions/cache/restore",
    "actions/cache/save",
    "maxim-lobanov/setup-xcode",
];

/// Records every unsupported feature of `workflow` on it and its jobs.
pub fn lint(workflow: &mut Workflow) {
    let file = workflow.file.clone();
    for (event, pos) in &workflow.on.other {
        let why = if event == "workflow_call" {
            "reusable workflows are not supported yet; this file only runs on its other events"
                .to_owned()
        } else {
            format!("Hangar does not deliver `{event}` events; the workflow will not run on them")
        };
        workflow.unsupported.push(Diagnostic::new(&file, *pos, why));
    }
    for job in &mut workflow.jobs {
        let mut reasons = Vec::new();
        if let Some(uses) = &job.uses {
            reasons.push(format!(
                "job calls the reusable workflow `{uses}`; reusable workflows are not supported yet"
            ));
        }
        for (service, _) in &job.services {
            reasons.push(format!(
                "service containers are not supported yet (`services.{service}`)"
            ));
        }
        if job.runs_on_group.is_some() {
            reasons.push("`runs-on.group` names a GitHub runner group; Hangar matches `labels` only, so remove `group`".to_owned());
        }
        for step in &job.steps {
            let mut step_reason =
                |why: String| reasons.push(format!("step at line {}: {why}", step.pos.line));
            if let StepAction::Uses { action, .. } = &step.action
                && let Some(why) = unsupported_action(action)
            {
                step_reason(why);
            }
            let shell = step
                .shell
                .as_ref()
                .or(job.defaults.shell.as_ref())
                .or(workflow.defaults.shell.as_ref());
            if let Some(shell) = shell.filter(|s| matches!(s.as_str(), "cmd" | "powershell")) {
                step_reason(format!(
                    "shell `{shell}` exists only on Windows; use bash, sh, pwsh or python"
                ));
            }
        }
        let pos = job.pos;
        job.unsupported
            .extend(reasons.into_iter().map(|r| Diagnostic::new(&file, pos, r)));
    }
}

fn unsupported_action(action: &str) -> Option<String> {
    if action.starts_with("./") {
        return Some(format!("local action `{action}` is not supported yet"));
    }
    if action.starts_with("docker://") {
        return Some(format!("container action `{action}` is not supported yet"));
    }
    let name = action.split('@').next().unwrap_or(action);
    if BUILTIN_ACTIONS.iter().any(|b| b.eq_ignore_ascii_case(name)) {
        return None;
    }
    Some(format!(
        "action `{action}` is not available in Hangar; built-in actions are {}",
        BUILTIN_ACTIONS.join(", ")
    ))
}
