//! Builds, their jobs, steps and annotations.
//!
//! A build's status is derived from its jobs ([`refresh_build`]); the status
//! names are part of the API (`--json` output) and never change.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::{Result, format_ms, now_ms};
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
    /// The `github` (and `inputs`) contexts the jobs evaluate against.
    pub context: &'a serde_json::Value,
}

/// Inserts a build with the next run number of its repo and workflow.
pub fn insert_build(conn: &Connection, new: &NewBuild<'_>) -> Result<BuildId> {
    let id = BuildId::new();
    let number: i64 = conn.query_row(
        "SELECT COALESCE(MAX(number), 0) + 1 FROM builds WHERE repo_id = ?1 AND workflow_file = ?2",
        params![new.repo_id, new.workflow_file],
        |r| r.get(0),
    )?;
    let (status, finished) = match new.error {
        Some(_) => (Status::Invalid, Some(now_ms())),
        None => (Status::Queued, None),
    };
    conn.execute(
        "INSERT INTO builds (id, repo_id, event_id, number, workflow_file, workflow_name, title, trigger, git_ref, sha,
                             status, error, concurrency, context, created_at, finished_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
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
            finished
        ],
    )?;
    Ok(id)
}

pub fn get(conn: &Connection, id: BuildId) -> Result<Option<Build>> {
    let sql = format!(
        "SELECT {BUILD_COLUMNS} FROM builds b JOIN repos r ON r.id = b.repo_id WHERE b.id = ?1"
    );
    Ok(conn.query_row(&sql, [id], build_from_row).optional()?)
}

/// The `github` context a build's jobs evaluate against.
pub fn context(conn: &Connection, id: BuildId) -> Result<serde_json::Value> {
    let text: String = conn.query_row("SELECT context FROM builds WHERE id = ?1", [id], |r| {
        r.get(0)
    })?;
    Ok(serde_json::from_str(&text).unwrap_or_default())
}

/// Newest first; `before` pages backwards by id.
pub fn list(
    conn: &Connection,
    repo: Option<RepoId>,
    before: Option<BuildId>,
    limit: usize,
) -> Result<Vec<Build>> {
    let sql = format!(
        "SELECT {BUILD_COLUMNS} FROM builds b JOIN repos r ON r.id = b.repo_id
         WHERE (?1 IS NULL OR b.repo_id = ?1) AND (?2 IS NULL OR b.id < ?2)
         ORDER BY b.id DESC LIMIT ?3"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params![repo, before, limit as i64], build_from_row)?;
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
    conn.execute(
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
        conn.prepare("SELECT * FROM jobs WHERE build_id = ?1 ORDER BY created_at, id")?;
    let rows = stmt.query_map([build], job_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn job(conn: &Connection, id: JobId) -> Result<Option<Job>> {
    Ok(conn
        .query_row("SELECT * FROM jobs WHERE id = ?1", [id], job_from_row)
        .optional()?)
}

/// The planned job spec (JSON) the runner executes.
pub fn job_spec(conn: &Connection, id: JobId) -> Result<String> {
    Ok(conn.query_row("SELECT spec FROM jobs WHERE id = ?1", [id], |r| r.get(0))?)
}

/// Queued jobs of every build, oldest first.
pub fn queued_jobs(conn: &Connection) -> Result<Vec<Job>> {
    let mut stmt =
        conn.prepare("SELECT * FROM jobs WHERE status = 'queued' ORDER BY created_at, id")?;
    let rows = stmt.query_map([], job_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Moves a job to `status`, stamping start and finish times.
pub fn set_job_status(
    conn: &Connection,
    id: JobId,
    status: Status,
    reason: Option<&str>,
) -> Result<()> {
    let now = now_ms();
    conn.execute(
        "UPDATE jobs SET status = ?2, reason = ?3,
                started_at = CASE WHEN ?2 = 'running' THEN ?4 ELSE started_at END,
                finished_at = CASE WHEN ?2 IN ('queued', 'running') THEN NULL ELSE ?4 END
         WHERE id = ?1",
        params![id, status, reason, now],
    )?;
    Ok(())
}

pub fn set_job_outputs(conn: &Connection, id: JobId, outputs: &serde_json::Value) -> Result<()> {
    conn.execute(
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
    conn.execute(
        "INSERT INTO steps (job_id, number, name, status, started_at, finished_at)
         VALUES (?1, ?2, ?3, ?4, CASE WHEN ?4 = 'running' THEN ?5 END, CASE WHEN ?4 IN ('queued', 'running') THEN NULL ELSE ?5 END)
         ON CONFLICT (job_id, number) DO UPDATE SET status = ?4,
             finished_at = CASE WHEN ?4 IN ('queued', 'running') THEN NULL ELSE ?5 END",
        params![job, number as i64, name, status, now],
    )?;
    Ok(())
}

pub fn steps(conn: &Connection, job: JobId) -> Result<Vec<Step>> {
    let mut stmt = conn.prepare("SELECT * FROM steps WHERE job_id = ?1 ORDER BY number")?;
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
    conn.execute(
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
    let mut stmt = conn.prepare("SELECT * FROM annotations WHERE job_id = ?1 ORDER BY id")?;
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
    let current: Status = conn.query_row("SELECT status FROM builds WHERE id = ?1", [id], |r| {
        r.get(0)
    })?;
    if current == Status::Invalid {
        return Ok(current);
    }
    let statuses: Vec<Status> = conn
        .prepare("SELECT status FROM jobs WHERE build_id = ?1")?
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
    conn.execute(
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
    conn.execute(
        "UPDATE jobs SET pgid = ?2, boot_time = ?3 WHERE id = ?1",
        params![id, pgid, boot_time],
    )?;
    Ok(())
}

/// Whether a Docker job was running when the agent stopped (and so may have
/// left its container behind).
pub fn docker_jobs_running(conn: &Connection) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM jobs WHERE status = 'running' AND executor = 'docker')",
        [],
        |r| r.get(0),
    )?)
}

/// Process groups of steps that were running when the agent stopped, if the
/// host has not rebooted since (after a reboot the ids mean other processes).
pub fn leftover_processes(conn: &Connection, boot_time: i64) -> Result<Vec<i32>> {
    let mut stmt = conn.prepare(
        "SELECT pgid FROM jobs WHERE status = 'running' AND pgid IS NOT NULL AND boot_time = ?1",
    )?;
    let rows = stmt.query_map([boot_time], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// After a crash: jobs that were running are marked `interrupted` and, on
/// their first attempt, queued again. Returns the builds touched.
pub fn recover(conn: &Connection) -> Result<Vec<BuildId>> {
    let running: Vec<(JobId, BuildId, i64)> = conn
        .prepare("SELECT id, build_id, attempt FROM jobs WHERE status = 'running'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut builds = Vec::new();
    for (job, build, attempt) in running {
        if attempt < 2 {
            conn.execute(
                "UPDATE jobs SET status = 'queued', attempt = attempt + 1, started_at = NULL, pgid = NULL,
                        reason = 'interrupted by an agent restart; queued again' WHERE id = ?1",
                [job],
            )?;
            conn.execute("DELETE FROM steps WHERE job_id = ?1", [job])?;
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
    Ok(conn.execute(
        "UPDATE events SET planned = 1 WHERE id = ?1 AND planned = 0",
        [event],
    )? == 1)
}

/// The builds planned for one event.
pub fn by_event(conn: &Connection, event: EventId) -> Result<Vec<Build>> {
    let sql = format!(
        "SELECT {BUILD_COLUMNS} FROM builds b JOIN repos r ON r.id = b.repo_id WHERE b.event_id = ?1 ORDER BY b.id"
    );
    let mut stmt = conn.prepare(&sql)?;
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
