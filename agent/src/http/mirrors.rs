//! `/api/v1/mirrors...` and `/api/v1/mirror-credentials...`: thin adapters
//! over [`crate::mirror`]. Credential values go in, never out.

use std::sync::Arc;

use hangar_core::ids::SourceId;
use hangar_core::repo_name::RepoName;
use hangar_core::store::mirror_sources;
use hangar_core::store::mirrors::{self, Mirror};
use hangar_core::store::{now_ms, repos};
use serde::Deserialize;
use warp::Filter;
use warp::Reply as _;
use warp::http::StatusCode;
use warp::reply::Response;

use super::api::{json_body, json_reply};
use super::auth::{Caller, caller};
use super::error::{ApiError, ApiResult};
use crate::agent::Agent;
use crate::mirror::add::{self, AddError};
use crate::mirror::credentials::{self, Credential};
use crate::mirror::source;

pub fn routes(agent: Arc<Agent>) -> warp::filters::BoxedFilter<(Response,)> {
    let a = super::with_agent(agent.clone());
    let who = caller(agent);
    let base = super::api_v1;

    let list = base()
        .and(warp::path!("mirrors"))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .then(list);
    let add_pull = base()
        .and(warp::path!("mirrors"))
        .and(warp::post())
        .and(a.clone())
        .and(who.clone())
        .and(json_body())
        .then(add_pull);
    let add_push = base()
        .and(warp::path!("mirrors" / "push"))
        .and(warp::post())
        .and(a.clone())
        .and(who.clone())
        .and(json_body())
        .then(add_push);
    let show = base()
        .and(warp::path!("mirrors" / String / String))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .then(show);
    let remove = base()
        .and(warp::path!("mirrors" / String / String))
        .and(warp::delete())
        .and(a.clone())
        .and(who.clone())
        .then(remove);
    let action = base()
        .and(warp::path!("mirrors" / String / String / String))
        .and(warp::post())
        .and(a.clone())
        .and(who.clone())
        .then(action);
    let list_credentials = base()
        .and(warp::path!("mirror-credentials"))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .then(list_credentials);
    let set_credential = base()
        .and(warp::path!("mirror-credentials" / String))
        .and(warp::put())
        .and(a.clone())
        .and(who.clone())
        .and(json_body())
        .then(set_credential);
    let remove_credential = base()
        .and(warp::path!("mirror-credentials" / String))
        .and(warp::delete())
        .and(a.clone())
        .and(who.clone())
        .then(remove_credential);
    let list_sources = base()
        .and(warp::path!("mirror-sources"))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .then(list_sources);
    let add_source = base()
        .and(warp::path!("mirror-sources"))
        .and(warp::post())
        .and(a.clone())
        .and(who.clone())
        .and(json_body())
        .then(add_source);
    let show_source = base()
        .and(warp::path!("mirror-sources" / String))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .then(show_source);
    let poll_source = base()
        .and(warp::path!("mirror-sources" / String / "poll"))
        .and(warp::post())
        .and(a.clone())
        .and(who.clone())
        .then(poll_source);
    let remove_source = base()
        .and(warp::path!("mirror-sources" / String))
        .and(warp::delete())
        .and(a)
        .and(who)
        .then(remove_source);

    list.or(add_pull)
        .unify()
        .or(add_push)
        .unify()
        .or(show)
        .unify()
        .or(remove)
        .unify()
        .or(action)
        .unify()
        .or(list_credentials)
        .unify()
        .or(set_credential)
        .unify()
        .or(remove_credential)
        .unify()
        .or(list_sources)
        .unify()
        .or(add_source)
        .unify()
        .or(show_source)
        .unify()
        .or(poll_source)
        .unify()
        .or(remove_source)
        .unify()
        .map(|r: ApiResult| r.unwrap_or_else(ApiError::into_response))
        .boxed()
}

impl From<AddError> for ApiError {
    fn from(e: AddError) -> Self {
        match e {
            AddError::Invalid(m) => ApiError::bad_request(m),
            AddError::Conflict(m) => ApiError::conflict(m),
            AddError::NotFound(m) => ApiError::not_found(m),
            AddError::Internal(e) => ApiError::internal(e),
        }
    }
}

/// A mirror as the API shows it: its row, the local clone URL, and how old
/// the last success is.
fn mirror_json(agent: &Agent, mirror: &Mirror) -> serde_json::Value {
    let mut value = serde_json::to_value(mirror).unwrap_or_default();
    value["clone_url"] = format!("{}/{}.git", agent.url, mirror.repo).into();
    value["last_success_age_secs"] = mirror
        .last_success
        .map(|t| ((now_ms() - t) / 1000).max(0))
        .into();
    value
}

async fn find(
    agent: &Arc<Agent>,
    caller: &Caller,
    owner: &str,
    name: &str,
) -> Result<Mirror, ApiError> {
    let name = RepoName::parse(&format!("{owner}/{name}"))?;
    let lookup = name.clone();
    let found = agent
        .db(move |a| {
            a.store.read(|c| {
                let Some(repo) = repos::by_name(c, &lookup)? else {
                    return Ok(None);
                };
                Ok::<_, ApiError>(mirrors::get(c, repo.id)?.map(|m| (repo, m)))
            })
        })
        .await?;
    match found {
        Some((repo, mirror)) if caller.can_read(&repo) => Ok(mirror),
        _ => Err(ApiError::not_found(format!(
            "{name} is not a mirror (see `hangar mirror list`)"
        ))),
    }
}

async fn list(agent: Arc<Agent>, caller: Caller) -> ApiResult {
    caller.require()?;
    let all = agent
        .db(|a| a.store.read(mirrors::list).map_err(ApiError::from))
        .await?;
    let items: Vec<_> = all.iter().map(|m| mirror_json(&agent, m)).collect();
    json_reply(StatusCode::OK, &serde_json::json!({ "items": items }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPull {
    url: String,
    name: Option<String>,
    interval_secs: Option<u64>,
    #[serde(default)]
    public: bool,
    #[serde(default)]
    allow_http: bool,
}

async fn add_pull(agent: Arc<Agent>, caller: Caller, body: NewPull) -> ApiResult {
    caller.require_write()?;
    let mirror = add::pull(
        &agent,
        add::PullMirror {
            url: body.url,
            name: body.name,
            interval_secs: body.interval_secs,
            public: body.public,
            allow_http: body.allow_http,
        },
    )
    .await?;
    json_reply(StatusCode::CREATED, &mirror_json(&agent, &mirror))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPush {
    repo: String,
    url: String,
    branches: Option<String>,
    interval_secs: Option<u64>,
    #[serde(default)]
    allow_http: bool,
}

async fn add_push(agent: Arc<Agent>, caller: Caller, body: NewPush) -> ApiResult {
    caller.require_write()?;
    let name = RepoName::parse(&body.repo)?;
    let mirror = add::push(
        &agent,
        &name,
        &body.url,
        body.branches,
        body.interval_secs,
        body.allow_http,
    )
    .await?;
    json_reply(StatusCode::CREATED, &mirror_json(&agent, &mirror))
}

async fn show(owner: String, name: String, agent: Arc<Agent>, caller: Caller) -> ApiResult {
    let mirror = find(&agent, &caller, &owner, &name).await?;
    json_reply(StatusCode::OK, &mirror_json(&agent, &mirror))
}

async fn remove(owner: String, name: String, agent: Arc<Agent>, caller: Caller) -> ApiResult {
    caller.require_write()?;
    let mirror = find(&agent, &caller, &owner, &name).await?;
    let id = mirror.repo_id;
    agent
        .db(move |a| {
            a.store
                .write(|tx| mirrors::delete(tx, id))
                .map_err(ApiError::from)
        })
        .await?;
    Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
}

/// `sync` (now), `pause`, `resume`.
async fn action(
    owner: String,
    name: String,
    action: String,
    agent: Arc<Agent>,
    caller: Caller,
) -> ApiResult {
    caller.require_write()?;
    let mirror = find(&agent, &caller, &owner, &name).await?;
    let id = mirror.repo_id;
    match action.as_str() {
        "sync" => {
            let requested = agent
                .db(move |a| {
                    a.store
                        .write(|tx| mirrors::request_now(tx, id))
                        .map_err(ApiError::from)
                })
                .await?;
            if !requested {
                return Err(ApiError::conflict(format!(
                    "{} is {}; resume it first with `hangar mirror resume {}`",
                    mirror.repo,
                    mirror.state.as_str(),
                    mirror.repo
                )));
            }
        }
        "pause" => {
            agent
                .db(move |a| {
                    a.store
                        .write(|tx| mirrors::pause(tx, id))
                        .map_err(ApiError::from)
                })
                .await?
        }
        "resume" => {
            agent
                .db(move |a| {
                    a.store
                        .write(|tx| mirrors::resume(tx, id))
                        .map_err(ApiError::from)
                })
                .await?
        }
        _ => {
            return Err(ApiError::not_found(format!(
                "no such action {action:?}; use sync, pause or resume"
            )));
        }
    }
    agent.mirrors.wake();
    let mirror = find(&agent, &caller, &owner, &name).await?;
    json_reply(StatusCode::OK, &mirror_json(&agent, &mirror))
}

async fn list_credentials(agent: Arc<Agent>, caller: Caller) -> ApiResult {
    caller.require_admin()?;
    let list = agent
        .db(|a| credentials::list(a.secrets.as_ref()).map_err(ApiError::internal))
        .await?;
    let items: Vec<_> = list
        .into_iter()
        .map(|(host, kind)| serde_json::json!({ "host": host, "kind": kind }))
        .collect();
    json_reply(StatusCode::OK, &serde_json::json!({ "items": items }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCredential {
    token: Option<String>,
    username: Option<String>,
    ssh_key: Option<String>,
}

async fn set_credential(
    host: String,
    agent: Arc<Agent>,
    caller: Caller,
    body: NewCredential,
) -> ApiResult {
    caller.require_admin()?;
    let host = credentials::check_host(&host).map_err(ApiError::bad_request)?;
    let credential = match (body.token, body.ssh_key) {
        (Some(token), None) => {
            let token = token.trim().to_owned();
            let username = body.username.unwrap_or_else(|| "x-access-token".to_owned());
            if token.is_empty() || token.len() > 4096 || token.chars().any(char::is_control) {
                return Err(ApiError::bad_request(
                    "the token is empty, too long, or has control characters",
                ));
            }
            if username.is_empty()
                || username.contains(':')
                || username.chars().any(char::is_control)
            {
                return Err(ApiError::bad_request(
                    "the user name may not be empty or contain `:`",
                ));
            }
            Credential::Token { username, token }
        }
        (None, Some(key)) => {
            if !key.contains("PRIVATE KEY-----") || key.len() > 64 * 1024 {
                return Err(ApiError::bad_request(
                    "the SSH key must be a private key file (-----BEGIN ... PRIVATE KEY-----)",
                ));
            }
            Credential::SshKey { key }
        }
        _ => {
            return Err(ApiError::bad_request(
                "send either `token` (with an optional `username`) or `ssh_key`",
            ));
        }
    };
    let kind = credential.kind();
    let shown = host.clone();
    agent
        .db(move |a| {
            credentials::set(a.secrets.as_ref(), &host, &credential).map_err(ApiError::internal)
        })
        .await?;
    json_reply(
        StatusCode::OK,
        &serde_json::json!({ "host": shown, "kind": kind }),
    )
}

async fn remove_credential(host: String, agent: Arc<Agent>, caller: Caller) -> ApiResult {
    caller.require_admin()?;
    let host = credentials::check_host(&host).map_err(ApiError::bad_request)?;
    let shown = host.clone();
    let existed = agent
        .db(move |a| credentials::remove(a.secrets.as_ref(), &host).map_err(ApiError::internal))
        .await?;
    if !existed {
        return Err(ApiError::not_found(format!("no credential for {shown}")));
    }
    Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
}

/// A sync source as the API shows it: its row and `spec` (`github:mona`).
fn source_json(found: &mirror_sources::Source) -> serde_json::Value {
    let mut value = serde_json::to_value(found).unwrap_or_default();
    value["spec"] = format!("{}:{}", found.provider.as_str(), found.target).into();
    value
}

async fn list_sources(agent: Arc<Agent>, caller: Caller) -> ApiResult {
    caller.require_admin()?;
    let all = agent
        .db(|a| a.store.read(mirror_sources::list).map_err(ApiError::from))
        .await?;
    let items: Vec<_> = all.iter().map(source_json).collect();
    json_reply(StatusCode::OK, &serde_json::json!({ "items": items }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSource {
    /// `starred` or `org`.
    kind: String,
    spec: String,
    forge: Option<String>,
    interval_secs: Option<u64>,
    #[serde(default)]
    public: bool,
    #[serde(default)]
    delete_missing: bool,
}

async fn add_source(agent: Arc<Agent>, caller: Caller, body: NewSource) -> ApiResult {
    caller.require_admin()?;
    let kind = mirror_sources::SourceKind::parse(&body.kind).ok_or_else(|| {
        ApiError::bad_request(format!(
            "kind {:?} is not valid: use starred or org",
            body.kind
        ))
    })?;
    let created = source::add(
        &agent,
        source::NewSync {
            kind,
            spec: body.spec,
            forge: body.forge,
            interval_secs: body.interval_secs,
            public: body.public,
            delete_missing: body.delete_missing,
        },
    )
    .await?;
    json_reply(StatusCode::CREATED, &source_json(&created))
}

async fn find_source(
    agent: &Arc<Agent>,
    caller: &Caller,
    id: &str,
) -> Result<mirror_sources::Source, ApiError> {
    caller.require_admin()?;
    let missing =
        || ApiError::not_found(format!("no sync source {id} (see `hangar mirror sources`)"));
    let id: SourceId = id.parse().map_err(|_| missing())?;
    agent
        .db(move |a| {
            a.store
                .read(|c| mirror_sources::get(c, id))
                .map_err(ApiError::from)
        })
        .await?
        .ok_or_else(missing)
}

async fn show_source(id: String, agent: Arc<Agent>, caller: Caller) -> ApiResult {
    let found = find_source(&agent, &caller, &id).await?;
    json_reply(StatusCode::OK, &source_json(&found))
}

/// Polls now (the forge still answers 304 when nothing changed).
async fn poll_source(id: String, agent: Arc<Agent>, caller: Caller) -> ApiResult {
    let found = find_source(&agent, &caller, &id).await?;
    let id = found.id;
    agent
        .db(move |a| {
            a.store
                .write(|tx| mirror_sources::request_now(tx, id))
                .map_err(ApiError::from)
        })
        .await?;
    agent.mirrors.wake();
    json_reply(StatusCode::OK, &source_json(&found))
}

/// Stops following the list; the mirrors it made stay.
async fn remove_source(id: String, agent: Arc<Agent>, caller: Caller) -> ApiResult {
    let found = find_source(&agent, &caller, &id).await?;
    let id = found.id;
    agent
        .db(move |a| {
            a.store
                .write(|tx| mirror_sources::delete(tx, id))
                .map_err(ApiError::from)
        })
        .await?;
    Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
}
