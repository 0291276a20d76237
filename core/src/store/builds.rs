//! Builds, their jobs, steps and annotations.
//!
//! A build's status is derived from its jobs ([`refresh_build`]); the status
//! names are part of the API (`--json` output) and never change.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::{Result, cached_execute, cached_query_row, format_ms, now_ms};
use crate::ids::{BuildId, EventId, JobId, RepoId};

/// Status of a build or a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Queued,
    Running,
    Success,
    Failure,
    Cancelled,
    Interrupted,
    Invalid,
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Success => "success",
            Status::Failure => "failure",
            Status::Cancelled => "cancelled",
            Status::Interrupted => "interrupted",
            Status::Invalid => "invalid",
            Status::Skipped => "skipped",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "queued" => Status::Queued,
            "running" => Status::Running,
            "success" => Status::Success,
            "failure" => Status::Failure,
            "cancelled" => Status::Cancelled,
            "interrupted" => Status::Interrupted,
            "invalid" => Status::Invalid,
            "skipped" => Status::Skipped,
            _ => return None,
        })
    }

    pub fn is_finished(self) -> bool {
        !matches!(self, Status::Queued | Status::Running)
    }
}

impl rusqlite::ToSql for Status {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl rusqlite::types::FromSql for Status {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let text = v.as_str()?;
        Status::parse(text).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(format!("unknown status {text}").into())
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Build {
    pub id: BuildId,
    pub repo_id: RepoId,
    pub repo: String,
    pub number: i64,
    pub workflow_file: String,
    pub workflow_name: String,
    pub title: String,
    pub trigger: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: String,
    pub status: Status,
    pub error: Option<String>,
    pub concurrency: Option<String>,
    pub cancel_in_progress: bool,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
}

const BUILD_COLUMNS: &str = "b.*, r.owner || '/' || r.name AS repo";

fn duration(started: Option<i64>, finished: Option<i64>) -> Option<i64> {
    Some(finished.unwrap_or_else(now_ms) - started?)
}

fn build_from_row(row: &Row<'_>) -> rusqlite::Result<Build> {
    let started: Option<i64> = row.get("started_at")?;
    let finished: Option<i64> = row.get("finished_at")?;
    Ok(Build {
        id: row.get("id")?,
        repo_id: row.get("repo_id")?,
        repo: row.get("repo")?,
        number: row.get("number")?,
        workflow_file: row.get("workflow_file")?,
        workflow_name: row.get("workflow_name")?,
        title: row.get("title")?,
        trigger: row.get("trigger")?,
        git_ref: row.get("git_ref")?,
        sha: row.get("sha")?,
        status: row.get("status")?,
        error: row.get("error")?,
        concurrency: row.get("concurrency")?,
        cancel_in_progress: row.get("cancel_in_progress")?,
        created_at: format_ms(row.get("created_at")?),
        started_at: started.map(format_ms),
        finished_at: finished.map(format_ms),
        duration_ms: duration(started, finished),
    })
}

/// What a new build row holds.
pub struct NewBuild<'a> {
    pub repo_id: RepoId,
    pub event_id: Option<EventId>,
    pub workflow_file: &'a str,
    pub workflow_name: &'a str,
    pub title: &'a str,
    pub trigger: &'a str,
    pub git_ref: &'a str,
    pub sha: &'a str,
    /// `None` for a plannable build; the parser's or planner's message for an invalid one.
    pub error: Option<&'a str>,
    pub concurrency: Option<&'a str>,
    /// Whether entering the group cancels the build in progress.
    pub cancel_in_progress: bool,
    /// The `github` (and `inputs`) contexts the jobs evaluate against.
    pub context: &'a serde_json::Value,
}

/// Inserts a build with the next run number of its repo and workflow.
pub fn insert_build(conn: &Connection, new: &NewBuild<'_>) -> Result<BuildId> {
    let id = BuildId::new();
    let number: i64 = cached_query_row(
        conn,
        "SELECT COALESCE(MAX(number), 0) + 1 FROM builds WHERE repo_id = ?1 AND workflow_file = ?2",
        params![new.repo_id, new.workflow_file],
        |r| r.get(0),
    )?;
    let (status, finished) = match new.error {
        Some(_) => (Status::Invalid, Some(now_ms())),
        None => (Status::Queued, None),
    };
    cached_execute(conn,
        "INSERT INTO builds (id, repo_id, event_id, number, workflow_file, workflow_name, title, trigger, git_ref, sha,
                             status, error, concurrency, context, created_at, finished_at, cancel_in_progress)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        params![
            id,
            new.repo_id,
            new.event_id,
            number,
            new.workflow_file,
            new.workflow_name,
            new.title,
            new.trigger,
            new.git_ref,
            new.sha,
            status,
            new.error,
            new.concurrency,
            new.context.to_string(),
            now_ms(),
            finished,
            new.cancel_in_progress
        ],
    )?;
    Ok(id)
}

pub fn get(conn: &Connection, id: BuildId) -> Result<Option<Build>> {
    let sql = format!(
        "SELECT {BUILD_COLUMNS} FROM builds b JOIN repos r ON r.id = b.repo_id WHERE b.id = ?1"
    );
    Ok(cached_query_row(conn, &sql, [id], build_from_row).optional()?)
}

/// The `github` context a build's jobs evaluate against.
pub fn context(conn: &Connection, id: BuildId) -> Result<serde_json::Value> {
    let text: String = cached_query_row(
        conn,
        "SELECT context FROM builds WHERE id = ?1",
        [id],
        |r| r.get(0),
    )?;
    Ok(serde_json::from_str(&text).unwrap_or_default())
}

/// Newest first; `before` pages backwards by id; `status` keeps one status.
pub fn list(
    conn: &Connection,
    repo: Option<RepoId>,
    status: Option<Status>,
    before: Option<BuildId>,
    limit: usize,
) -> Result<Vec<Build>> {
    let sql = format!(
        "SELECT {BUILD_COLUMNS} FROM builds b JOIN repos r ON r.id = b.repo_id
         WHERE (?1 IS NULL OR b.repo_id = ?1) AND (?2 IS NULL OR b.id < ?2)
           AND (?4 IS NULL OR b.status = ?4)
         ORDER BY b.id DESC LIMIT ?3"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![repo, before, limit as i64, status], build_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: JobId,
    pub build_id: BuildId,
    pub key: String,
    pub name: String,
    pub needs: Vec<String>,
    pub executor: String,
    pub status: Status,
    pub attempt: i64,
    pub reason: Option<String>,
    pub outputs: serde_json::Value,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
}

fn job_from_row(row: &Row<'_>) -> rusqlite::Result<Job> {
    let needs: String = row.get("needs")?;
    let outputs: String = row.get("outputs")?;
    let started: Option<i64> = row.get("started_at")?;
    let finished: Option<i64> = row.get("finished_at")?;
    Ok(Job {
        id: row.get("id")?,
        build_id: row.get("build_id")?,
        key: row.get("key")?,
        name: row.get("name")?,
        needs: serde_json::from_str(&needs).unwrap_or_default(),
        executor: row.get("executor")?,
        status: row.get("status")?,
        attempt: row.get("attempt")?,
        reason: row.get("reason")?,
        outputs: serde_json::from_str(&outputs).unwrap_or_default(),
        started_at: started.map(format_ms),
        finished_at: finished.map(format_ms),
        duration_ms: duration(started, finished),
    })
}

/// Inserts a queued job (or a finished one, e.g. `skipped` with a reason).
#[allow(clippy::too_many_arguments)]
pub fn insert_job(
    conn: &Connection,
    build: BuildId,
    key: &str,
    name: &str,
    needs: &[String],
    executor: &str,
    spec: &str,
    status: Status,
    reason: Option<&str>,
) -> Result<JobId> {
    let id = JobId::new();
    let now = now_ms();
    cached_execute(conn,
        "INSERT INTO jobs (id, build_id, key, name, needs, executor, spec, status, reason, created_at, finished_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            id,
            build,
            key,
            name,
            serde_json::to_string(needs).unwrap_or_default(),
            executor,
            spec,
            status,
            reason,
            now,
            status.is_finished().then_some(now)
        ],
    )?;
    Ok(id)
}

pub fn jobs(conn: &Connection, build: BuildId) -> Result<Vec<Job>> {
    let mut stmt =
        conn.prepare_cached("SELECT * FROM jobs WHERE build_id = ?1 ORDER BY created_at, rowid")?;
    let rows = stmt.query_map([build], job_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn job(conn: &Connection, id: JobId) -> Result<Option<Job>> {
    Ok(
        cached_query_row(conn, "SELECT * FROM jobs WHERE id = ?1", [id], job_from_row)
            .optional()?,
    )
}

/// The planned job spec (JSON) the runner executes.
pub fn job_spec(conn: &Connection, id: JobId) -> Result<String> {
    Ok(cached_query_row(
        conn,
        "SELECT spec FROM jobs WHERE id = ?1",
        [id],
        |r| r.get(0),
    )?)
}

/// Queued jobs of every build, oldest first; a build's jobs in the order
/// they were planned (ids made in the same millisecond are not ordered), so
/// matrix jobs start in matrix order.
pub fn queued_jobs(conn: &Connection) -> Result<Vec<Job>> {
    let mut stmt = conn
        .prepare_cached("SELECT * FROM jobs WHERE status = 'queued' ORDER BY created_at, rowid")?;
    let rows = stmt.query_map([], job_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A build with queued jobs: all its jobs, and the queued ones with their
/// `if:` conditions.
#[derive(Debug)]
pub struct QueuedBuild {
    pub id: BuildId,
    pub jobs: Vec<Job>,
    pub queued: Vec<(Job, Option<String>)>,
}

/// Every build with queued jobs (the one whose first queued job is oldest
/// first), with what the scheduler needs to decide on them, in one statement:
/// the scheduler runs this on every tick, and a matrix of hundreds of jobs
/// must not cost hundreds of reads or spec parses per tick. The full spec is
/// read only for a job that starts.
pub fn queued_by_build(conn: &Connection) -> Result<Vec<QueuedBuild>> {
    let mut stmt = conn.prepare_cached(
        "WITH waiting AS (
             SELECT build_id, MIN(created_at) AS first FROM jobs
             WHERE status = 'queued' GROUP BY build_id)
         SELECT j.*, CASE WHEN j.status = 'queued' AND json_valid(j.spec)
                          THEN json_extract(j.spec, '$.condition') END AS queued_condition
         FROM jobs j JOIN waiting w ON w.build_id = j.build_id
         ORDER BY w.first, j.build_id, j.created_at, j.rowid",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok((
            job_from_row(row)?,
            row.get::<_, Option<String>>("queued_condition")?,
        ))
    })?;
    let mut builds: Vec<QueuedBuild> = Vec::new();
    for row in rows {
        let (job, condition) = row?;
        let build = match builds.last_mut() {
            Some(build) if build.id == job.build_id => build,
            _ => {
                builds.push(QueuedBuild {
                    id: job.build_id,
                    jobs: Vec::new(),
                    queued: Vec::new(),
                });
                builds.last_mut().expect("just pushed")
            }
        };
        if job.status == Status::Queued {
            build.queued.push((job.clone(), condition));
        }
        build.jobs.push(job);
    }
    Ok(builds)
}

/// Moves a job to `status`, stamping start and finish times.
pub fn set_job_status(
    conn: &Connection,
    id: JobId,
    status: Status,
    reason: Option<&str>,
) -> Result<()> {
    let now = now_ms();
    cached_execute(
        conn,
        "UPDATE jobs SET status = ?2, reason = ?3,
                started_at = CASE WHEN ?2 = 'running' THEN ?4 ELSE started_at END,
                finished_at = CASE WHEN ?2 IN ('queued', 'running') THEN NULL ELSE ?4 END
         WHERE id = ?1",
        params![id, status, reason, now],
    )?;
    Ok(())
}

pub fn set_job_outputs(conn: &Connection, id: JobId, outputs: &serde_json::Value) -> Result<()> {
    cached_execute(
        conn,
        "UPDATE jobs SET outputs = ?2 WHERE id = ?1",
        params![id, outputs.to_string()],
    )?;
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub number: i64,
    pub name: String,
    pub status: Status,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
}

/// Records a step's status (inserting it the first time).
pub fn set_step(
    conn: &Connection,
    job: JobId,
    number: usize,
    name: &str,
    status: Status,
) -> Result<()> {
    let now = now_ms();
    cached_execute(conn,
        "INSERT INTO steps (job_id, number, name, status, started_at, finished_at)
         VALUES (?1, ?2, ?3, ?4, CASE WHEN ?4 = 'running' THEN ?5 END, CASE WHEN ?4 IN ('queued', 'running') THEN NULL ELSE ?5 END)
         ON CONFLICT (job_id, number) DO UPDATE SET status = ?4,
             finished_at = CASE WHEN ?4 IN ('queued', 'running') THEN NULL ELSE ?5 END",
        params![job, number as i64, name, status, now],
    )?;
    Ok(())
}

pub fn steps(conn: &Connection, job: JobId) -> Result<Vec<Step>> {
    let mut stmt = conn.prepare_cached("SELECT * FROM steps WHERE job_id = ?1 ORDER BY number")?;
    let rows = stmt.query_map([job], |row| {
        let started: Option<i64> = row.get("started_at")?;
        let finished: Option<i64> = row.get("finished_at")?;
        Ok(Step {
            number: row.get("number")?,
            name: row.get("name")?,
            status: row.get("status")?,
            started_at: started.map(format_ms),
            finished_at: finished.map(format_ms),
            duration_ms: duration(started, finished),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Annotation {
    pub level: String,
    pub message: String,
    pub file: Option<String>,
    pub line: Option<i64>,
    /// The log line it came from, for linking.
    pub log_line: Option<i64>,
}

pub fn add_annotation(conn: &Connection, job: JobId, a: &Annotation) -> Result<()> {
    cached_execute(
        conn,
        "INSERT INTO annotations (job_id, level, message, file, line, log_line, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            job,
            a.level,
            a.message,
            a.file,
            a.line,
            a.log_line,
            now_ms()
        ],
    )?;
    Ok(())
}

pub fn annotations(conn: &Connection, job: JobId) -> Result<Vec<Annotation>> {
    let mut stmt =
        conn.prepare_cached("SELECT * FROM annotations WHERE job_id = ?1 ORDER BY id")?;
    let rows = stmt.query_map([job], |row| {
        Ok(Annotation {
            level: row.get("level")?,
            message: row.get("message")?,
            file: row.get("file")?,
            line: row.get("line")?,
            log_line: row.get("log_line")?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Derives a build's status from its jobs and stores it: running while any
/// job runs or waits after one started; failure if any job failed or was
/// interrupted; cancelled if any was cancelled; otherwise success.
pub fn refresh_build(conn: &Connection, id: BuildId) -> Result<Status> {
    let current: Status =
        cached_query_row(conn, "SELECT status FROM builds WHERE id = ?1", [id], |r| {
            r.get(0)
        })?;
    if current == Status::Invalid {
        return Ok(current);
    }
    let statuses: Vec<Status> = conn
        .prepare_cached("SELECT status FROM jobs WHERE build_id = ?1")?
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let any = |s: Status| statuses.contains(&s);
    let status = if any(Status::Running)
        || (any(Status::Queued) && statuses.iter().any(|s| s.is_finished()))
    {
        Status::Running
    } else if any(Status::Queued) {
        Status::Queued
    } else if any(Status::Failure) || any(Status::Interrupted) || any(Status::Invalid) {
        Status::Failure
    } else if any(Status::Cancelled) {
        Status::Cancelled
    } else if statuses.iter().all(|s| *s == Status::Skipped) && !statuses.is_empty() {
        Status::Skipped
    } else {
        Status::Success
    };
    let now = now_ms();
    cached_execute(conn,
        "UPDATE builds SET status = ?2,
                started_at = CASE WHEN started_at IS NULL AND ?2 != 'queued' THEN ?3 ELSE started_at END,
                finished_at = CASE WHEN ?2 IN ('queued', 'running') THEN NULL ELSE COALESCE(finished_at, ?3) END
         WHERE id = ?1",
        params![id, status, now],
    )?;
    Ok(status)
}

/// Records the process group of a job's running step (`None` when it ended).
pub fn set_job_process(
    conn: &Connection,
    id: JobId,
    pgid: Option<i32>,
    boot_time: i64,
) -> Result<()> {
    cached_execute(
        conn,
        "UPDATE jobs SET pgid = ?2, boot_time = ?3 WHERE id = ?1",
        params![id, pgid, boot_time],
    )?;
    Ok(())
}

/// Whether a Docker job was running when the agent stopped (and so may have
/// left its container behind).
pub fn docker_jobs_running(conn: &Connection) -> Result<bool> {
    Ok(cached_query_row(
        conn,
        "SELECT EXISTS(SELECT 1 FROM jobs WHERE status = 'running' AND executor = 'docker')",
        [],
        |r| r.get(0),
    )?)
}

/// Process groups of steps that were running when the agent stopped, if the
/// host has not rebooted since (after a reboot the ids mean other processes).
pub fn leftover_processes(conn: &Connection, boot_time: i64) -> Result<Vec<i32>> {
    let mut stmt = conn.prepare_cached(
        "SELECT pgid FROM jobs WHERE status = 'running' AND pgid IS NOT NULL AND boot_time = ?1",
    )?;
    let rows = stmt.query_map([boot_time], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// After a crash: jobs that were running are marked `interrupted` and, on
/// their first attempt, queued again. Returns the builds touched.
pub fn recover(conn: &Connection) -> Result<Vec<BuildId>> {
    let running: Vec<(JobId, BuildId, i64)> = conn
        .prepare_cached("SELECT id, build_id, attempt FROM jobs WHERE status = 'running'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut builds = Vec::new();
    for (job, build, attempt) in running {
        if attempt < 2 {
            cached_execute(conn,
                "UPDATE jobs SET status = 'queued', attempt = attempt + 1, started_at = NULL, pgid = NULL,
                        reason = 'interrupted by an agent restart; queued again' WHERE id = ?1",
                [job],
            )?;
            cached_execute(conn, "DELETE FROM steps WHERE job_id = ?1", [job])?;
        } else {
            set_job_status(
                conn,
                job,
                Status::Interrupted,
                Some("interrupted by an agent restart (second time)"),
            )?;
        }
        if !builds.contains(&build) {
            builds.push(build);
        }
    }
    for build in &builds {
        refresh_build(conn, *build)?;
    }
    Ok(builds)
}

/// Marks an event as turned into builds (or found to need none). Returns
/// false when another planner got there first, so the caller rolls back.
pub fn mark_planned(conn: &Connection, event: EventId) -> Result<bool> {
    Ok(cached_execute(
        conn,
        "UPDATE events SET planned = 1 WHERE id = ?1 AND planned = 0",
        [event],
    )? == 1)
}

/// The builds planned for one event.
pub fn by_event(conn: &Connection, event: EventId) -> Result<Vec<Build>> {
    let sql = format!(
        "SELECT {BUILD_COLUMNS} FROM builds b JOIN repos r ON r.id = b.repo_id WHERE b.event_id = ?1 ORDER BY b.id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([event], build_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A new build with the same workflow, commit and jobs (all of them, or only
/// those that did not succeed when `failed_only`, the others copied as they were).
pub fn rerun(conn: &Connection, id: BuildId, failed_only: bool) -> Result<Option<BuildId>> {
    let Some(old) = get(conn, id)? else {
        return Ok(None);
    };
    let context = context(conn, id)?;
    let new = insert_build(
        conn,
        &NewBuild {
            repo_id: old.repo_id,
            event_id: None,
            workflow_file: &old.workflow_file,
            workflow_name: &old.workflow_name,
            title: &old.title,
            trigger: "rerun",
            git_ref: &old.git_ref,
            sha: &old.sha,
            error: old.error.as_deref(),
            concurrency: old.concurrency.as_deref(),
            cancel_in_progress: old.cancel_in_progress,
            context: &context,
        },
    )?;
    for job in jobs(conn, id)? {
        let keep = failed_only && job.status == Status::Success;
        let (status, reason) = if keep {
            (Status::Success, Some("succeeded in the previous run"))
        } else {
            (Status::Queued, None)
        };
        let spec = job_spec(conn, job.id)?;
        let copied = insert_job(
            conn,
            new,
            &job.key,
            &job.name,
            &job.needs,
            &job.executor,
            &spec,
            status,
            reason,
        )?;
        if keep {
            set_job_outputs(conn, copied, &job.outputs)?;
        }
    }
    refresh_build(conn, new)?;
    Ok(Some(new))
}

/// Cancels a build's queued jobs (only those of matrix job `key` when given)
/// with `reason`, and returns its running ones (of `key`), whose processes
/// the caller must stop; they record `cancelled` when they end.
pub fn cancel_jobs(
    conn: &Connection,
    build: BuildId,
    key: Option<&str>,
    reason: &str,
) -> Result<Vec<JobId>> {
    let mut running = Vec::new();
    for job in jobs(conn, build)?
        .into_iter()
        .filter(|j| key.is_none_or(|k| j.key == k))
    {
        match job.status {
            Status::Queued => set_job_status(conn, job.id, Status::Cancelled, Some(reason))?,
            Status::Running => {
                note_stop(conn, job.id, reason)?;
                running.push(job.id);
            }
            _ => {}
        }
    }
    refresh_build(conn, build)?;
    Ok(running)
}

/// Records why a running job is being stopped; its end keeps this reason
/// (see [`stop_reason`]).
pub fn note_stop(conn: &Connection, job: JobId, reason: &str) -> Result<()> {
    cached_execute(
        conn,
        "UPDATE jobs SET reason = ?2 WHERE id = ?1 AND status = 'running'",
        params![job, reason],
    )?;
    Ok(())
}

/// Why a running job was told to stop, if it was (a running job has no
/// other reason).
pub fn stop_reason(conn: &Connection, job: JobId) -> Result<Option<String>> {
    Ok(cached_query_row(
        conn,
        "SELECT reason FROM jobs WHERE id = ?1 AND status = 'running'",
        [job],
        |r| r.get(0),
    )
    .optional()?
    .flatten())
}

/// Unfinished builds of `build`'s repository and workflow-level concurrency
/// group, other than `build`, oldest first.
fn group_builds(conn: &Connection, build: &Build) -> Result<Vec<Build>> {
    let Some(group) = &build.concurrency else {
        return Ok(Vec::new());
    };
    let sql = format!(
        "SELECT {BUILD_COLUMNS} FROM builds b JOIN repos r ON r.id = b.repo_id
         WHERE b.repo_id = ?1 AND b.concurrency = ?2 AND b.id != ?3 AND b.status IN ('queued', 'running')
         ORDER BY b.id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![build.repo_id, group, build.id], build_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A new build joins its concurrency group, as on GitHub: with
/// `cancel-in-progress` every other unfinished build of the group is
/// cancelled; without it, only the one still waiting (a group holds one
/// running and one pending build). Returns the running jobs to stop.
pub fn enter_group(conn: &Connection, id: BuildId) -> Result<Vec<JobId>> {
    let Some(build) = get(conn, id)? else {
        return Ok(Vec::new());
    };
    let mut stop = Vec::new();
    for other in group_builds(conn, &build)? {
        let group = build.concurrency.as_deref().unwrap_or_default();
        if build.cancel_in_progress {
            let reason = format!(
                "cancelled: build #{} entered concurrency group {group:?} with cancel-in-progress",
                build.number
            );
            stop.extend(cancel_jobs(conn, other.id, None, &reason)?);
        } else if other.status == Status::Queued {
            let reason = format!(
                "cancelled: replaced by build #{} waiting in concurrency group {group:?}",
                build.number
            );
            cancel_jobs(conn, other.id, None, &reason)?;
        }
    }
    Ok(stop)
}

/// The build of `build`'s concurrency group that has started and not
/// finished, which `build` must wait for.
pub fn group_holder(conn: &Connection, build: &Build) -> Result<Option<Build>> {
    Ok(group_builds(conn, build)?
        .into_iter()
        .find(|b| b.status == Status::Running))
}

/// Unfinished jobs of `repo` in the job-level concurrency group `group`.
pub fn group_jobs(conn: &Connection, repo: RepoId, group: &str) -> Result<Vec<Job>> {
    let mut stmt = conn.prepare_cached(
        "SELECT j.* FROM jobs j JOIN builds b ON b.id = j.build_id
         WHERE j.status IN ('queued', 'running') AND b.repo_id = ?1
           AND json_extract(j.spec, '$.concurrency.group') = ?2
         ORDER BY j.created_at, j.rowid",
    )?;
    let rows = stmt.query_map(params![repo, group], job_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo_name::RepoName;
    use crate::store::{StoreError, repos, test_store};

    fn build(conn: &Connection, repo: RepoId, group: &str, cancel: bool) -> BuildId {
        let id = insert_build(
            conn,
            &NewBuild {
                repo_id: repo,
                event_id: None,
                workflow_file: ".github/workflows/ci.yml",
                workflow_name: "ci",
                title: "ci",
                trigger: "push",
                git_ref: "refs/heads/main",
                sha: "0000000000000000000000000000000000000000",
                error: None,
                concurrency: Some(group),
                cancel_in_progress: cancel,
                context: &serde_json::json!({}),
            },
        )
        .unwrap();
        insert_job(conn, id, "a", "a", &[], "host", "{}", Status::Queued, None).unwrap();
        id
    }

    fn status(conn: &Connection, id: BuildId) -> Status {
        get(conn, id).unwrap().unwrap().status
    }

    fn start(conn: &Connection, id: BuildId) -> JobId {
        let job = jobs(conn, id).unwrap()[0].id;
        set_job_status(conn, job, Status::Running, None).unwrap();
        refresh_build(conn, id).unwrap();
        job
    }

    #[test]
    fn a_group_holds_one_running_and_one_pending_build() {
        let (_dir, store) = test_store();
        store
            .write(|tx| {
                let repo = repos::create(tx, &RepoName::parse("a/b").unwrap(), false, "")?.id;
                let first = build(tx, repo, "g", false);
                assert!(enter_group(tx, first)?.is_empty());
                start(tx, first);
                let second = build(tx, repo, "g", false);
                assert!(enter_group(tx, second)?.is_empty());
                let waiting = get(tx, second)?.unwrap();
                assert_eq!(group_holder(tx, &waiting)?.map(|b| b.id), Some(first));
                // A third replaces the pending second; the running first goes on.
                let third = build(tx, repo, "g", false);
                assert!(enter_group(tx, third)?.is_empty());
                assert_eq!(status(tx, second), Status::Cancelled);
                assert_eq!(status(tx, first), Status::Running);
                // Another group, or another repository, is not affected.
                let other = build(tx, repo, "h", true);
                assert!(enter_group(tx, other)?.is_empty());
                Ok::<_, StoreError>(())
            })
            .unwrap();
    }

    #[test]
    fn cancel_in_progress_stops_the_running_build() {
        let (_dir, store) = test_store();
        store
            .write(|tx| {
                let repo = repos::create(tx, &RepoName::parse("a/b").unwrap(), false, "")?.id;
                let first = build(tx, repo, "g", true);
                let running = start(tx, first);
                let second = build(tx, repo, "g", true);
                assert_eq!(enter_group(tx, second)?, vec![running]);
                let why = stop_reason(tx, running)?.unwrap_or_default();
                assert!(why.contains("cancel-in-progress"), "{why}");
                // The running job records `cancelled` itself when it stops.
                set_job_status(tx, running, Status::Cancelled, Some("cancelled"))?;
                refresh_build(tx, first)?;
                assert_eq!(status(tx, first), Status::Cancelled);
                assert!(group_holder(tx, &get(tx, second)?.unwrap())?.is_none());
                Ok::<_, StoreError>(())
            })
            .unwrap();
    }

    #[test]
    fn job_groups_are_read_from_specs() {
        let (_dir, store) = test_store();
        store
            .write(|tx| {
                let repo = repos::create(tx, &RepoName::parse("a/b").unwrap(), false, "")?.id;
                let b = build(tx, repo, "g", false);
                let spec = r#"{"concurrency":{"group":"deploy","cancel_in_progress":false}}"#;
                let job = insert_job(tx, b, "d", "d", &[], "host", spec, Status::Queued, None)?;
                let found: Vec<JobId> = group_jobs(tx, repo, "deploy")?
                    .iter()
                    .map(|j| j.id)
                    .collect();
                assert_eq!(found, vec![job]);
                assert!(group_jobs(tx, repo, "other")?.is_empty());
                Ok::<_, StoreError>(())
            })
            .unwrap();
    }
}
