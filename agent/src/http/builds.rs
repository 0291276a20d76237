//! Builds in the REST API: list, show, logs (plain or live SSE), cancel,
//! re-run, and manual runs.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use hangar_core::ids::{BuildId, JobId};
use hangar_core::repo_name::RepoName;
use hangar_core::store::builds::{self, Status};
use hangar_core::store::{events, repos};
use serde::Deserialize;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::api::{find_repo, json_body, json_reply};
use super::auth::{Caller, caller};
use super::error::{ApiError, ApiResult};
use crate::agent::Agent;
use crate::build::log;

pub fn routes(agent: Arc<Agent>) -> warp::filters::BoxedFilter<(Response,)> {
    let a = super::with_agent(agent.clone());
    let who = caller(agent);
    let base = super::api_v1;

    let list = base()
        .and(warp::path!("builds"))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .and(warp::query::<ListQuery>())
        .then(list);
    let show = base()
        .and(warp::path!("builds" / String))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .then(show);
    let log = base()
        .and(warp::path!("builds" / String / "jobs" / String / "log"))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .and(warp::query::<LogQuery>())
        .and(warp::header::optional::<u64>("last-event-id"))
        .then(job_log);
    let action = base()
        .and(warp::path!("builds" / String / String))
        .and(warp::post())
        .and(a.clone())
        .and(who.clone())
        .and(warp::query::<RerunQuery>())
        .then(action);
    let run = base()
        .and(warp::path!("repos" / String / String / "builds"))
        .and(warp::post())
        .and(a)
        .and(who)
        .and(json_body())
        .then(run);
    list.or(show)
        .unify()
        .or(log)
        .unify()
        .or(action)
        .unify()
        .or(run)
        .unify()
        .map(|r: ApiResult| r.unwrap_or_else(ApiError::into_response))
        .boxed()
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    repo: Option<String>,
    before: Option<String>,
    limit: Option<usize>,
}

fn parse_id<T: std::str::FromStr<Err = hangar_core::ids::InvalidId>>(
    text: &str,
) -> Result<T, ApiError> {
    text.parse()
        .map_err(|e: hangar_core::ids::InvalidId| ApiError::bad_request(e.to_string()))
}

async fn list(agent: Arc<Agent>, caller: Caller, query: ListQuery) -> ApiResult {
    let repo = match &query.repo {
        Some(name) => {
            let name = RepoName::parse(name)?;
            Some(
                find_repo(&agent, &caller, name.owner(), name.name())
                    .await?
                    .id,
            )
        }
        None => None,
    };
    let before = query
        .before
        .as_deref()
        .map(parse_id::<BuildId>)
        .transpose()?;
    let limit = query.limit.unwrap_or(30).clamp(1, 100);
    let (all, readable) = agent
        .db(move |a| {
            a.store.read(|c| {
                let all = builds::list(c, repo, before, limit)?;
                let mut readable = Vec::new();
                for b in &all {
                    readable.push(repos::get(c, b.repo_id)?.is_some_and(|r| caller.can_read(&r)));
                }
                Ok::<_, ApiError>((all, readable))
            })
        })
        .await?;
    let next = (all.len() == limit)
        .then(|| all.last().map(|b| b.id.to_string()))
        .flatten();
    let items: Vec<_> = all
        .into_iter()
        .zip(readable)
        .filter(|(_, ok)| *ok)
        .map(|(b, _)| b)
        .collect();
    json_reply(
        StatusCode::OK,
        &serde_json::json!({ "items": items, "next": next }),
    )
}

/// A build the caller may read, or 404.
pub(super) async fn readable_build(
    agent: &Arc<Agent>,
    caller: &Caller,
    id: &str,
) -> Result<builds::Build, ApiError> {
    let id: BuildId = parse_id(id)?;
    let caller = caller.clone();
    agent
        .db(move |a| {
            a.store.read(|c| {
                let build = builds::get(c, id)?;
                let visible = match &build {
                    Some(b) => repos::get(c, b.repo_id)?.is_some_and(|r| caller.can_read(&r)),
                    None => false,
                };
                Ok::<_, ApiError>(build.filter(|_| visible))
            })
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("build {id} not found")))
}

async fn show(id: String, agent: Arc<Agent>, caller: Caller) -> ApiResult {
    let build = readable_build(&agent, &caller, &id).await?;
    let build_id = build.id;
    let jobs = agent
        .db(move |a| {
            a.store.read(|c| {
                let mut out = Vec::new();
                for job in builds::jobs(c, build_id)? {
                    let mut value = serde_json::to_value(&job).map_err(ApiError::internal)?;
                    value["steps"] = serde_json::to_value(builds::steps(c, job.id)?)
                        .map_err(ApiError::internal)?;
                    value["annotations"] = serde_json::to_value(builds::annotations(c, job.id)?)
                        .map_err(ApiError::internal)?;
                    out.push(value);
                }
                Ok::<_, ApiError>(out)
            })
        })
        .await?;
    let mut value = serde_json::to_value(&build).map_err(ApiError::internal)?;
    value["jobs"] = jobs.into();
    json_reply(StatusCode::OK, &value)
}

#[derive(Debug, Deserialize)]
struct LogQuery {
    #[serde(default)]
    follow: u8,
    #[serde(default)]
    timestamps: u8,
}

async fn job_log(
    id: String,
    job: String,
    agent: Arc<Agent>,
    caller: Caller,
    query: LogQuery,
    last_seen: Option<u64>,
) -> ApiResult {
    let build = readable_build(&agent, &caller, &id).await?;
    let job: JobId = parse_id(&job)?;
    let found = agent
        .db(move |a| {
            a.store
                .read(|c| builds::job(c, job))
                .map_err(ApiError::from)
        })
        .await?;
    let job = found
        .filter(|j| j.build_id == build.id)
        .ok_or_else(|| ApiError::not_found(format!("job {job} not found in build {}", build.id)))?;
    let path = agent
        .data
        .root()
        .join("logs")
        .join(build.id.to_string())
        .join(format!("{}.log", job.id));
    let keep_stamps = query.timestamps == 1;
    let clean = move |line: &str| {
        if keep_stamps {
            line.to_owned()
        } else {
            log::strip_timestamp(line).to_owned()
        }
    };
    if query.follow == 0 {
        let lines = log::read_lines(&path).unwrap_or_default();
        let mut text: String = lines.iter().map(|l| clean(l) + "\n").collect();
        if text.is_empty() && !job.status.is_finished() {
            text.clear();
        }
        let mut response = Response::new(text.into());
        response.headers_mut().insert(
            "content-type",
            warp::http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return Ok(response);
    }
    // Live: subscribe before reading the file, then skip what the file had.
    let live = agent.builds.running(job.id).map(|r| r.log.subscribe());
    let stored = log::read_lines(&path).unwrap_or_default();
    let skip = last_seen.unwrap_or(0);
    let mut head = String::new();
    let mut sent = 0u64;
    for (i, line) in stored.iter().enumerate() {
        let number = i as u64 + 1;
        sent = number;
        if number > skip {
            head.push_str(&sse_line(number, &clean(line)));
        }
    }
    let first =
        futures_util::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(head)) });
    let rest = match live {
        Some(rx) => tokio_stream_from(rx, sent.max(skip)).left_stream(),
        None => futures_util::stream::empty().right_stream(),
    };
    let end =
        futures_util::stream::once(async { Ok(Bytes::from_static(b"event: end\ndata: \n\n")) });
    let mut response =
        warp::reply::Reply::into_response(warp::reply::stream(first.chain(rest).chain(end)));
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        warp::http::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        "cache-control",
        warp::http::HeaderValue::from_static("no-cache"),
    );
    Ok(response)
}

fn sse_line(number: u64, text: &str) -> String {
    // One `data:` field per line; a carriage return would end the field early.
    format!("id: {number}\ndata: {}\n\n", text.replace('\r', ""))
}

/// Live lines after `after`, until the job's log closes.
fn tokio_stream_from(
    rx: tokio::sync::broadcast::Receiver<log::Line>,
    after: u64,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static {
    let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
    futures_util::stream::unfold((rx, after), |(rx, after)| async move {
        loop {
            let received = rx.lock().await.recv().await;
            match received {
                Ok(line) if line.number <= after => continue,
                Ok(line) => {
                    let bytes = Bytes::from(sse_line(line.number, &line.text));
                    return Some((Ok(bytes), (rx, line.number)));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

#[derive(Debug, Deserialize)]
struct RerunQuery {
    #[serde(default)]
    failed: u8,
}

async fn action(
    id: String,
    verb: String,
    agent: Arc<Agent>,
    caller: Caller,
    query: RerunQuery,
) -> ApiResult {
    let build = readable_build(&agent, &caller, &id).await?;
    caller.require_write()?;
    let build_id = build.id;
    match verb.as_str() {
        "cancel" => {
            if build.status.is_finished() {
                return Err(ApiError::conflict(format!(
                    "build {build_id} already finished ({})",
                    build.status.as_str()
                )));
            }
            let jobs = agent
                .db(move |a| {
                    a.store.write(|tx| {
                        let jobs = builds::jobs(tx, build_id)?;
                        for job in jobs.iter().filter(|j| j.status == Status::Queued) {
                            builds::set_job_status(
                                tx,
                                job.id,
                                Status::Cancelled,
                                Some("cancelled before it started"),
                            )?;
                        }
                        builds::refresh_build(tx, build_id)?;
                        Ok::<_, ApiError>(jobs)
                    })
                })
                .await?;
            for job in jobs.iter().filter(|j| j.status == Status::Running) {
                if let Some(running) = agent.builds.running(job.id) {
                    running.cancel.cancel();
                }
            }
            json_reply(
                StatusCode::ACCEPTED,
                &serde_json::json!({ "id": build_id, "status": "cancelling" }),
            )
        }
        "rerun" => {
            let failed_only = query.failed == 1;
            let new = agent
                .db(move |a| {
                    a.store
                        .write(|tx| builds::rerun(tx, build_id, failed_only))
                        .map_err(ApiError::from)
                })
                .await?;
            agent.builds.wake();
            let new = new.ok_or_else(|| ApiError::not_found("build is gone"))?;
            let shown = agent
                .db(move |a| {
                    a.store
                        .read(|c| builds::get(c, new))
                        .map_err(ApiError::from)
                })
                .await?;
            json_reply(StatusCode::CREATED, &shown)
        }
        _ => Err(ApiError::not_found(format!(
            "no such action `{verb}`; use cancel or rerun"
        ))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    workflow: Option<String>,
    #[serde(default)]
    inputs: std::collections::BTreeMap<String, String>,
}

/// Runs the workflows with a `workflow_dispatch` trigger at a ref, now.
async fn run(
    owner: String,
    name: String,
    agent: Arc<Agent>,
    caller: Caller,
    body: RunRequest,
) -> ApiResult {
    let user = caller.require_write()?.id;
    let repo = find_repo(&agent, &caller, &owner, &name).await?;
    let path = crate::git::repos::path(&agent.data, &repo.name);
    let wanted = body.git_ref.unwrap_or_else(|| "main".to_owned());
    if wanted.starts_with('-') || wanted.len() > 256 {
        return Err(ApiError::bad_request(
            "`ref` must be a branch, tag or commit id",
        ));
    }
    let (git_ref, sha) = resolve_ref(&path, &wanted).ok_or_else(|| {
        ApiError::not_found(format!(
            "no branch, tag or commit {wanted:?} in {}",
            repo.name
        ))
    })?;
    let dispatch = crate::build::plan::Dispatch {
        git_ref,
        sha,
        workflow: body.workflow,
        inputs: body.inputs,
    };
    let payload = serde_json::to_value(&dispatch).map_err(ApiError::internal)?;
    let repo_id = repo.id;
    let event = agent
        .db(move |a| {
            a.store
                .write(|tx| events::record(tx, repo_id, "dispatch", Some(user), &payload))
                .map_err(ApiError::from)
        })
        .await?;
    crate::build::plan::plan_pending(&agent)
        .await
        .map_err(ApiError::internal)?;
    agent.builds.wake();
    let planned = agent
        .db(move |a| {
            a.store
                .read(|c| builds::by_event(c, event))
                .map_err(ApiError::from)
        })
        .await?;
    if planned.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_workflow",
            "no workflow at that commit has a `workflow_dispatch` trigger (matching --workflow, if given)",
        ));
    }
    json_reply(
        StatusCode::CREATED,
        &serde_json::json!({ "items": planned }),
    )
}

/// A branch, tag or commit id → (full ref name, commit id).
fn resolve_ref(path: &std::path::Path, wanted: &str) -> Option<(String, String)> {
    for candidate in [
        format!("refs/heads/{wanted}"),
        format!("refs/tags/{wanted}"),
    ] {
        if let Some(sha) = crate::git::read::ref_target(path, &candidate)
            .ok()
            .flatten()
        {
            return Some((candidate, sha));
        }
    }
    let commit = crate::git::read::commits(path, wanted, 1)
        .ok()?
        .into_iter()
        .next()?;
    Some((commit.id.clone(), commit.id))
}
