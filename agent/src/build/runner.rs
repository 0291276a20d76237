//! The step loop both executors share: a job's workspace, GitHub's
//! environment, workflow commands, outputs between steps and jobs, timeouts
//! and cancel. Steps run as processes on this machine (the host executor, each
//! job in its own process group) or as `docker exec`s in the job's container
//! ([`super::docker`]); only starting and stopping a step differs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use hangar_core::store::builds::{self, Job, Status};
use hangar_core::workflow::expr::{self, Context, Value};
use hangar_core::workflow::{Executor, JobSpec, StepAction, StepSpec};
use tokio::io::AsyncReadExt as _;
use tokio::sync::mpsc;

use super::RunningJob;
use super::artifacts::{self, Dirs};
use super::docker::{self, Container};
use super::log::JobLog;
use super::output::{self, Command, Lines, Piece};
use super::{cache, checkout, xcode};
use crate::agent::Agent;

/// Bytes of a line without a newline kept before it goes to the log in parts.
const PENDING_LINE: usize = 64 * 1024;

/// How a job ended.
pub struct Outcome {
    pub status: Status,
    pub reason: Option<String>,
    pub outputs: serde_json::Value,
}

impl Outcome {
    fn failed(reason: String) -> Self {
        Self {
            status: Status::Failure,
            reason: Some(reason),
            outputs: serde_json::json!({}),
        }
    }
}

/// Where a job's steps run.
enum Place {
    Host,
    Container(Container),
}

/// A started step: its output lines, and the process to stop or wait for.
struct StepProcess {
    lines: mpsc::Receiver<Vec<u8>>,
    process: Process,
}

enum Process {
    Host {
        child: tokio::process::Child,
        pgid: Option<i32>,
    },
    Container {
        container: Container,
        exec: String,
    },
}

impl Process {
    /// Stops the step: its process group on the host; in a container, every
    /// process but the idle PID 1.
    async fn stop(&self) {
        match self {
            Process::Host { pgid, .. } => kill_group(*pgid),
            Process::Container { container, .. } => container.stop_processes().await,
        }
    }
}

/// Everything a job's steps share while it runs.
struct JobRun<'a> {
    agent: &'a Arc<Agent>,
    job: &'a Job,
    running: &'a RunningJob,
    spec: JobSpec,
    workspace: PathBuf,
    temp: PathBuf,
    contexts: BTreeMap<String, Value>,
    /// `GITHUB_ENV` additions, carried to later steps.
    env: BTreeMap<String, String>,
    /// `GITHUB_PATH` additions, first = highest priority.
    path: Vec<String>,
    steps: BTreeMap<String, Value>,
    status: expr::Status,
    sha: String,
    place: Place,
    /// Cache saves that run once every step has succeeded.
    post: Vec<cache::PendingSave>,
}

pub async fn run(agent: &Arc<Agent>, job: &Job, needed: &[Job], running: &RunningJob) -> Outcome {
    let id = job.id;
    let build_id = job.build_id;
    let loaded = agent
        .db(move |a| {
            a.store
                .read(|c| {
                    let spec = builds::job_spec(c, id)?;
                    let build = builds::get(c, build_id)?;
                    let context = builds::context(c, build_id)?;
                    Ok::<_, anyhow::Error>((spec, build, context))
                })
                .and_then(|(spec, build, context)| {
                    // Only the job's own repository's secrets (and global ones).
                    let secrets = match &build {
                        Some(b) => super::secrets::resolve(a.secrets.as_ref(), b.repo_id)?,
                        None => BTreeMap::new(),
                    };
                    Ok((spec, build, context, secrets))
                })
        })
        .await;
    let (spec, build, context, secrets) = match loaded {
        Ok((spec, Some(build), context, secrets)) => (spec, build, context, secrets),
        Ok(_) => return Outcome::failed("the build is gone".into()),
        Err(e) => return Outcome::failed(format!("cannot load the job: {e:#}")),
    };
    let spec: JobSpec = match serde_json::from_str(&spec) {
        Ok(spec) => spec,
        Err(e) => return Outcome::failed(format!("stored job spec is unreadable: {e}")),
    };
    let dir = agent
        .data
        .root()
        .join("work")
        .join(build_id.to_string())
        .join(id.to_string());
    let workspace = dir.join("workspace");
    let temp = dir.join("temp");
    for d in [&workspace, &temp] {
        if let Err(e) = std::fs::create_dir_all(d) {
            return Outcome::failed(format!("cannot create {}: {e}", d.display()));
        }
    }
    let needed: Vec<&Job> = needed.iter().collect();
    let mut contexts = BTreeMap::new();
    contexts.insert("github".to_owned(), Value::from(&context["github"]));
    contexts.insert("inputs".to_owned(), Value::from(&context["inputs"]));
    contexts.insert("matrix".to_owned(), Value::Object(spec.matrix.clone()));
    contexts.insert("strategy".to_owned(), spec.strategy.clone());
    contexts.insert("needs".to_owned(), super::scheduler::needs_context(&needed));
    for value in secrets.values() {
        running.log.add_mask(value);
    }
    let secrets = secrets
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    contexts.insert("secrets".to_owned(), Value::Object(secrets));
    contexts.insert("vars".to_owned(), Value::Object(BTreeMap::new()));
    contexts.insert(
        "runner".to_owned(),
        Value::from(&serde_json::json!({
            "os": runner_os(&spec.executor), "arch": runner_arch(), "name": "hangar",
            "temp": temp.display().to_string(), "workspace": workspace.display().to_string(),
        })),
    );
    let mut run = JobRun {
        agent,
        job,
        running,
        spec,
        workspace,
        temp,
        contexts,
        env: BTreeMap::new(),
        path: Vec::new(),
        steps: BTreeMap::new(),
        status: expr::Status::Success,
        sha: build.sha.clone(),
        place: Place::Host,
        post: Vec::new(),
    };
    if let Executor::Docker { image } = run.spec.executor.clone() {
        match run.start_container(&image, &dir).await {
            Ok(container) => run.place = Place::Container(container),
            Err(e) => {
                run.log(&format!("Error: {e}"));
                if !agent.settings.keep_workspaces {
                    let _ = tokio::fs::remove_dir_all(&dir).await;
                }
                if running.cancel.is_cancelled() {
                    return Outcome {
                        status: Status::Cancelled,
                        reason: Some("cancelled".to_owned()),
                        outputs: serde_json::json!({}),
                    };
                }
                return Outcome::failed(e);
            }
        }
    }
    let timeout = Duration::from_secs(u64::from(run.spec.timeout_minutes.max(1)) * 60);
    let ran = tokio::time::timeout(timeout, run.steps()).await;
    let outcome = match ran {
        Err(_) => {
            run.log(&format!(
                "Error: the job exceeded its timeout of {} minutes",
                run.spec.timeout_minutes
            ));
            run.running.cancel.cancel();
            Outcome::failed(format!(
                "timed out after {} minutes",
                run.spec.timeout_minutes
            ))
        }
        Ok(()) => run.outcome(),
    };
    // Removed on success, failure, cancel and timeout alike.
    if let Place::Container(container) = &run.place {
        container.remove().await;
    }
    if !agent.settings.keep_workspaces {
        let _ = tokio::fs::remove_dir_all(&dir).await;
    }
    outcome
}

fn runner_os(executor: &Executor) -> &'static str {
    if cfg!(target_os = "macos") && *executor == Executor::Host {
        "macOS"
    } else {
        "Linux"
    }
}

fn runner_arch() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "ARM64"
    } else {
        "X64"
    }
}

impl JobRun<'_> {
    fn log(&self, text: &str) -> u64 {
        self.running.log.line(text)
    }

    /// `text` with the job's secrets masked, for SQLite and the API.
    fn mask(&self, text: &str) -> String {
        self.running.log.masker().mask(text)
    }

    /// Starts the job's container: the job directory mounted at the same
    /// path, labelled with the build, the job and this agent's data dir.
    async fn start_container(&mut self, image: &str, dir: &Path) -> Result<Container, String> {
        let ctx = self.context();
        let render = |v: &String| expr::render_string(v, &ctx).unwrap_or_else(|_| v.clone());
        let credentials = self
            .spec
            .container
            .as_ref()
            .and_then(|c| c.credentials.as_ref())
            .map(|c| {
                let field = |name: &str| c.get(name).map(render).unwrap_or_default();
                (field("username"), field("password"))
            });
        if let Some((_, password)) = &credentials {
            self.running.log.add_mask(password);
        }
        let declared = self.spec.container.as_ref();
        let labels = [
            (docker::BUILD_LABEL, self.job.build_id.to_string()),
            (docker::JOB_LABEL, self.job.id.to_string()),
            (
                docker::DATA_LABEL,
                self.agent.data.root().display().to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let spec = docker::Spec {
            image,
            dir,
            workspace: &self.workspace,
            labels,
            env: declared
                .map(|c| c.env.iter().map(|(k, v)| (k.clone(), render(v))).collect())
                .unwrap_or_default(),
            options: declared.and_then(|c| c.options.as_deref()),
            volumes: declared.map(|c| &c.volumes[..]).unwrap_or_default(),
            ports: declared.map(|c| &c.ports[..]).unwrap_or_default(),
            credentials,
            cancel: &self.running.cancel,
        };
        Container::start(spec, &|line| {
            self.log(line);
        })
        .await
    }

    fn context(&self) -> Context<'static> {
        let mut contexts = self.contexts.clone();
        contexts.insert("steps".to_owned(), Value::Object(self.steps.clone()));
        contexts.insert(
            "env".to_owned(),
            Value::Object(
                self.env_map()
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            ),
        );
        contexts.insert(
            "job".to_owned(),
            Value::from(&serde_json::json!({ "status": status_name(self.status) })),
        );
        Context {
            contexts,
            status: self.status,
            hasher: None,
        }
    }

    /// Job env (workflow + job `env:`, rendered) plus `GITHUB_ENV` additions.
    fn env_map(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        let ctx = Context {
            contexts: self.contexts.clone(),
            status: self.status,
            hasher: None,
        };
        for (k, v) in &self.spec.env {
            env.insert(
                k.clone(),
                expr::render_string(v, &ctx).unwrap_or_else(|_| v.clone()),
            );
        }
        env.extend(self.env.clone());
        env
    }

    async fn steps(&mut self) {
        let steps = self.spec.steps.clone();
        for (index, step) in steps.iter().enumerate() {
            let number = index + 1;
            let ctx = self.context();
            let name = expr::render_string(&step.name, &ctx).unwrap_or_else(|_| step.name.clone());
            if self.running.cancel.is_cancelled() {
                self.status = expr::Status::Cancelled;
            }
            let condition = step.condition.as_deref().unwrap_or("success()");
            let run = match expr::evaluate_condition(condition, &ctx) {
                Ok(run) => run,
                Err(e) => {
                    self.log(&format!("Error: step `if:` cannot be evaluated: {e}"));
                    self.status = expr::Status::Failure;
                    false
                }
            };
            if !run {
                self.record_step(number, &name, Status::Skipped).await;
                self.set_step_result(step, "skipped", "skipped", BTreeMap::new());
                continue;
            }
            self.record_step(number, &name, Status::Running).await;
            self.log(&format!("##[step {number}] {name}"));
            let result = self.step(step, &ctx).await;
            let (outcome, outputs) = match result {
                Ok(outputs) => ("success", outputs),
                Err(message) => {
                    self.log(&format!("Error: {message}"));
                    ("failure", BTreeMap::new())
                }
            };
            let continue_on_error = step
                .continue_on_error
                .as_deref()
                .map(|t| {
                    expr::render(t, &ctx)
                        .map(|v| v.is_truthy())
                        .unwrap_or(false)
                })
                .unwrap_or(false);
            let conclusion = if outcome == "failure" && continue_on_error {
                "success"
            } else {
                outcome
            };
            if conclusion == "failure" && self.status == expr::Status::Success {
                self.status = expr::Status::Failure;
            }
            if self.running.cancel.is_cancelled() {
                self.status = expr::Status::Cancelled;
            }
            let stored = match (self.running.cancel.is_cancelled(), outcome) {
                (true, "failure") => Status::Cancelled,
                (_, "success") => Status::Success,
                _ => Status::Failure,
            };
            self.record_step(number, &name, stored).await;
            self.set_step_result(step, outcome, conclusion, outputs);
        }
        self.post_steps().await;
    }

    /// What `~` means in action paths: the host's home; nothing in a
    /// container job (its home is inside the container).
    fn home(&self) -> Option<PathBuf> {
        match self.place {
            Place::Host => std::env::var_os("HOME").map(PathBuf::from),
            Place::Container(_) => None,
        }
    }

    /// `actions/cache` saves, once every step has succeeded.
    async fn post_steps(&mut self) {
        if self.status != expr::Status::Success || self.running.cancel.is_cancelled() {
            return;
        }
        let home = self.home();
        let place = Dirs {
            workspace: &self.workspace,
            home: home.as_deref(),
        };
        for pending in std::mem::take(&mut self.post) {
            let message = match cache::post(self.agent, self.job, &place, &pending).await {
                Ok(message) => message,
                // A cache that cannot be saved costs time later, not this build.
                Err(e) => format!("Warning: cache not saved: {e}"),
            };
            self.log(&format!("Post cache: {message}"));
        }
    }

    fn set_step_result(
        &mut self,
        step: &StepSpec,
        outcome: &str,
        conclusion: &str,
        outputs: BTreeMap<String, String>,
    ) {
        if let Some(id) = &step.id {
            let value = serde_json::json!({ "outcome": outcome, "conclusion": conclusion, "outputs": outputs });
            self.steps.insert(id.clone(), Value::from(&value));
        }
    }

    async fn record_step(&self, number: usize, name: &str, status: Status) {
        let job = self.job.id;
        let name = self.mask(name);
        let result = self
            .agent
            .db(move |a| {
                a.store
                    .write(|tx| builds::set_step(tx, job, number, &name, status))
                    .map_err(anyhow::Error::from)
            })
            .await;
        match result {
            Ok(()) => self.agent.changes.send(crate::changes::Change::Step {
                build: self.job.build_id,
                job,
                number,
                status,
            }),
            Err(e) => tracing::warn!(job = %job, "cannot record step: {e:#}"),
        }
    }

    fn outcome(&self) -> Outcome {
        let ctx = self.context();
        let outputs: serde_json::Map<String, serde_json::Value> = self
            .spec
            .outputs
            .iter()
            .map(|(k, v)| {
                let value = expr::render_string(v, &ctx).unwrap_or_default();
                (k.clone(), self.mask(&value).into())
            })
            .collect();
        let (status, reason) = match self.status {
            _ if self.running.cancel.is_cancelled() => {
                (Status::Cancelled, Some("cancelled".to_owned()))
            }
            expr::Status::Success => (Status::Success, None),
            expr::Status::Failure if self.spec.continue_on_error => (
                Status::Success,
                Some("a step failed; the job continues on error".to_owned()),
            ),
            expr::Status::Failure => (Status::Failure, Some("a step failed".to_owned())),
            expr::Status::Cancelled => (Status::Cancelled, Some("cancelled".to_owned())),
        };
        Outcome {
            status,
            reason,
            outputs: serde_json::Value::Object(outputs),
        }
    }

    /// Runs one step; returns its outputs, or why it failed.
    async fn step(
        &mut self,
        step: &StepSpec,
        ctx: &Context<'_>,
    ) -> Result<BTreeMap<String, String>, String> {
        match &step.action {
            StepAction::Run(script) => {
                let script = expr::render_string(script, ctx).map_err(|e| e.to_string())?;
                self.run_script(step, &script, ctx).await
            }
            StepAction::Uses { action, with } => {
                let name = action
                    .split('@')
                    .next()
                    .unwrap_or(action)
                    .to_ascii_lowercase();
                let with: BTreeMap<String, String> = with
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            expr::render_string(v, ctx).unwrap_or_else(|_| v.clone()),
                        )
                    })
                    .collect();
                let home = self.home();
                let place = Dirs {
                    workspace: &self.workspace,
                    home: home.as_deref(),
                };
                let (agent, job) = (self.agent, self.job);
                let message = match name.as_str() {
                    "actions/checkout" => {
                        return self.checkout(&with).await.map(|_| BTreeMap::new());
                    }
                    "actions/upload-artifact" => {
                        artifacts::upload(agent, job, &place, &with).await?
                    }
                    "actions/download-artifact" => {
                        artifacts::download(agent, job, &place, &with).await?
                    }
                    "actions/cache/save" => cache::save(agent, job, &place, &with).await?,
                    "maxim-lobanov/setup-xcode" => {
                        let xcodes = xcode::installed(Path::new("/Applications"));
                        let wanted = with.get("xcode-version").map_or("latest", String::as_str);
                        let chosen = xcode::pick(&xcodes, wanted)?;
                        let dir = chosen.developer_dir().display().to_string();
                        self.log(&format!(
                            "Xcode {} selected: DEVELOPER_DIR={dir}",
                            chosen.version_text()
                        ));
                        self.env.insert("DEVELOPER_DIR".into(), dir);
                        return Ok(BTreeMap::from([
                            ("version".to_owned(), chosen.version_text()),
                            ("path".to_owned(), chosen.path.display().to_string()),
                        ]));
                    }
                    "actions/cache" | "actions/cache/restore" => {
                        let save_after = name == "actions/cache";
                        let restored =
                            cache::restore(agent, job, &place, &with, save_after).await?;
                        self.log(&restored.message);
                        self.post.extend(restored.save_later);
                        return Ok(restored.outputs);
                    }
                    _ => {
                        return Err(format!(
                            "the runner does not run `{action}` (built in: {})",
                            hangar_core::workflow::BUILTIN_ACTIONS.join(", ")
                        ));
                    }
                };
                self.log(&message);
                Ok(BTreeMap::new())
            }
        }
    }

    async fn checkout(&self, with: &BTreeMap<String, String>) -> Result<(), String> {
        let id = self.job.build_id;
        let build = self
            .agent
            .db(move |a| {
                a.store
                    .read(|c| builds::get(c, id))
                    .map_err(anyhow::Error::from)
            })
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the build is gone")?;
        checkout::run(
            self.agent,
            &build.repo,
            &self.workspace,
            &self.sha,
            with,
            |line| {
                self.log(line);
            },
        )
        .await
    }

    async fn run_script(
        &mut self,
        step: &StepSpec,
        script: &str,
        ctx: &Context<'_>,
    ) -> Result<BTreeMap<String, String>, String> {
        let n = self.steps.len() + self.spec.steps.len();
        let files = StepFiles::create(&self.temp, n)
            .map_err(|e| format!("cannot create step files: {e}"))?;
        let shell = step.shell.clone().unwrap_or_else(|| match &self.place {
            // As GitHub: without `shell:`, bash if the image has it, else sh.
            Place::Container(c) if !c.bash => "sh".to_owned(),
            _ => "bash".to_owned(),
        });
        let (program, args, extension) = shell_command(&shell)?;
        let script_path = self
            .temp
            .join(format!("step-{}-{}.{extension}", self.job.id, uniq()));
        std::fs::write(&script_path, script)
            .map_err(|e| format!("cannot write the script: {e}"))?;
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("{0}", &script_path.display().to_string()))
            .collect();

        let mut env = base_env(self, &files);
        env.extend(self.env_map());
        for (k, v) in &step.env {
            env.insert(
                k.clone(),
                expr::render_string(v, ctx).unwrap_or_else(|_| v.clone()),
            );
        }
        if !self.path.is_empty() {
            let old = env.get("PATH").cloned().unwrap_or_default();
            env.insert("PATH".into(), format!("{}:{old}", self.path.join(":")));
        }
        let dir = match &step.working_directory {
            Some(wd) => self
                .workspace
                .join(expr::render_string(wd, ctx).unwrap_or_else(|_| wd.clone())),
            None => self.workspace.clone(),
        };
        let timeout = step
            .timeout_minutes
            .as_deref()
            .and_then(|t| expr::render_string(t, ctx).ok())
            .and_then(|t| t.trim().parse::<f64>().ok())
            .map(|m| Duration::from_secs_f64((m * 60.0).max(1.0)));

        let started = match &self.place {
            Place::Host => {
                let program = on_path(&program, env.get("PATH").map_or("", String::as_str));
                let mut cmd = tokio::process::Command::new(program);
                cmd.args(&args)
                    .current_dir(&dir)
                    .env_clear()
                    .envs(&env)
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .process_group(0)
                    .kill_on_drop(true);
                spawn_host(cmd, self.running.log.clone())?
            }
            Place::Container(container) => {
                let argv = std::iter::once(program).chain(args).collect();
                let (exec, lines) = container.exec(argv, &env, &dir).await?;
                StepProcess {
                    lines,
                    process: Process::Container {
                        container: container.clone(),
                        exec,
                    },
                }
            }
        };
        let status = self.supervise(started, timeout).await?;
        let _ = std::fs::remove_file(&script_path);

        let outputs = files.read_outputs();
        for (k, v) in files.read_env() {
            self.env.insert(k, v);
        }
        for p in files.read_path() {
            self.path.insert(0, p);
        }
        files.remove();
        if status == 0 {
            Ok(outputs)
        } else {
            Err(format!("the step exited with status {status}"))
        }
    }

    /// Streams a started step's output into the log, and stops it (its whole
    /// process group on the host, every step process in a container) on
    /// cancel or timeout. Returns the exit status.
    async fn supervise(
        &mut self,
        mut step: StepProcess,
        timeout: Option<Duration>,
    ) -> Result<i32, String> {
        if let Process::Host { pgid, .. } = &step.process {
            self.record_process(*pgid).await;
        }
        let deadline = async {
            match timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(deadline);
        let cancel = self.running.cancel.clone();
        let mut stopped: Option<String> = None;
        loop {
            tokio::select! {
                line = step.lines.recv() => match line {
                    Some(line) => self.output_line(&String::from_utf8_lossy(&line)).await,
                    None => break,
                },
                _ = cancel.cancelled(), if stopped.is_none() => {
                    step.process.stop().await;
                    stopped = Some("cancelled".into());
                }
                _ = &mut deadline, if stopped.is_none() => {
                    step.process.stop().await;
                    stopped = Some("the step exceeded its timeout-minutes".into());
                }
            }
        }
        let status = match step.process {
            Process::Host { mut child, pgid } => {
                let status = child
                    .wait()
                    .await
                    .map_err(|e| format!("cannot wait for the step: {e}"))?;
                // Background children left by the step go with it.
                kill_group(pgid);
                self.record_process(None).await;
                status.code().unwrap_or(-1)
            }
            Process::Container { container, exec } if stopped.is_none() => {
                container.exit_code(&exec).await?
            }
            Process::Container { .. } => -1,
        };
        if let Some(why) = stopped {
            return Err(why);
        }
        Ok(status)
    }

    /// Remembers the step's process group in SQLite, so that a restart after a
    /// crash can stop it.
    async fn record_process(&self, pgid: Option<i32>) {
        let job = self.job.id;
        let result = self
            .agent
            .db(move |a| {
                a.store
                    .write(|tx| builds::set_job_process(tx, job, pgid, boot_time()))
                    .map_err(anyhow::Error::from)
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(job = %job, "cannot record the step's process: {e:#}");
        }
    }

    async fn output_line(&mut self, raw: &str) {
        let line = raw.trim_end_matches(['\n', '\r']);
        match output::parse(line) {
            Some(Command::Mask(value)) => {
                self.running.log.add_mask(&value);
                self.log("::add-mask::***");
            }
            Some(Command::Annotate(mut annotation)) => {
                annotation.message = self.mask(&annotation.message);
                annotation.file = annotation.file.map(|f| self.mask(&f));
                annotation.log_line = Some(self.log(line) as i64);
                let job = self.job.id;
                let result = self
                    .agent
                    .db(move |a| {
                        a.store
                            .write(|tx| builds::add_annotation(tx, job, &annotation))
                            .map_err(anyhow::Error::from)
                    })
                    .await;
                if let Err(e) = result {
                    tracing::warn!("cannot store annotation: {e:#}");
                }
            }
            _ => {
                self.log(line);
            }
        }
    }
}

/// Spawns a host step. Its stdout and stderr are read in chunks and put
/// back into lines before masking, so a value written in pieces is masked
/// as a whole; a very long line is cut only where no secret can be split.
fn spawn_host(mut cmd: tokio::process::Command, log: Arc<JobLog>) -> Result<StepProcess, String> {
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the step's shell: {e}"))?;
    let pgid = child.id().map(|id| id as i32);
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err("the step's output pipes are missing".into());
    };
    let (tx, lines) = mpsc::channel::<Vec<u8>>(256);
    for pipe in [
        Box::new(stdout) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
        Box::new(stderr),
    ] {
        let tx = tx.clone();
        let log = log.clone();
        tokio::spawn(async move {
            let mut pipe = pipe;
            let mut pending = Lines::new(PENDING_LINE);
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match pipe.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let pieces = pending.push(&buf[..n], &log.masker());
                for piece in pieces {
                    let (Piece::Line(text) | Piece::Part(text)) = piece;
                    if tx.send(text.into_bytes()).await.is_err() {
                        return;
                    }
                }
            }
            if let Some(rest) = pending.finish() {
                let _ = tx.send(rest.into_bytes()).await;
            }
        });
    }
    Ok(StepProcess {
        lines,
        process: Process::Host { child, pgid },
    })
}

fn status_name(status: expr::Status) -> &'static str {
    match status {
        expr::Status::Success => "success",
        expr::Status::Failure => "failure",
        expr::Status::Cancelled => "cancelled",
    }
}

fn uniq() -> String {
    hangar_core::ids::EventId::new().to_string()
}

/// When the host booted (seconds since the epoch), to tell whether a stored
/// process id still names the same process.
pub fn boot_time() -> i64 {
    #[cfg(target_os = "macos")]
    {
        let mut tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        let mut size = std::mem::size_of::<libc::timeval>();
        // SAFETY: the name is NUL-terminated and the buffer is a timeval of the size passed.
        let rc = unsafe {
            libc::sysctlbyname(
                c"kern.boottime".as_ptr(),
                (&mut tv as *mut libc::timeval).cast(),
                &mut size,
                std::ptr::null_mut(),
                0,
            )
        };
        if rc == 0 { tv.tv_sec } else { 0 }
    }
    #[cfg(not(target_os = "macos"))]
    {
        std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|stat| {
                stat.lines()
                    .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
            })
            .unwrap_or(0)
    }
}

pub fn kill_group(pgid: Option<i32>) {
    if let Some(pgid) = pgid.filter(|p| *p > 1) {
        // SAFETY: killpg only sends a signal; a stale group id fails with ESRCH.
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
    }
}

/// `shell:` → program, arguments (with `{0}` for the script) and script extension,
/// as GitHub runs them.
fn shell_command(shell: &str) -> Result<(String, Vec<String>, &'static str), String> {
    let owned = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    Ok(match shell {
        "bash" => (
            "bash".into(),
            owned(&["--noprofile", "--norc", "-eo", "pipefail", "{0}"]),
            "sh",
        ),
        "sh" => ("sh".into(), owned(&["-e", "{0}"]), "sh"),
        "python" => ("python3".into(), owned(&["{0}"]), "py"),
        "zsh" => ("zsh".into(), owned(&["-e", "{0}"]), "sh"),
        custom if custom.contains("{0}") => {
            let mut parts = custom.split_whitespace().map(str::to_owned);
            let program = parts.next().ok_or("empty shell")?;
            (program, parts.collect(), "sh")
        }
        other => {
            return Err(format!(
                "unknown shell {other:?}: use bash, sh, zsh, python or a command with {{0}}"
            ));
        }
    })
}

/// `program` found on the step's `PATH`, as the shell would. Given a bare
/// name and a `PATH` unlike the agent's, std forks the agent to search it;
/// with a full path it can `posix_spawn`, which costs a job a few ms less
/// (no copy of the agent's page tables). A name not found is left to fail
/// at spawn with its usual error.
fn on_path(program: &str, path: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    if program.contains('/') {
        return PathBuf::from(program);
    }
    // Relative entries mean the step's directory: left to std's own search.
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .unwrap_or_else(|| PathBuf::from(program))
}

/// GitHub's default variables and the basics of where the step runs: the
/// host's PATH, HOME and locale, or in a container its own PATH (the rest of
/// the image's environment comes with every exec).
fn base_env(run: &JobRun<'_>, files: &StepFiles) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    match &run.place {
        Place::Host => {
            for key in [
                "PATH",
                "HOME",
                "USER",
                "LOGNAME",
                "LANG",
                "LC_ALL",
                "SHELL",
                "DEVELOPER_DIR",
            ] {
                if let Ok(value) = std::env::var(key) {
                    env.insert(key.to_owned(), value);
                }
            }
        }
        Place::Container(container) => {
            env.insert("PATH".to_owned(), container.path.clone());
        }
    }
    let github = &run.contexts["github"];
    let field = |name: &str| match github {
        Value::Object(map) => map.get(name).map(|v| v.to_string()).unwrap_or_default(),
        _ => String::new(),
    };
    let fixed = [
        ("CI", "true".to_owned()),
        ("GITHUB_ACTIONS", "true".to_owned()),
        ("HANGAR", "true".to_owned()),
        ("GITHUB_SHA", run.sha.clone()),
        ("GITHUB_REF", field("ref")),
        ("GITHUB_REF_NAME", field("ref_name")),
        ("GITHUB_REPOSITORY", field("repository")),
        ("GITHUB_ACTOR", field("actor")),
        ("GITHUB_EVENT_NAME", field("event_name")),
        ("GITHUB_RUN_ID", run.job.build_id.to_string()),
        ("GITHUB_RUN_NUMBER", field("run_number")),
        ("GITHUB_JOB", run.spec.id.clone()),
        ("GITHUB_WORKSPACE", run.workspace.display().to_string()),
        ("GITHUB_SERVER_URL", run.agent.url.clone()),
        ("GITHUB_OUTPUT", files.output.display().to_string()),
        ("GITHUB_ENV", files.env.display().to_string()),
        ("GITHUB_PATH", files.path.display().to_string()),
        ("GITHUB_STEP_SUMMARY", files.summary.display().to_string()),
        ("RUNNER_OS", runner_os(&run.spec.executor).to_owned()),
        ("RUNNER_ARCH", runner_arch().to_owned()),
        ("RUNNER_NAME", "hangar".to_owned()),
        ("RUNNER_TEMP", run.temp.display().to_string()),
        ("TMPDIR", run.temp.display().to_string()),
    ];
    env.extend(fixed.into_iter().map(|(k, v)| (k.to_owned(), v)));
    env
}

/// The per-step files behind `GITHUB_OUTPUT`, `GITHUB_ENV`, `GITHUB_PATH`
/// and `GITHUB_STEP_SUMMARY`.
struct StepFiles {
    output: PathBuf,
    env: PathBuf,
    path: PathBuf,
    summary: PathBuf,
}

impl StepFiles {
    fn create(dir: &Path, n: usize) -> std::io::Result<Self> {
        let tag = format!("{n}-{}", uniq());
        let files = Self {
            output: dir.join(format!("output-{tag}")),
            env: dir.join(format!("env-{tag}")),
            path: dir.join(format!("path-{tag}")),
            summary: dir.join(format!("summary-{tag}")),
        };
        for f in [&files.output, &files.env, &files.path, &files.summary] {
            std::fs::write(f, "")?;
        }
        Ok(files)
    }

    fn read_outputs(&self) -> BTreeMap<String, String> {
        parse_env_file(&std::fs::read_to_string(&self.output).unwrap_or_default())
    }

    fn read_env(&self) -> BTreeMap<String, String> {
        parse_env_file(&std::fs::read_to_string(&self.env).unwrap_or_default())
    }

    fn read_path(&self) -> Vec<String> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn remove(&self) {
        for f in [&self.output, &self.env, &self.path, &self.summary] {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// `KEY=value` lines and `KEY<<DELIM` ... `DELIM` blocks, as in GitHub's
/// `GITHUB_OUTPUT` and `GITHUB_ENV` files.
pub fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((key, delimiter)) = line.split_once("<<") {
            let mut value = Vec::new();
            for next in lines.by_ref() {
                if next == delimiter {
                    break;
                }
                value.push(next);
            }
            out.insert(key.trim().to_owned(), value.join("\n"));
        } else if let Some((key, value)) = line.split_once('=') {
            out.insert(key.trim().to_owned(), value.to_owned());
        }
    }
    out.retain(|k, _| !k.is_empty());
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_env_files_with_heredocs() {
        let parsed = super::parse_env_file("a=1\nb<<EOF\nx\ny=z\nEOF\nc=3=4\n");
        assert_eq!(parsed["a"], "1");
        assert_eq!(parsed["b"], "x\ny=z");
        assert_eq!(parsed["c"], "3=4");
    }

    #[test]
    fn shells_follow_github() {
        let (program, args, _) = super::shell_command("bash").unwrap();
        assert_eq!(
            (program.as_str(), args.join(" ").as_str()),
            ("bash", "--noprofile --norc -eo pipefail {0}")
        );
        assert!(super::shell_command("fish").is_err());
        assert_eq!(super::shell_command("perl {0}").unwrap().0, "perl");
    }

    #[test]
    fn programs_are_found_on_the_steps_path_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let (bin, plain) = (dir.path().join("bin"), dir.path().join("plain"));
        for d in [&bin, &plain] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::write(bin.join("tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(bin.join("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(plain.join("tool"), "not executable").unwrap();
        let path = format!("relative:{}:{}", plain.display(), bin.display());
        assert_eq!(super::on_path("tool", &path), bin.join("tool"));
        assert_eq!(
            super::on_path("./tool", &path),
            std::path::Path::new("./tool")
        );
        assert_eq!(
            super::on_path("missing", &path),
            std::path::Path::new("missing")
        );
        let only_plain = plain.display().to_string();
        assert_eq!(
            super::on_path("tool", &only_plain),
            std::path::Path::new("tool")
        );
    }
}
