//! Workflow files turned into typed values, with every error at once.
//!
//! Checks structure, types, unknown keys, expression syntax, globs, cron and
//! the `needs` graph. What Hangar cannot run is left to [`super::lint`]; what
//! depends on the event is left to [`super::plan`].

use super::cron::Cron;
use super::expr::{self, Value};
use super::glob::Filter;
use super::matrix;
use super::yaml::{self, Key, Node, Pos, Yaml};
use super::{Diagnostic, WorkflowError};
use std::collections::BTreeMap;

/// Environment variables or `with:` inputs: names to templates.
pub type Vars = BTreeMap<String, String>;

/// One parsed workflow file.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    pub file: String,
    pub name: Option<String>,
    pub run_name: Option<String>,
    pub on: Triggers,
    pub env: Vars,
    pub defaults: RunDefaults,
    /// Recorded as written; Hangar grants no tokens, so nothing enforces it.
    pub permissions: Option<Value>,
    pub concurrency: Option<Concurrency>,
    pub jobs: Vec<Job>,
    /// Parsed but not supported here, at the workflow level (e.g. other events).
    pub unsupported: Vec<Diagnostic>,
}

/// The `on:` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Triggers {
    pub push: Option<RefFilters>,
    pub pull_request: Option<PullRequestTrigger>,
    pub workflow_dispatch: Option<Vec<Input>>,
    /// Cron strings as written (the schedule event names the one that fired).
    pub schedule: Vec<String>,
    /// Events Hangar does not deliver, with where they were named.
    pub other: Vec<(String, Pos)>,
}

/// Branch, tag and path filters; `None` means the key was absent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RefFilters {
    pub branches: Option<Filter>,
    pub branches_ignore: Option<Filter>,
    pub tags: Option<Filter>,
    pub tags_ignore: Option<Filter>,
    pub paths: Option<Filter>,
    pub paths_ignore: Option<Filter>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PullRequestTrigger {
    /// Activity types; GitHub's default is opened, synchronize, reopened.
    pub types: Vec<String>,
    /// Branch filters apply to the base branch.
    pub filters: RefFilters,
}

/// A `workflow_dispatch` input.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub name: String,
    pub description: Option<String>,
    pub required: bool,
    pub default: Option<String>,
    pub kind: InputKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum InputKind {
    String,
    Boolean,
    Number,
    Environment,
    Choice(Vec<String>),
}

/// `defaults.run`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunDefaults {
    pub shell: Option<String>,
    pub working_directory: Option<String>,
}

/// `concurrency:`, as templates rendered when planning.
#[derive(Debug, Clone, PartialEq)]
pub struct Concurrency {
    pub group: String,
    pub cancel_in_progress: Option<String>,
}

/// One job as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: String,
    pub pos: Pos,
    pub name: Option<String>,
    /// Label templates (`${{ matrix.os }}` allowed); a list means all of them.
    pub runs_on: Vec<String>,
    pub runs_on_group: Option<String>,
    pub needs: Vec<String>,
    pub condition: Option<String>,
    /// The matrix as written; strings may hold `${{ }}`.
    pub matrix: Option<Value>,
    pub fail_fast: Option<String>,
    pub max_parallel: Option<String>,
    pub container: Option<Container>,
    /// Service container names (parsed; not run yet).
    pub services: Vec<(String, Pos)>,
    pub timeout_minutes: Option<String>,
    pub continue_on_error: Option<String>,
    pub env: Vars,
    pub outputs: Vars,
    pub defaults: RunDefaults,
    pub environment: Option<String>,
    pub concurrency: Option<Concurrency>,
    pub permissions: Option<Value>,
    /// A reusable workflow call (`jobs.<id>.uses`).
    pub uses: Option<String>,
    pub steps: Vec<Step>,
    /// Why this job cannot run here, filled by the linter.
    pub unsupported: Vec<Diagnostic>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Container {
    pub image: String,
    pub env: Vars,
    pub options: Option<String>,
    pub volumes: Vec<String>,
    pub ports: Vec<String>,
    pub credentials: Option<Vars>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub pos: Pos,
    pub id: Option<String>,
    pub name: Option<String>,
    pub action: StepAction,
    pub shell: Option<String>,
    pub working_directory: Option<String>,
    pub env: Vars,
    pub condition: Option<String>,
    pub continue_on_error: Option<String>,
    pub timeout_minutes: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum StepAction {
    Run(String),
    Uses { action: String, with: Vars },
}

const WORKFLOW_KEYS: &[&str] = &[
    "name",
    "run-name",
    "on",
    "env",
    "defaults",
    "permissions",
    "concurrency",
    "jobs",
];
const JOB_KEYS: &[&str] = &[
    "name",
    "runs-on",
    "needs",
    "if",
    "strategy",
    "container",
    "services",
    "timeout-minutes",
    "continue-on-error",
    "env",
    "outputs",
    "defaults",
    "environment",
    "concurrency",
    "permissions",
    "steps",
    "uses",
    "with",
    "secrets",
];
const STEP_KEYS: &[&str] = &[
    "id",
    "name",
    "run",
    "uses",
    "with",
    "shell",
    "working-directory",
    "env",
    "if",
    "continue-on-error",
    "timeout-minutes",
];
const FILTER_KEYS: &[&str] = &[
    "branches",
    "branches-ignore",
    "tags",
    "tags-ignore",
    "paths",
    "paths-ignore",
];

/// Parses one workflow file; `Err` lists every problem found.
pub fn parse(file: &str, text: &str) -> Result<Workflow, WorkflowError> {
    let mut r = Reader {
        file,
        errors: Vec::new(),
    };
    let workflow = match yaml::parse(text) {
        Ok(root) => Some(r.workflow(&root)),
        Err(e) => {
            r.error(e.pos, e.message);
            None
        }
    };
    match workflow {
        Some(w) if r.errors.is_empty() => Ok(w),
        _ => Err(WorkflowError {
            file: file.to_owned(),
            diagnostics: r.errors,
        }),
    }
}

struct Reader<'f> {
    file: &'f str,
    errors: Vec<Diagnostic>,
}

fn get<'n>(entries: &'n [(Key, Node)], key: &str) -> Option<&'n Node> {
    entries.iter().find(|(k, _)| k.text == key).map(|(_, v)| v)
}

impl Reader<'_> {
    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.errors.push(Diagnostic::new(self.file, pos, message));
    }

    fn map<'n>(&mut self, node: &'n Node, what: &str) -> &'n [(Key, Node)] {
        match &node.value {
            Yaml::Map(entries) => entries,
            Yaml::Null => &[],
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be a mapping, not {}", node.kind()),
                );
                &[]
            }
        }
    }

    /// A mapping whose keys must all be in `allowed`.
    fn section<'n>(&mut self, node: &'n Node, what: &str, allowed: &[&str]) -> &'n [(Key, Node)] {
        let entries = self.map(node, what);
        for (key, _) in entries {
            if !allowed.contains(&key.text.as_str()) {
                self.error(
                    key.pos,
                    format!(
                        "unknown key `{}` in {what}; expected one of: {}",
                        key.text,
                        allowed.join(", ")
                    ),
                );
            }
        }
        entries
    }

    fn scalar(&mut self, node: &Node, what: &str) -> Option<String> {
        let text = node.scalar_text();
        if text.is_none() {
            self.error(
                node.pos,
                format!("{what} must be a string, not {}", node.kind()),
            );
        }
        text
    }

    /// A string that may hold `${{ }}`, checked for syntax.
    fn template(&mut self, node: &Node, what: &str) -> Option<String> {
        let text = self.scalar(node, what)?;
        if let Err(e) = expr::parse_template(&text) {
            self.expr_error(node, what, &e);
        }
        Some(text)
    }

    fn expr_error(&mut self, node: &Node, what: &str, e: &expr::ExprError) {
        // Columns are exact for single-line plain scalars; otherwise the
        // offset still says where inside the expression.
        let pos = match node.value {
            Yaml::Str(ref s) if !s.contains('\n') => Pos {
                line: node.pos.line,
                col: node.pos.col + e.offset,
            },
            _ => node.pos,
        };
        self.error(pos, format!("{what}: {e}"));
    }

    fn condition(&mut self, node: &Node, what: &str) -> Option<String> {
        let text = self.scalar(node, what)?;
        if let Err(e) = expr::parse_condition(&text) {
            self.expr_error(node, what, &e);
        }
        Some(text)
    }

    /// A boolean, or a template that evaluates to one when planning.
    fn flag(&mut self, node: &Node, what: &str) -> Option<String> {
        match node.value {
            Yaml::Bool(b) => Some(b.to_string()),
            Yaml::Str(_) => self
                .template(node, what)
                .filter(|t| self.dynamic(node, t, what, "true or false")),
            _ => {
                self.error(
                    node.pos,
                    format!(
                        "{what} must be true, false or an expression, not {}",
                        node.kind()
                    ),
                );
                None
            }
        }
    }

    /// A whole number, or a template that evaluates to one when planning.
    fn number(&mut self, node: &Node, what: &str) -> Option<String> {
        match node.value {
            Yaml::Int(n) if n >= 0 => Some(n.to_string()),
            Yaml::Str(_) => self
                .template(node, what)
                .filter(|t| self.dynamic(node, t, what, "a number")),
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be a positive whole number or an expression"),
                );
                None
            }
        }
    }

    fn dynamic(&mut self, node: &Node, text: &str, what: &str, expected: &str) -> bool {
        let ok = text.contains("${{");
        if !ok {
            self.error(
                node.pos,
                format!("{what} must be {expected} or a `${{{{ }}}}` expression, not `{text}`"),
            );
        }
        ok
    }

    /// A string or a list of strings.
    fn strings(&mut self, node: &Node, what: &str) -> Vec<String> {
        match &node.value {
            Yaml::Seq(items) => items
                .iter()
                .filter_map(|i| self.template(i, what))
                .collect(),
            _ => self.template(node, what).into_iter().collect(),
        }
    }

    fn vars(&mut self, node: &Node, what: &str) -> Vars {
        if let Yaml::Str(_) = node.value {
            // `env: ${{ fromJSON(...) }}` needs a whole-object render we do not do.
            self.error(
                node.pos,
                format!("{what} must be a mapping of names to values"),
            );
            return Vars::new();
        }
        let entries = self.map(node, what);
        entries
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    k.text.clone(),
                    self.template(v, &format!("{what}.{}", k.text))?,
                ))
            })
            .collect()
    }

    fn filter(&mut self, node: &Node, what: &str) -> Option<Filter> {
        let patterns = self.strings(node, what);
        Filter::new(&patterns)
            .map_err(|e| self.error(node.pos, format!("{what}: {e}")))
            .ok()
    }

    fn workflow(&mut self, root: &Node) -> Workflow {
        let top = self.section(root, "the workflow", WORKFLOW_KEYS);
        let mut on = Triggers::default();
        match get(top, "on") {
            Some(node) => on = self.triggers(node),
            None => self.error(
                root.pos,
                "the workflow has no `on:`; add the events that start it, e.g. `on: push`",
            ),
        }
        let jobs = match get(top, "jobs") {
            Some(node) => self.jobs(node),
            None => {
                self.error(root.pos, "the workflow has no `jobs:`");
                Vec::new()
            }
        };
        Workflow {
            file: self.file.to_owned(),
            name: get(top, "name").and_then(|n| self.scalar(n, "name")),
            run_name: get(top, "run-name").and_then(|n| self.template(n, "run-name")),
            on,
            env: get(top, "env")
                .map(|n| self.vars(n, "env"))
                .unwrap_or_default(),
            defaults: get(top, "defaults")
                .map(|n| self.defaults(n))
                .unwrap_or_default(),
            permissions: get(top, "permissions").map(|n| self.permissions(n)),
            concurrency: get(top, "concurrency").and_then(|n| self.concurrency(n)),
            jobs,
            unsupported: Vec::new(),
        }
    }

    fn triggers(&mut self, node: &Node) -> Triggers {
        let mut on = Triggers::default();
        let events: Vec<(String, Pos, Option<&Node>)> = match &node.value {
            Yaml::Str(s) => vec![(s.clone(), node.pos, None)],
            Yaml::Seq(items) => items
                .iter()
                .filter_map(|i| Some((self.scalar(i, "an event in `on`")?, i.pos, None)))
                .collect(),
            Yaml::Map(entries) => entries
                .iter()
                .map(|(k, v)| (k.text.clone(), k.pos, Some(v)))
                .collect(),
            _ => {
                self.error(
                    node.pos,
                    "`on` must be an event name, a list of them or a mapping",
                );
                return on;
            }
        };
        let empty = Node {
            pos: node.pos,
            value: Yaml::Null,
        };
        for (event, pos, config) in events {
            let config = config.unwrap_or(&empty);
            match event.as_str() {
                "push" => {
                    let entries = self.section(config, "on.push", FILTER_KEYS);
                    on.push = Some(self.ref_filters(entries, config.pos, "on.push"));
                }
                "pull_request" => {
                    let entries = self.section(
                        config,
                        "on.pull_request",
                        &[
                            "types",
                            "branches",
                            "branches-ignore",
                            "paths",
                            "paths-ignore",
                        ],
                    );
                    let types = get(entries, "types").map_or_else(
                        || vec!["opened".into(), "synchronize".into(), "reopened".into()],
                        |t| self.strings(t, "on.pull_request.types"),
                    );
                    on.pull_request = Some(PullRequestTrigger {
                        types,
                        filters: self.ref_filters(entries, config.pos, "on.pull_request"),
                    });
                }
                "workflow_dispatch" => {
                    let entries = self.section(config, "on.workflow_dispatch", &["inputs"]);
                    let inputs = get(entries, "inputs")
                        .map(|i| self.inputs(i))
                        .unwrap_or_default();
                    on.workflow_dispatch = Some(inputs);
                }
                "schedule" => on.schedule = self.schedule(config),
                other
                    if !other.is_empty()
                        && other.chars().all(|c| c.is_ascii_lowercase() || c == '_') =>
                {
                    on.other.push((event, pos));
                }
                _ => self.error(pos, format!("`{event}` is not an event name")),
            }
        }
        on
    }

    fn ref_filters(&mut self, entries: &[(Key, Node)], pos: Pos, what: &str) -> RefFilters {
        let mut f =
            |key: &str| get(entries, key).and_then(|n| self.filter(n, &format!("{what}.{key}")));
        let filters = RefFilters {
            branches: f("branches"),
            branches_ignore: f("branches-ignore"),
            tags: f("tags"),
            tags_ignore: f("tags-ignore"),
            paths: f("paths"),
            paths_ignore: f("paths-ignore"),
        };
        for kind in ["branches", "tags", "paths"] {
            if get(entries, kind).is_some() && get(entries, &format!("{kind}-ignore")).is_some() {
                self.error(pos, format!("{what} has both `{kind}` and `{kind}-ignore`; use `{kind}` with `!` patterns instead"));
            }
        }
        filters
    }

    fn inputs(&mut self, node: &Node) -> Vec<Input> {
        let entries = self.map(node, "on.workflow_dispatch.inputs");
        let mut inputs = Vec::new();
        for (key, spec) in entries {
            let what = format!("input `{}`", key.text);
            let fields = self.section(
                spec,
                &what,
                &["description", "required", "default", "type", "options"],
            );
            let options = get(fields, "options")
                .map(|o| self.strings(o, &what))
                .unwrap_or_default();
            let kind = match get(fields, "type")
                .and_then(|t| self.scalar(t, &what))
                .as_deref()
            {
                None | Some("string") => InputKind::String,
                Some("boolean") => InputKind::Boolean,
                Some("number") => InputKind::Number,
                Some("environment") => InputKind::Environment,
                Some("choice") if !options.is_empty() => InputKind::Choice(options),
                Some("choice") => {
                    self.error(
                        spec.pos,
                        format!("{what} is a choice but lists no `options`"),
                    );
                    InputKind::String
                }
                Some(other) => {
                    self.error(spec.pos, format!("{what} has type `{other}`; expected string, boolean, number, choice or environment"));
                    InputKind::String
                }
            };
            let required = match get(fields, "required").map(|r| &r.value) {
                None => false,
                Some(Yaml::Bool(b)) => *b,
                Some(_) => {
                    self.error(
                        spec.pos,
                        format!("{what}: `required` must be true or false"),
                    );
                    false
                }
            };
            inputs.push(Input {
                name: key.text.clone(),
                description: get(fields, "description").and_then(|d| self.scalar(d, &what)),
                required,
                default: get(fields, "default").and_then(|d| self.scalar(d, &what)),
                kind,
            });
        }
        inputs
    }

    fn schedule(&mut self, node: &Node) -> Vec<String> {
        let Yaml::Seq(items) = &node.value else {
            self.error(
                node.pos,
                "on.schedule must be a list of `- cron: '...'` entries",
            );
            return Vec::new();
        };
        let mut crons = Vec::new();
        for item in items {
            let entries = self.section(item, "a schedule entry", &["cron"]);
            let Some(cron) = get(entries, "cron") else {
                self.error(
                    item.pos,
                    "a schedule entry needs `cron: '<minute> <hour> <day> <month> <weekday>'`",
                );
                continue;
            };
            if let Some(text) = self.scalar(cron, "cron") {
                match Cron::parse(&text) {
                    Ok(_) => crons.push(text),
                    Err(e) => self.error(cron.pos, e),
                }
            }
        }
        crons
    }

    fn defaults(&mut self, node: &Node) -> RunDefaults {
        let entries = self.section(node, "defaults", &["run"]);
        let Some(run) = get(entries, "run") else {
            return RunDefaults::default();
        };
        let run = self.section(run, "defaults.run", &["shell", "working-directory"]);
        RunDefaults {
            shell: get(run, "shell").and_then(|s| self.scalar(s, "defaults.run.shell")),
            working_directory: get(run, "working-directory")
                .and_then(|w| self.template(w, "defaults.run.working-directory")),
        }
    }

    fn permissions(&mut self, node: &Node) -> Value {
        match &node.value {
            Yaml::Str(s) => Value::String(s.clone()),
            _ => Value::Object(
                self.map(node, "permissions")
                    .iter()
                    .filter_map(|(k, v)| {
                        Some((
                            k.text.clone(),
                            Value::String(self.scalar(v, "a permission")?),
                        ))
                    })
                    .collect(),
            ),
        }
    }

    fn concurrency(&mut self, node: &Node) -> Option<Concurrency> {
        if let Yaml::Map(_) = node.value {
            let entries = self.section(node, "concurrency", &["group", "cancel-in-progress"]);
            let Some(group) = get(entries, "group") else {
                self.error(node.pos, "concurrency needs a `group`");
                return None;
            };
            Some(Concurrency {
                group: self.template(group, "concurrency.group")?,
                cancel_in_progress: get(entries, "cancel-in-progress")
                    .and_then(|c| self.flag(c, "concurrency.cancel-in-progress")),
            })
        } else {
            Some(Concurrency {
                group: self.template(node, "concurrency")?,
                cancel_in_progress: None,
            })
        }
    }

    fn jobs(&mut self, node: &Node) -> Vec<Job> {
        let entries = self.map(node, "jobs");
        if entries.is_empty() {
            self.error(
                node.pos,
                "`jobs` is empty; a workflow needs at least one job",
            );
        }
        let jobs: Vec<Job> = entries
            .iter()
            .map(|(key, job)| self.job(key, job))
            .collect();
        self.check_needs(&jobs);
        jobs
    }

    fn job(&mut self, key: &Key, node: &Node) -> Job {
        let id = &key.text;
        let valid_id = id.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_id {
            self.error(key.pos, format!("job id `{id}` must start with a letter or `_` and hold only letters, digits, `-` and `_`"));
        }
        let what = format!("job `{id}`");
        let f = self.section(node, &what, JOB_KEYS);
        let uses = get(f, "uses").and_then(|u| self.scalar(u, "uses"));
        let (runs_on, runs_on_group) = match get(f, "runs-on") {
            Some(r) => self.runs_on(r),
            None if uses.is_none() => {
                self.error(
                    node.pos,
                    format!("{what} has no `runs-on`; add e.g. `runs-on: macos-latest`"),
                );
                (Vec::new(), None)
            }
            None => (Vec::new(), None),
        };
        let steps = match get(f, "steps") {
            Some(Node {
                value: Yaml::Seq(items),
                ..
            }) => items.iter().filter_map(|s| self.step(s)).collect(),
            Some(other) => {
                self.error(other.pos, format!("{what}: steps must be a list"));
                Vec::new()
            }
            None if uses.is_none() => {
                self.error(node.pos, format!("{what} has no `steps`"));
                Vec::new()
            }
            None => Vec::new(),
        };
        let strategy = get(f, "strategy")
            .map(|s| self.section(s, "strategy", &["matrix", "fail-fast", "max-parallel"]))
            .unwrap_or_default();
        let matrix = get(strategy, "matrix").map(|m| self.matrix(m));
        Job {
            id: id.clone(),
            pos: key.pos,
            name: get(f, "name").and_then(|n| self.template(n, "name")),
            runs_on,
            runs_on_group,
            needs: get(f, "needs")
                .map(|n| self.strings(n, "needs"))
                .unwrap_or_default(),
            condition: get(f, "if").and_then(|c| self.condition(c, "if")),
            matrix,
            fail_fast: get(strategy, "fail-fast").and_then(|n| self.flag(n, "fail-fast")),
            max_parallel: get(strategy, "max-parallel")
                .and_then(|n| self.number(n, "max-parallel")),
            container: get(f, "container").and_then(|c| self.container(c)),
            services: get(f, "services")
                .map(|s| {
                    self.map(s, "services")
                        .iter()
                        .map(|(k, _)| (k.text.clone(), k.pos))
                        .collect()
                })
                .unwrap_or_default(),
            timeout_minutes: get(f, "timeout-minutes")
                .and_then(|n| self.number(n, "timeout-minutes")),
            continue_on_error: get(f, "continue-on-error")
                .and_then(|n| self.flag(n, "continue-on-error")),
            env: get(f, "env")
                .map(|n| self.vars(n, "env"))
                .unwrap_or_default(),
            outputs: get(f, "outputs")
                .map(|n| self.vars(n, "outputs"))
                .unwrap_or_default(),
            defaults: get(f, "defaults")
                .map(|n| self.defaults(n))
                .unwrap_or_default(),
            environment: get(f, "environment").and_then(|e| match &e.value {
                Yaml::Map(m) => get(m, "name").and_then(|n| self.template(n, "environment.name")),
                _ => self.template(e, "environment"),
            }),
            concurrency: get(f, "concurrency").and_then(|n| self.concurrency(n)),
            permissions: get(f, "permissions").map(|n| self.permissions(n)),
            uses,
            steps,
            unsupported: Vec::new(),
        }
    }

    fn runs_on(&mut self, node: &Node) -> (Vec<String>, Option<String>) {
        if let Yaml::Map(_) = node.value {
            let entries = self.section(node, "runs-on", &["group", "labels"]);
            let labels = get(entries, "labels")
                .map(|l| self.strings(l, "runs-on.labels"))
                .unwrap_or_default();
            let group = get(entries, "group").and_then(|g| self.scalar(g, "runs-on.group"));
            (labels, group)
        } else {
            let labels = self.strings(node, "runs-on");
            if labels.is_empty() {
                self.error(node.pos, "runs-on names no label");
            }
            (labels, None)
        }
    }

    fn matrix(&mut self, node: &Node) -> Value {
        let value = to_value(node);
        if let Value::Object(ref axes) = value {
            for (key, axis) in axes {
                let list_like = matches!(axis, Value::Array(_))
                    || matches!(axis, Value::String(s) if s.contains("${{"));
                if !list_like {
                    self.error(
                        node.pos,
                        format!(
                            "matrix `{key}` must be a list of values (or an expression giving one)"
                        ),
                    );
                }
            }
        } else if !matches!(value, Value::String(ref s) if s.contains("${{")) {
            self.error(
                node.pos,
                "strategy.matrix must be a mapping of names to lists",
            );
        }
        if let Err(e) = check_templates(&value) {
            self.error(node.pos, format!("strategy.matrix: {e}"));
        } else if !has_template(&value) {
            // A static matrix is expanded now, so a too-large one fails at check time.
            if let Err(e) = matrix::expand(&value) {
                self.error(node.pos, e);
            }
        }
        value
    }

    fn container(&mut self, node: &Node) -> Option<Container> {
        if let Yaml::Str(_) = node.value {
            return Some(Container {
                image: self.template(node, "container")?,
                env: Vars::new(),
                options: None,
                volumes: Vec::new(),
                ports: Vec::new(),
                credentials: None,
            });
        }
        let f = self.section(
            node,
            "container",
            &["image", "env", "options", "volumes", "ports", "credentials"],
        );
        let Some(image) = get(f, "image") else {
            self.error(node.pos, "container needs an `image`");
            return None;
        };
        Some(Container {
            image: self.template(image, "container.image")?,
            env: get(f, "env")
                .map(|n| self.vars(n, "container.env"))
                .unwrap_or_default(),
            options: get(f, "options").and_then(|o| self.template(o, "container.options")),
            volumes: get(f, "volumes")
                .map(|v| self.strings(v, "container.volumes"))
                .unwrap_or_default(),
            ports: get(f, "ports")
                .map(|v| self.strings(v, "container.ports"))
                .unwrap_or_default(),
            credentials: get(f, "credentials").map(|c| self.vars(c, "container.credentials")),
        })
    }

    fn step(&mut self, node: &Node) -> Option<Step> {
        let f = self.section(node, "a step", STEP_KEYS);
        let action = match (get(f, "run"), get(f, "uses")) {
            (Some(run), None) => StepAction::Run(self.template(run, "run")?),
            (None, Some(uses)) => StepAction::Uses {
                action: self.scalar(uses, "uses")?,
                with: get(f, "with")
                    .map(|w| self.vars(w, "with"))
                    .unwrap_or_default(),
            },
            _ => {
                self.error(node.pos, "a step needs exactly one of `run` or `uses`");
                return None;
            }
        };
        if matches!(action, StepAction::Run(_)) && get(f, "with").is_some() {
            self.error(
                node.pos,
                "`with` belongs to `uses` steps; pass values to `run` through `env`",
            );
        }
        Some(Step {
            pos: node.pos,
            id: get(f, "id").and_then(|i| self.scalar(i, "id")),
            name: get(f, "name").and_then(|n| self.template(n, "name")),
            action,
            shell: get(f, "shell").and_then(|s| self.scalar(s, "shell")),
            working_directory: get(f, "working-directory")
                .and_then(|w| self.template(w, "working-directory")),
            env: get(f, "env")
                .map(|n| self.vars(n, "env"))
                .unwrap_or_default(),
            condition: get(f, "if").and_then(|c| self.condition(c, "if")),
            continue_on_error: get(f, "continue-on-error")
                .and_then(|n| self.flag(n, "continue-on-error")),
            timeout_minutes: get(f, "timeout-minutes")
                .and_then(|n| self.number(n, "timeout-minutes")),
        })
    }

    /// Unknown `needs` and cycles, reported at the job that names them.
    fn check_needs(&mut self, jobs: &[Job]) {
        for job in jobs {
            for need in &job.needs {
                if !jobs.iter().any(|j| &j.id == need) {
                    self.error(
                        job.pos,
                        format!(
                            "job `{}` needs `{need}`, which is not a job in this workflow",
                            job.id
                        ),
                    );
                }
            }
        }
        if let Err(cycle) = super::plan::order(jobs) {
            let first = jobs
                .iter()
                .find(|j| j.id == cycle[0])
                .map_or(Pos::default(), |j| j.pos);
            self.error(
                first,
                format!(
                    "jobs depend on each other in a cycle: {}",
                    cycle.join(" → ")
                ),
            );
        }
    }
}

/// The YAML as an expression value (scalars typed as YAML typed them).
pub fn to_value(node: &Node) -> Value {
    match &node.value {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Int(i) => Value::Number(*i as f64),
        Yaml::Float(f) => Value::Number(*f),
        Yaml::Str(s) => Value::String(s.clone()),
        Yaml::Seq(items) => Value::Array(items.iter().map(to_value).collect()),
        Yaml::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.text.clone(), to_value(v)))
                .collect(),
        ),
    }
}

/// Every string inside a value.
pub(crate) fn strings_in(value: &Value) -> Box<dyn Iterator<Item = &String> + '_> {
    match value {
        Value::String(s) => Box::new(std::iter::once(s)),
        Value::Array(items) => Box::new(items.iter().flat_map(strings_in)),
        Value::Object(map) => Box::new(map.values().flat_map(strings_in)),
        _ => Box::new(std::iter::empty()),
    }
}

fn has_template(value: &Value) -> bool {
    strings_in(value).any(|s| s.contains("${{"))
}

fn check_templates(value: &Value) -> Result<(), expr::ExprError> {
    strings_in(value).try_for_each(|s| expr::parse_template(s).map(drop))
}
