//! From a parsed workflow and an event to the jobs the runner executes.
//!
//! Renders what must be known before a job starts (names, `runs-on`,
//! container, matrix, timeouts, concurrency) and leaves run-time templates
//! (`run`, `env`, `with`, step `if`) for the runner, which has `steps`,
//! `needs` and `secrets`.

use super::Diagnostic;
use super::expr::{self, Context, Value};
use super::matrix::{self, Combination};
use super::syntax::{Container, InputKind, Job, StepAction, Vars, Workflow};
use super::trigger::{self, Event};
use std::collections::BTreeMap;

/// GitHub's default job timeout.
pub const DEFAULT_TIMEOUT_MINUTES: u32 = 360;

/// What this host offers jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    /// Labels that run on the Mac itself (compared ignoring case).
    pub labels: Vec<String>,
    /// Labels that run in a Docker container, with the image to use.
    pub docker: BTreeMap<String, String>,
}

impl Default for Host {
    /// A Mac host; Linux labels map to Docker's official Ubuntu images.
    fn default() -> Self {
        let labels = [
            "self-hosted",
            "hangar",
            "macos",
            "macos-latest",
            "macos-15",
            "macos-14",
            "arm64",
        ];
        let docker = [
            ("ubuntu-latest", "ubuntu:24.04"),
            ("ubuntu-24.04", "ubuntu:24.04"),
            ("ubuntu-22.04", "ubuntu:22.04"),
            ("linux", "ubuntu:24.04"),
        ];
        Host {
            labels: labels.map(String::from).to_vec(),
            docker: docker
                .iter()
                .map(|(l, i)| (l.to_string(), i.to_string()))
                .collect(),
        }
    }
}

/// Facts about the repository and host that planning needs besides the event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlanContext {
    /// `owner/name`.
    pub repository: String,
    pub actor: String,
    /// The `vars` context.
    pub vars: BTreeMap<String, String>,
    pub host: Host,
}

/// Where a job runs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Executor {
    Host,
    Docker { image: String },
}

/// The jobs of one workflow for one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub file: String,
    /// The workflow's `name`, or its file.
    pub name: String,
    /// `run-name` rendered, or the workflow name.
    pub run_name: String,
    pub concurrency: Option<ConcurrencySpec>,
    /// The `github` and `inputs` contexts the runner should extend and reuse.
    pub github: Value,
    pub inputs: Value,
    /// Jobs in an order where each comes after what it needs.
    pub jobs: Vec<JobSpec>,
    /// Jobs that cannot run here, with why.
    pub blocked: Vec<BlockedJob>,
    /// Workflow-level features parsed but not supported.
    pub notes: Vec<Diagnostic>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConcurrencySpec {
    pub group: String,
    pub cancel_in_progress: bool,
}

/// One runnable job (one matrix combination).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobSpec {
    /// The job id in the file; matrix jobs share it.
    pub id: String,
    /// Display name, e.g. `build (macos-latest, 20)`.
    pub name: String,
    pub needs: Vec<String>,
    pub matrix: Combination,
    /// The `strategy` context: fail-fast, job-index, job-total, max-parallel.
    pub strategy: Value,
    /// Job `if`, evaluated by the runner once `needs` have finished.
    pub condition: Option<String>,
    pub runs_on: Vec<String>,
    pub executor: Executor,
    pub container: Option<Container>,
    /// Workflow `env` overlaid with job `env`; templates.
    pub env: Vars,
    pub outputs: Vars,
    pub timeout_minutes: u32,
    pub continue_on_error: bool,
    pub concurrency: Option<ConcurrencySpec>,
    pub environment: Option<String>,
    pub steps: Vec<StepSpec>,
}

/// One step, with defaults applied; fields are templates for the runner.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepSpec {
    pub id: Option<String>,
    pub name: String,
    pub action: StepAction,
    pub shell: Option<String>,
    pub working_directory: Option<String>,
    pub env: Vars,
    pub condition: Option<String>,
    /// Render, then truthy means carry on after a failure.
    pub continue_on_error: Option<String>,
    /// Render, then a number of minutes.
    pub timeout_minutes: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BlockedJob {
    pub id: String,
    pub name: String,
    pub reasons: Vec<String>,
}

/// An event that selects the workflow but cannot start it (bad inputs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct PlanError {
    pub file: String,
    pub message: String,
}

/// Plans `workflow` for `event`; `None` when its `on:` does not select the event.
pub fn plan(
    workflow: &Workflow,
    event: &Event,
    pc: &PlanContext,
) -> Result<Option<Plan>, PlanError> {
    if !trigger::matches(&workflow.on, event) {
        return Ok(None);
    }
    let fail = |message: String| PlanError {
        file: workflow.file.clone(),
        message,
    };
    let inputs = inputs(workflow, event).map_err(fail)?;
    let name = workflow
        .name
        .clone()
        .unwrap_or_else(|| workflow.file.clone());
    let github = github_context(event, pc, &name);
    let ctx = Context::default()
        .with("github", github.clone())
        .with("inputs", inputs.clone())
        .with("vars", string_map(&pc.vars));
    let run_name = match &workflow.run_name {
        Some(t) => expr::render_string(t, &ctx).map_err(|e| fail(format!("run-name: {e}")))?,
        None => name.clone(),
    };
    let concurrency = match &workflow.concurrency {
        Some(c) => Some(concurrency(c, &ctx).map_err(|e| fail(format!("concurrency: {e}")))?),
        None => None,
    };
    let order = order(&workflow.jobs)
        .map_err(|cycle| fail(format!("jobs form a cycle: {}", cycle.join(" → "))))?;
    let mut plan = Plan {
        file: workflow.file.clone(),
        name,
        run_name,
        concurrency,
        github,
        inputs,
        jobs: Vec::new(),
        blocked: Vec::new(),
        notes: workflow.unsupported.clone(),
    };
    for index in order {
        let job = &workflow.jobs[index];
        let blocked_need = job
            .needs
            .iter()
            .find(|n| plan.blocked.iter().any(|b| &&b.id == n));
        let reasons: Vec<String> = match blocked_need {
            _ if !job.unsupported.is_empty() => {
                job.unsupported.iter().map(|d| d.message.clone()).collect()
            }
            Some(need) => vec![format!("needs `{need}`, which cannot run here")],
            None => match expand_job(workflow, job, &ctx, &pc.host) {
                Ok(specs) => {
                    plan.jobs.extend(specs);
                    continue;
                }
                Err(why) => vec![why],
            },
        };
        plan.blocked.push(BlockedJob {
            id: job.id.clone(),
            name: job.name.clone().unwrap_or_else(|| job.id.clone()),
            reasons,
        });
    }
    Ok(Some(plan))
}

/// Job indices with every job after the jobs it needs, in file order where
/// free; `Err` holds the ids along a cycle. Unknown needs are ignored here.
pub(crate) fn order(jobs: &[Job]) -> Result<Vec<usize>, Vec<String>> {
    let index_of = |id: &str| jobs.iter().position(|j| j.id == id);
    let mut done = vec![false; jobs.len()];
    let mut order = Vec::with_capacity(jobs.len());
    while order.len() < jobs.len() {
        let ready = (0..jobs.len()).find(|&i| {
            !done[i]
                && jobs[i]
                    .needs
                    .iter()
                    .all(|n| index_of(n).is_none_or(|d| done[d]))
        });
        let Some(i) = ready else {
            // Every job left waits on another job left: walk until one repeats.
            let mut path: Vec<usize> = Vec::new();
            let mut at = (0..jobs.len())
                .find(|&i| !done[i])
                .expect("some job is left");
            while !path.contains(&at) {
                path.push(at);
                at = jobs[at]
                    .needs
                    .iter()
                    .filter_map(|n| index_of(n))
                    .find(|&d| !done[d])
                    .expect("a waiting job waits on a job left");
            }
            let start = path
                .iter()
                .position(|&p| p == at)
                .expect("repeat is on the path");
            let mut cycle: Vec<String> =
                path[start..].iter().map(|&i| jobs[i].id.clone()).collect();
            cycle.push(jobs[at].id.clone());
            return Err(cycle);
        };
        done[i] = true;
        order.push(i);
    }
    Ok(order)
}

fn expand_job(
    workflow: &Workflow,
    job: &Job,
    ctx: &Context,
    host: &Host,
) -> Result<Vec<JobSpec>, String> {
    let combos = match &job.matrix {
        None => vec![Combination::new()],
        Some(m) => {
            let mut used = Vec::new();
            for text in super::syntax::strings_in(m) {
                if let Ok(segments) = expr::parse_template(text) {
                    for segment in segments {
                        if let expr::Segment::Expr(ast) = segment {
                            ast.contexts(&mut used);
                        }
                    }
                }
            }
            if used.iter().any(|c| c == "needs") {
                return Err("the matrix is computed from `needs` outputs; dynamic matrices are not supported yet".into());
            }
            matrix::expand(&render_value(m, ctx).map_err(|e| format!("strategy.matrix: {e}"))?)?
        }
    };
    let total = combos.len();
    combos
        .into_iter()
        .enumerate()
        .map(|(index, combo)| job_spec(workflow, job, ctx, host, combo, index, total))
        .collect()
}

fn job_spec(
    workflow: &Workflow,
    job: &Job,
    base: &Context,
    host: &Host,
    combo: Combination,
    index: usize,
    total: usize,
) -> Result<JobSpec, String> {
    let mut ctx = Context {
        contexts: base.contexts.clone(),
        ..Context::default()
    };
    let matrix = Value::Object(combo.clone());
    ctx.contexts.insert("matrix".into(), matrix);
    let flag =
        |t: &Option<String>, what: &str, ctx: &Context, default: bool| -> Result<bool, String> {
            t.as_ref().map_or(Ok(default), |t| {
                render_flag(t, ctx).map_err(|e| format!("{what}: {e}"))
            })
        };
    let number = |t: &Option<String>, what: &str, ctx: &Context| -> Result<Option<u32>, String> {
        let Some(t) = t else {
            return Ok(None);
        };
        let n = expr::render(t, ctx)
            .map_err(|e| format!("{what}: {e}"))?
            .to_number();
        if n.is_nan() || n < 0.0 || n > f64::from(u32::MAX) {
            return Err(format!("{what} must be a positive number, got `{t}`"));
        }
        Ok(Some(n as u32))
    };
    let fail_fast = flag(&job.fail_fast, "fail-fast", &ctx, true)?;
    let max_parallel = number(&job.max_parallel, "max-parallel", &ctx)?;
    let mut strategy = BTreeMap::from([
        ("fail-fast".to_owned(), Value::Bool(fail_fast)),
        ("job-index".to_owned(), Value::Number(index as f64)),
        ("job-total".to_owned(), Value::Number(total as f64)),
    ]);
    if let Some(m) = max_parallel {
        strategy.insert("max-parallel".to_owned(), Value::Number(f64::from(m)));
    }
    let strategy = Value::Object(strategy);
    ctx.contexts.insert("strategy".into(), strategy.clone());

    let render =
        |t: &str, what: &str| expr::render_string(t, &ctx).map_err(|e| format!("{what}: {e}"));
    let name = match &job.name {
        Some(n) => render(n, "name")?,
        None if combo.is_empty() => job.id.clone(),
        None => {
            let values: Vec<String> = combo.values().map(Value::to_string).collect();
            format!("{} ({})", job.id, values.join(", "))
        }
    };
    let mut runs_on = Vec::new();
    for label in &job.runs_on {
        match expr::render(label, &ctx).map_err(|e| format!("runs-on: {e}"))? {
            Value::Array(items) => runs_on.extend(items.iter().map(Value::to_string)),
            value => runs_on.push(value.to_string()),
        }
    }
    let container = match &job.container {
        Some(c) => Some(Container {
            image: render(&c.image, "container.image")?,
            env: c.env.clone(),
            options: c
                .options
                .as_deref()
                .map(|o| render(o, "container.options"))
                .transpose()?,
            volumes: c
                .volumes
                .iter()
                .map(|v| render(v, "container.volumes"))
                .collect::<Result<_, _>>()?,
            ports: c.ports.clone(),
            credentials: c.credentials.clone(),
        }),
        None => None,
    };
    let executor = executor(&runs_on, container.as_ref(), host)?;
    let mut env = workflow.env.clone();
    env.extend(job.env.clone());
    let defaults = |pick: fn(&super::syntax::RunDefaults) -> &Option<String>| {
        pick(&job.defaults)
            .clone()
            .or_else(|| pick(&workflow.defaults).clone())
    };
    let steps = job
        .steps
        .iter()
        .map(|s| StepSpec {
            id: s.id.clone(),
            name: s.name.clone().unwrap_or_else(|| match &s.action {
                StepAction::Run(script) => {
                    format!("Run {}", script.lines().next().unwrap_or_default())
                }
                StepAction::Uses { action, .. } => format!("Run {action}"),
            }),
            action: s.action.clone(),
            shell: s.shell.clone().or_else(|| defaults(|d| &d.shell)),
            working_directory: s
                .working_directory
                .clone()
                .or_else(|| defaults(|d| &d.working_directory)),
            env: s.env.clone(),
            condition: s.condition.clone(),
            continue_on_error: s.continue_on_error.clone(),
            timeout_minutes: s.timeout_minutes.clone(),
        })
        .collect();
    Ok(JobSpec {
        id: job.id.clone(),
        name,
        needs: job.needs.clone(),
        matrix: combo,
        strategy,
        condition: job.condition.clone(),
        runs_on,
        executor,
        container,
        env,
        outputs: job.outputs.clone(),
        timeout_minutes: number(&job.timeout_minutes, "timeout-minutes", &ctx)?
            .unwrap_or(DEFAULT_TIMEOUT_MINUTES),
        continue_on_error: flag(&job.continue_on_error, "continue-on-error", &ctx, false)?,
        concurrency: job
            .concurrency
            .as_ref()
            .map(|c| concurrency(c, &ctx))
            .transpose()
            .map_err(|e| format!("concurrency: {e}"))?,
        environment: job
            .environment
            .as_deref()
            .map(|e| render(e, "environment"))
            .transpose()?,
        steps,
    })
}

/// A container job runs in Docker; otherwise all labels must be the host's,
/// or one label must map to a Docker image (others being host labels).
fn executor(
    labels: &[String],
    container: Option<&Container>,
    host: &Host,
) -> Result<Executor, String> {
    if let Some(c) = container {
        return Ok(Executor::Docker {
            image: c.image.clone(),
        });
    }
    let on_host = |l: &String| host.labels.iter().any(|h| h.eq_ignore_ascii_case(l));
    if labels.iter().all(on_host) {
        return Ok(Executor::Host);
    }
    let image = |l: &String| {
        host.docker
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(l))
            .map(|(_, i)| i)
    };
    let mapped: Vec<&String> = labels.iter().filter_map(image).collect();
    if let [only] = mapped[..]
        && labels.iter().all(|l| on_host(l) || image(l).is_some())
    {
        return Ok(Executor::Docker {
            image: only.clone(),
        });
    }
    Err(format!(
        "runs-on [{}] matches nothing this host offers: host labels are {}; Docker labels are {}. Add a mapping in Hangar's settings or change runs-on",
        labels.join(", "),
        host.labels.join(", "),
        host.docker.keys().cloned().collect::<Vec<_>>().join(", ")
    ))
}

fn concurrency(
    c: &super::syntax::Concurrency,
    ctx: &Context,
) -> Result<ConcurrencySpec, expr::ExprError> {
    Ok(ConcurrencySpec {
        group: expr::render_string(&c.group, ctx)?,
        cancel_in_progress: match &c.cancel_in_progress {
            Some(t) => render_flag(t, ctx)?,
            None => false,
        },
    })
}

/// A boolean setting: the literal `false` is a non-empty string, so it is
/// compared as text rather than by truthiness.
fn render_flag(template: &str, ctx: &Context) -> Result<bool, expr::ExprError> {
    let value = expr::render(template, ctx)?;
    Ok(value.is_truthy()
        && !matches!(&value, Value::String(s) if s.trim().eq_ignore_ascii_case("false")))
}

/// `workflow_dispatch` inputs with defaults applied and types checked.
fn inputs(workflow: &Workflow, event: &Event) -> Result<Value, String> {
    let (Event::WorkflowDispatch { inputs: given, .. }, Some(declared)) =
        (event, &workflow.on.workflow_dispatch)
    else {
        return Ok(Value::Object(BTreeMap::new()));
    };
    if let Some(unknown) = given
        .keys()
        .find(|k| !declared.iter().any(|i| &i.name == *k))
    {
        return Err(format!(
            "input `{unknown}` is not declared under on.workflow_dispatch.inputs"
        ));
    }
    let mut values = BTreeMap::new();
    for input in declared {
        let Some(text) = given.get(&input.name).or(input.default.as_ref()) else {
            if input.required {
                return Err(format!("input `{}` is required", input.name));
            }
            values.insert(input.name.clone(), Value::String(String::new()));
            continue;
        };
        let value = match &input.kind {
            InputKind::Boolean => match text.as_str() {
                "true" => Value::Bool(true),
                "false" | "" => Value::Bool(false),
                _ => {
                    return Err(format!(
                        "input `{}` must be true or false, not `{text}`",
                        input.name
                    ));
                }
            },
            InputKind::Number => {
                let n = expr::to_number(text);
                if n.is_nan() {
                    return Err(format!(
                        "input `{}` must be a number, not `{text}`",
                        input.name
                    ));
                }
                Value::Number(n)
            }
            InputKind::Choice(options) if !options.contains(text) => {
                return Err(format!(
                    "input `{}` must be one of {}, not `{text}`",
                    input.name,
                    options.join(", ")
                ));
            }
            _ => Value::String(text.clone()),
        };
        values.insert(input.name.clone(), value);
    }
    Ok(Value::Object(values))
}

/// The `github` context for an event (the runner adds run ids and paths).
pub fn github_context(event: &Event, pc: &PlanContext, workflow: &str) -> Value {
    let (git_ref, sha, payload) = match event {
        Event::Push {
            git_ref,
            before,
            after,
            ..
        } => (
            git_ref.clone(),
            after.clone(),
            serde_json::json!({"ref": git_ref, "before": before, "after": after}),
        ),
        Event::PullRequest {
            action,
            number,
            base_ref,
            head_ref,
            head_sha,
            ..
        } => (
            format!("refs/pull/{number}/merge"),
            head_sha.clone(),
            serde_json::json!({"action": action, "number": number, "pull_request": {
                "number": number,
                "head": {"ref": head_ref, "sha": head_sha},
                "base": {"ref": base_ref},
            }}),
        ),
        Event::WorkflowDispatch {
            git_ref,
            sha,
            inputs,
        } => (
            git_ref.clone(),
            sha.clone(),
            serde_json::json!({"ref": git_ref, "inputs": inputs}),
        ),
        Event::Schedule { cron, git_ref, sha } => (
            git_ref.clone(),
            sha.clone(),
            serde_json::json!({"schedule": cron}),
        ),
    };
    let (ref_type, ref_name) = match git_ref.strip_prefix("refs/tags/") {
        Some(tag) => ("tag", tag.to_owned()),
        None => (
            "branch",
            git_ref
                .strip_prefix("refs/heads/")
                .unwrap_or(&git_ref)
                .to_owned(),
        ),
    };
    let (base_ref, head_ref) = match event {
        Event::PullRequest {
            base_ref, head_ref, ..
        } => (base_ref.clone(), head_ref.clone()),
        _ => (String::new(), String::new()),
    };
    let owner = pc.repository.split('/').next().unwrap_or_default();
    let mut github = BTreeMap::from([
        ("event_name".to_owned(), Value::from(event.name())),
        ("ref".to_owned(), Value::from(git_ref.as_str())),
        ("ref_name".to_owned(), Value::from(ref_name.as_str())),
        ("ref_type".to_owned(), Value::from(ref_type)),
        ("sha".to_owned(), Value::from(sha.as_str())),
        ("base_ref".to_owned(), Value::from(base_ref.as_str())),
        ("head_ref".to_owned(), Value::from(head_ref.as_str())),
        ("repository".to_owned(), Value::from(pc.repository.as_str())),
        ("repository_owner".to_owned(), Value::from(owner)),
        ("actor".to_owned(), Value::from(pc.actor.as_str())),
        ("workflow".to_owned(), Value::from(workflow)),
        ("server_url".to_owned(), Value::from("")),
    ]);
    github.insert("event".to_owned(), Value::from(&payload));
    Value::Object(github)
}

fn string_map(map: &BTreeMap<String, String>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect(),
    )
}

/// Renders every string in a value, keeping types of whole-expression strings.
fn render_value(value: &Value, ctx: &Context) -> Result<Value, expr::ExprError> {
    Ok(match value {
        Value::String(s) if s.contains("${{") => expr::render(s, ctx)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_value(v, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_value(v, ctx)?)))
                .collect::<Result<_, expr::ExprError>>()?,
        ),
        other => other.clone(),
    })
}
