//! GitHub-Actions-compatible workflows: parse → lint → plan.
//!
//! The agent passes file contents in and gets plans out; nothing here reads
//! the disk or the network. Every error names the file, line and column.
//!
//! - [`discover`] parses and lints the workflow files of a commit;
//! - [`plan()`] turns one workflow and an [`Event`] into [`JobSpec`]s (or says
//!   why a job cannot run here);
//! - [`expr`] evaluates `${{ }}` and `if:` at run time for the runner.

pub mod cron;
pub mod expr;
pub mod glob;
pub mod lint;
pub mod matrix;
pub mod plan;
pub mod syntax;
pub mod trigger;
pub mod yaml;

pub use lint::BUILTIN_ACTIONS;
pub use plan::{
    BlockedJob, ConcurrencySpec, Executor, Host, JobSpec, Plan, PlanContext, PlanError, StepSpec,
    plan,
};
pub use syntax::{StepAction, Workflow};
pub use trigger::Event;
pub use yaml::Pos;

use std::fmt;

/// Directories that hold workflow files, relative to the repository root.
pub const WORKFLOW_DIRS: &[&str] = &[".github/workflows", ".hangar/workflows"];

/// One problem at one place in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub pos: Pos,
    pub message: String,
}

impl Diagnostic {
    pub fn new(file: &str, pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_owned(),
            pos,
            message: message.into(),
        }
    }
}

/// `file:line:col: message`, the format editors jump to.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.pos.line, self.pos.col, self.message
        )
    }
}

/// A workflow file that cannot be used, with every problem found in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct WorkflowError {
    pub file: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for WorkflowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.diagnostics.iter().map(Diagnostic::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

/// Whether `path` (relative to the repository root) is a workflow file:
/// `*.yml` or `*.yaml` directly inside one of [`WORKFLOW_DIRS`].
pub fn is_workflow_path(path: &str) -> bool {
    let Some((dir, name)) = path.rsplit_once('/') else {
        return false;
    };
    WORKFLOW_DIRS.contains(&dir)
        && (name.ends_with(".yml") || name.ends_with(".yaml"))
        && !name.starts_with('.')
}

/// Parses and lints the workflow files among `files` (path, contents), in
/// path order; other paths are skipped. One bad file does not stop the rest.
pub fn discover(files: &[(String, String)]) -> Vec<Result<Workflow, WorkflowError>> {
    let mut chosen: Vec<&(String, String)> =
        files.iter().filter(|(p, _)| is_workflow_path(p)).collect();
    chosen.sort_by(|a, b| a.0.cmp(&b.0));
    chosen
        .into_iter()
        .map(|(path, text)| parse(path, text))
        .collect()
}

/// Parses and lints one workflow file.
pub fn parse(file: &str, text: &str) -> Result<Workflow, WorkflowError> {
    let mut workflow = syntax::parse(file, text)?;
    lint::lint(&mut workflow);
    Ok(workflow)
}
