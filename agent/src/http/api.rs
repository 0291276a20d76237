//! The REST API under `/api/v1`: the one contract of the CLI, UI and tests.

use std::sync::Arc;

use hangar_core::ids::{SshKeyId, TokenId};
use hangar_core::repo_name::RepoName;
use hangar_core::store::users::{self, Role};
use hangar_core::store::{events, repos, ssh_keys, tokens};
use serde::Deserialize;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::auth::{Caller, caller};
use super::error::{ApiError, ApiResult};
use crate::agent::Agent;

/// Largest JSON body the API accepts.
const MAX_JSON: u64 = 64 * 1024;
const MAX_PAGE: usize = 100;

pub fn routes(agent: Arc<Agent>) -> warp::filters::BoxedFilter<(Response,)> {
    let a = super::with_agent(agent.clone());
    let who = caller(agent);
    let base = super::api_v1;

    let openapi = base()
        .and(warp::path!("openapi.json"))
        .and(warp::get())
        .map(|| warp::reply::json(&super::openapi::document()).into_response());
    let status = base()
        .and(warp::path!("status"))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .then(status);
    let list_repos = base()
        .and(warp::path!("repos"))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .and(warp::query::<Page>())
        .then(list_repos);
    let create_repo = base()
        .and(warp::path!("repos"))
        .and(warp::post())
        .and(a.clone())
        .and(who.clone())
        .and(json_body())
        .then(create_repo);
    let get_repo = base()
        .and(warp::path!("repos" / String / String))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .then(get_repo);
    let delete_repo = base()
        .and(warp::path!("repos" / String / String))
        .and(warp::delete())
        .and(a.clone())
        .and(who.clone())
        .then(delete_repo);
    let repo_part = base()
        .and(warp::path!("repos" / String / String / String))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .and(warp::query::<Page>())
        .then(repo_part);
    let list_tokens = base()
        .and(warp::path!("tokens"))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .then(list_tokens);
    let create_token = base()
        .and(warp::path!("tokens"))
        .and(warp::post())
        .and(a.clone())
        .and(who.clone())
        .and(json_body())
        .then(create_token);
    let revoke_token = base()
        .and(warp::path!("tokens" / String))
        .and(warp::delete())
        .and(a.clone())
        .and(who.clone())
        .then(revoke_token);
    let list_keys = base()
        .and(warp::path!("keys"))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .and(warp::query::<KeyQuery>())
        .then(list_keys);
    let add_key = base()
        .and(warp::path!("keys"))
        .and(warp::post())
        .and(a.clone())
        .and(who.clone())
        .and(json_body())
        .then(add_key);
    let remove_key = base()
        .and(warp::path!("keys" / String))
        .and(warp::delete())
        .and(a.clone())
        .and(who.clone())
        .then(remove_key);
    let list_users = base()
        .and(warp::path!("users"))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .then(list_users);
    let create_user = base()
        .and(warp::path!("users"))
        .and(warp::post())
        .and(a)
        .and(who)
        .and(json_body())
        .then(create_user);

    let handled = status
        .or(list_repos)
        .unify()
        .or(create_repo)
        .unify()
        .or(get_repo)
        .unify()
        .or(delete_repo)
        .unify()
        .or(repo_part)
        .unify()
        .or(list_tokens)
        .unify()
        .or(create_token)
        .unify()
        .or(revoke_token)
        .unify()
        .or(list_keys)
        .unify()
        .or(add_key)
        .unify()
        .or(remove_key)
        .unify()
        .or(list_users)
        .unify()
        .or(create_user)
        .unify()
        .map(|r: ApiResult| r.unwrap_or_else(ApiError::into_response));
    openapi.or(handled).unify().boxed()
}

use warp::Reply as _;

pub(super) fn json_body<T: serde::de::DeserializeOwned + Send>()
-> impl Filter<Extract = (T,), Error = warp::Rejection> + Copy {
    warp::body::content_length_limit(MAX_JSON).and(warp::body::json())
}

pub(crate) fn json_reply(status: StatusCode, value: &impl serde::Serialize) -> ApiResult {
    Ok(warp::reply::with_status(warp::reply::json(value), status).into_response())
}

/// Paging: `limit` items after the cursor `after` (repos) or from `offset` (commits).
#[derive(Debug, Deserialize)]
struct Page {
    limit: Option<usize>,
    after: Option<String>,
    offset: Option<usize>,
    #[serde(rename = "ref")]
    reference: Option<String>,
}

impl Page {
    fn limit(&self) -> usize {
        self.limit.unwrap_or(30).clamp(1, MAX_PAGE)
    }
}

async fn status(agent: Arc<Agent>, caller: Caller) -> ApiResult {
    let user = caller.require()?.clone();
    let counts = agent
        .db(|a| {
            a.store.read(|c| {
                let repos: i64 = c.query_row("SELECT COUNT(*) FROM repos", [], |r| r.get(0))?;
                let users: i64 = c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?;
                Ok::<_, ApiError>((repos, users))
            })
        })
        .await?;
    json_reply(
        StatusCode::OK,
        &serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "url": agent.url,
            "http": agent.settings.http.to_string(),
            "ssh": agent.ssh.as_ref().map(|s| s.addr.to_string()),
            "ssh_url": agent.ssh.as_ref().map(|s| s.url()),
            "ssh_host_key_fingerprint": agent.ssh.as_ref().map(|s| s.fingerprint.clone()),
            "uptime_secs": agent.started.elapsed().as_secs(),
            "data_dir": agent.data.root().display().to_string(),
            "repos": counts.0,
            "users": counts.1,
            "you": { "name": user.name, "role": user.role },
        }),
    )
}

/// A repository the caller may see; anything else is a 404 that does not
/// reveal whether a private repository exists.
pub(super) async fn find_repo(
    agent: &Arc<Agent>,
    caller: &Caller,
    owner: &str,
    name: &str,
) -> Result<repos::Repo, ApiError> {
    let name = RepoName::parse(&format!("{owner}/{name}"))?;
    let lookup = name.clone();
    let repo = agent
        .db(move |a| {
            a.store
                .read(|c| repos::by_name(c, &lookup))
                .map_err(ApiError::from)
        })
        .await?;
    match repo {
        Some(repo) if caller.can_read(&repo) => Ok(repo),
        _ => Err(ApiError::not_found(format!("repository {name} not found"))),
    }
}

fn repo_json(agent: &Agent, repo: &repos::Repo) -> serde_json::Value {
    let mut value = serde_json::to_value(repo).unwrap_or_default();
    value["clone_url"] = format!("{}/{}.git", agent.url, repo.name).into();
    if let Some(ssh) = &agent.ssh {
        value["ssh_clone_url"] = format!("{}/{}.git", ssh.url(), repo.name).into();
    }
    value
}

async fn list_repos(agent: Arc<Agent>, caller: Caller, page: Page) -> ApiResult {
    let after = page.after.as_deref().map(RepoName::parse).transpose()?;
    let limit = page.limit();
    let all = agent
        .db(move |a| {
            a.store
                .read(|c| repos::list(c, after.as_ref(), limit))
                .map_err(ApiError::from)
        })
        .await?;
    let next = (all.len() == limit)
        .then(|| all.last().map(|r| r.name.to_string()))
        .flatten();
    let items: Vec<_> = all
        .iter()
        .filter(|r| caller.can_read(r))
        .map(|r| repo_json(&agent, r))
        .collect();
    json_reply(
        StatusCode::OK,
        &serde_json::json!({ "items": items, "next": next }),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRepo {
    name: String,
    #[serde(default)]
    public: bool,
    #[serde(default)]
    description: String,
}

async fn create_repo(agent: Arc<Agent>, caller: Caller, body: NewRepo) -> ApiResult {
    caller.require_write()?;
    let name = RepoName::parse(&body.name)?;
    if body.description.len() > 1000 {
        return Err(ApiError::bad_request(
            "description is longer than 1000 characters",
        ));
    }
    let lookup = name.clone();
    if agent
        .db(move |a| {
            a.store
                .read(|c| repos::by_name(c, &lookup))
                .map_err(ApiError::from)
        })
        .await?
        .is_some()
    {
        return Err(ApiError::conflict(format!(
            "repository {name} already exists"
        )));
    }
    let path = crate::git::repos::path(&agent.data, &name);
    crate::git::repos::init(&path)
        .await
        .map_err(|e| ApiError::conflict(e.to_string()))?;
    let created = {
        let name = name.clone();
        agent
            .db(move |a| {
                a.store.write(|tx| {
                    if repos::by_name(tx, &name)?.is_some() {
                        return Ok(None);
                    }
                    Ok::<_, ApiError>(Some(repos::create(
                        tx,
                        &name,
                        body.public,
                        &body.description,
                    )?))
                })
            })
            .await
    };
    match created {
        Ok(Some(repo)) => json_reply(StatusCode::CREATED, &repo_json(&agent, &repo)),
        failed => {
            let _ = crate::git::repos::remove(&path).await;
            failed?;
            Err(ApiError::conflict(format!(
                "repository {name} already exists"
            )))
        }
    }
}

async fn get_repo(owner: String, name: String, agent: Arc<Agent>, caller: Caller) -> ApiResult {
    let repo = find_repo(&agent, &caller, &owner, &name).await?;
    json_reply(StatusCode::OK, &repo_json(&agent, &repo))
}

async fn delete_repo(owner: String, name: String, agent: Arc<Agent>, caller: Caller) -> ApiResult {
    caller.require_admin()?;
    let repo = find_repo(&agent, &caller, &owner, &name).await?;
    let id = repo.id;
    agent
        .db(move |a| {
            a.store
                .write(|tx| repos::delete(tx, id))
                .map_err(ApiError::from)
        })
        .await?;
    crate::git::repos::remove_deleted(&agent, id, &repo.name)
        .await
        .map_err(ApiError::internal)?;
    Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
}

async fn repo_part(
    owner: String,
    name: String,
    part: String,
    agent: Arc<Agent>,
    caller: Caller,
    page: Page,
) -> ApiResult {
    let repo = find_repo(&agent, &caller, &owner, &name).await?;
    let path = crate::git::repos::path(&agent.data, &repo.name);
    let limit = page.limit();
    match part.as_str() {
        "branches" | "tags" => {
            let prefix = if part == "branches" {
                "refs/heads/"
            } else {
                "refs/tags/"
            };
            let refs = tokio::task::spawn_blocking(move || crate::git::read::refs(&path, prefix))
                .await??;
            json_reply(StatusCode::OK, &serde_json::json!({ "items": refs }))
        }
        "commits" => {
            let offset = page.offset.unwrap_or(0).min(100_000);
            let start = page.reference.unwrap_or_else(|| "HEAD".to_owned());
            if start.starts_with('-') || start.len() > 256 {
                return Err(ApiError::bad_request(
                    "`ref` must be a branch, tag or commit id",
                ));
            }
            if crate::git::read::head_target(&path)?.is_some()
                && start == "HEAD"
                && crate::git::read::ref_target(&path, "HEAD")?.is_none()
            {
                return json_reply(
                    StatusCode::OK,
                    &serde_json::json!({ "items": [], "next_offset": null }),
                );
            }
            let commits = tokio::task::spawn_blocking(move || {
                crate::git::read::commits(&path, &start, offset + limit)
            })
            .await?
            .map_err(|e| ApiError::not_found(e.to_string()))?;
            let full = commits.len() == offset + limit;
            let items: Vec<_> = commits.into_iter().skip(offset).collect();
            let next = full.then_some(offset + limit);
            json_reply(
                StatusCode::OK,
                &serde_json::json!({ "items": items, "next_offset": next }),
            )
        }
        "workflows" => {
            let found = tokio::task::spawn_blocking(move || workflows_at_head(&path)).await??;
            json_reply(StatusCode::OK, &serde_json::json!({ "items": found }))
        }
        "events" => {
            let id = repo.id;
            let events = agent
                .db(move |a| {
                    a.store
                        .read(|c| events::list(c, id, limit))
                        .map_err(ApiError::from)
                })
                .await?;
            json_reply(StatusCode::OK, &serde_json::json!({ "items": events }))
        }
        _ => Err(ApiError::not_found(format!(
            "no such endpoint /repos/{owner}/{name}/{part}"
        ))),
    }
}

/// The workflow files at HEAD, each with its name, jobs and triggers, or
/// the errors that keep it from running.
fn workflows_at_head(path: &std::path::Path) -> Result<Vec<serde_json::Value>, ApiError> {
    let Some(sha) = crate::git::read::ref_target(path, "HEAD")? else {
        return Ok(Vec::new());
    };
    let files = crate::git::read::workflow_files(path, &sha)?;
    Ok(hangar_core::workflow::discover(&files)
        .into_iter()
        .map(|parsed| match parsed {
            Ok(wf) => {
                let on = &wf.on;
                let triggers: Vec<&str> = [
                    ("push", on.push.is_some()),
                    ("pull_request", on.pull_request.is_some()),
                    ("workflow_dispatch", on.workflow_dispatch.is_some()),
                    ("schedule", !on.schedule.is_empty()),
                ]
                .into_iter()
                .filter_map(|(name, set)| set.then_some(name))
                .collect();
                serde_json::json!({
                    "file": wf.file,
                    "name": wf.name,
                    "triggers": triggers,
                    "jobs": wf.jobs.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
                    "errors": [],
                })
            }
            Err(e) => serde_json::json!({
                "file": e.file,
                "name": null,
                "triggers": [],
                "jobs": [],
                "errors": e.diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }),
        })
        .collect())
}

async fn list_tokens(agent: Arc<Agent>, caller: Caller) -> ApiResult {
    let user = caller.require()?.id;
    let list = agent
        .db(move |a| {
            a.store
                .read(|c| tokens::list(c, Some(user)))
                .map_err(ApiError::from)
        })
        .await?;
    json_reply(StatusCode::OK, &serde_json::json!({ "items": list }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
}

fn check_label(what: &str, text: &str) -> Result<(), ApiError> {
    if text.trim().is_empty() || text.len() > 100 || text.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "{what} must be 1-100 printable characters"
        )));
    }
    Ok(())
}

async fn create_token(agent: Arc<Agent>, caller: Caller, body: NewToken) -> ApiResult {
    let user = caller.require()?.id;
    check_label("token name", &body.name)?;
    let (info, secret) = agent
        .db(move |a| {
            a.store
                .write(|tx| tokens::create(tx, user, &body.name))
                .map_err(ApiError::from)
        })
        .await?;
    let mut value = serde_json::to_value(info).map_err(ApiError::internal)?;
    value["token"] = secret.into();
    json_reply(StatusCode::CREATED, &value)
}

async fn revoke_token(id: String, agent: Arc<Agent>, caller: Caller) -> ApiResult {
    let user = caller.require()?.clone();
    let id: TokenId = id
        .parse()
        .map_err(|e: hangar_core::ids::InvalidId| ApiError::bad_request(e.to_string()))?;
    let found = agent
        .db(move |a| a.store.read(|c| tokens::get(c, id)).map_err(ApiError::from))
        .await?;
    match found {
        Some(token) if token.user_id == user.id || user.role == Role::Admin => {
            agent
                .db(move |a| {
                    a.store
                        .write(|tx| tokens::revoke(tx, id))
                        .map_err(ApiError::from)
                })
                .await?;
            Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
        }
        _ => Err(ApiError::not_found(format!("token {id} not found"))),
    }
}

#[derive(Debug, Deserialize)]
struct KeyQuery {
    /// `?all=true`: every user's keys (admins only).
    #[serde(default)]
    all: bool,
}

async fn list_keys(agent: Arc<Agent>, caller: Caller, query: KeyQuery) -> ApiResult {
    let user = if query.all {
        caller.require_admin()?;
        None
    } else {
        Some(caller.require()?.id)
    };
    let list = agent
        .db(move |a| {
            a.store
                .read(|c| ssh_keys::list(c, user))
                .map_err(ApiError::from)
        })
        .await?;
    json_reply(StatusCode::OK, &serde_json::json!({ "items": list }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    /// The OpenSSH public key line (`ssh-ed25519 AAAA... comment`).
    key: String,
    /// A label; the key's comment when absent.
    name: Option<String>,
}

async fn add_key(agent: Arc<Agent>, caller: Caller, body: NewKey) -> ApiResult {
    let user = caller.require()?.clone();
    let parsed = ssh_keys::parse(&body.key).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let name = match body.name {
        Some(name) => name,
        None if !parsed.comment.trim().is_empty() => parsed.comment.chars().take(100).collect(),
        None => format!("{} key", parsed.algorithm),
    };
    check_label("key name", &name)?;
    let created = agent
        .db(move |a| {
            a.store.write(|tx| {
                if let Some(existing) = ssh_keys::by_fingerprint(tx, &parsed.fingerprint)? {
                    return Ok(Err(existing));
                }
                Ok::<_, ApiError>(Ok(ssh_keys::create(tx, &user, &name, &parsed)?))
            })
        })
        .await?;
    match created {
        Ok(key) => json_reply(StatusCode::CREATED, &key),
        Err(existing) => Err(ApiError::conflict(format!(
            "this key ({}) is already added{}; a key can belong to one user only",
            existing.fingerprint,
            if existing.user_id == caller.require()?.id {
                format!(" as {}", existing.id)
            } else {
                " by another user".to_owned()
            }
        ))),
    }
}

async fn remove_key(id: String, agent: Arc<Agent>, caller: Caller) -> ApiResult {
    let user = caller.require()?.clone();
    let id: SshKeyId = id
        .parse()
        .map_err(|e: hangar_core::ids::InvalidId| ApiError::bad_request(e.to_string()))?;
    let removed = agent
        .db(move |a| {
            a.store.write(|tx| match ssh_keys::get(tx, id)? {
                Some(key) if key.user_id == user.id || user.role == Role::Admin => {
                    Ok::<_, ApiError>(ssh_keys::delete(tx, id)?)
                }
                _ => Ok(false),
            })
        })
        .await?;
    if !removed {
        return Err(ApiError::not_found(format!("key {id} not found")));
    }
    Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
}

async fn list_users(agent: Arc<Agent>, caller: Caller) -> ApiResult {
    caller.require_admin()?;
    let list = agent
        .db(|a| a.store.read(users::list).map_err(ApiError::from))
        .await?;
    json_reply(StatusCode::OK, &serde_json::json!({ "items": list }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    #[serde(default = "member")]
    role: Role,
}

fn member() -> Role {
    Role::Member
}

/// Creates a user and a first token for them (shown once), for the admin to hand over.
async fn create_user(agent: Arc<Agent>, caller: Caller, body: NewUser) -> ApiResult {
    caller.require_admin()?;
    if !users::valid_name(&body.name) {
        return Err(ApiError::bad_request(
            "user names are 1-64 letters, digits, `.`, `_` or `-`, not starting with `.` or `-`",
        ));
    }
    let name = body.name.clone();
    let created = agent
        .db(move |a| {
            a.store.write(|tx| {
                if users::by_name(tx, &body.name)?.is_some() {
                    return Ok(None);
                }
                let user = users::create(tx, &body.name, body.role)?;
                let (_, secret) = tokens::create(tx, user.id, "first token")?;
                Ok::<_, ApiError>(Some((user, secret)))
            })
        })
        .await?;
    let Some((user, secret)) = created else {
        return Err(ApiError::conflict(format!("user {name} already exists")));
    };
    let mut value = serde_json::to_value(user).map_err(ApiError::internal)?;
    value["token"] = secret.into();
    json_reply(StatusCode::CREATED, &value)
}
