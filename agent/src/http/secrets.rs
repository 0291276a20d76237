//! `/api/v1/secrets...` (global, admin) and `/api/v1/repos/{owner}/{name}/secrets...`
//! (one repository, write access): thin adapters over [`crate::build::secrets`].
//! Values go in, never out.

use std::sync::Arc;

use serde::Deserialize;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply as _};

use super::api::{find_repo, json_reply};
use super::auth::{Caller, caller};
use super::error::{ApiError, ApiResult};
use crate::agent::Agent;
use crate::build::secrets::{self, Scope};

/// A value may be 48 KiB; JSON escaping can make it a few times longer.
const MAX_BODY: u64 = 512 * 1024;

pub fn routes(agent: Arc<Agent>) -> warp::filters::BoxedFilter<(Response,)> {
    let a = super::with_agent(agent.clone());
    let who = caller(agent);
    let base = super::api_v1;
    let body = || warp::body::content_length_limit(MAX_BODY).and(warp::body::json());

    let list_global = base()
        .and(warp::path!("secrets"))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .then(|agent: Arc<Agent>, caller: Caller| async move {
            caller.require_admin()?;
            list(agent, None).await
        });
    let set_global = base()
        .and(warp::path!("secrets" / String))
        .and(warp::put())
        .and(a.clone())
        .and(who.clone())
        .and(body())
        .then(
            |name: String, agent: Arc<Agent>, caller: Caller, body: NewSecret| async move {
                caller.require_admin()?;
                set(agent, Scope::Global, None, name, body).await
            },
        );
    let remove_global = base()
        .and(warp::path!("secrets" / String))
        .and(warp::delete())
        .and(a.clone())
        .and(who.clone())
        .then(
            |name: String, agent: Arc<Agent>, caller: Caller| async move {
                caller.require_admin()?;
                remove(agent, Scope::Global, name).await
            },
        );
    let list_repo = base()
        .and(warp::path!("repos" / String / String / "secrets"))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .then(
            |owner: String, name: String, agent: Arc<Agent>, caller: Caller| async move {
                let (repo, _) = writable_repo(&agent, &caller, &owner, &name).await?;
                list(agent, Some(repo)).await
            },
        );
    let set_repo = base()
        .and(warp::path!("repos" / String / String / "secrets" / String))
        .and(warp::put())
        .and(a.clone())
        .and(who.clone())
        .and(body())
        .then(
            |owner: String,
             name: String,
             secret: String,
             agent: Arc<Agent>,
             caller: Caller,
             body: NewSecret| async move {
                let (repo, shown) = writable_repo(&agent, &caller, &owner, &name).await?;
                set(agent, Scope::Repo(repo), Some(shown), secret, body).await
            },
        );
    let remove_repo = base()
        .and(warp::path!("repos" / String / String / "secrets" / String))
        .and(warp::delete())
        .and(a)
        .and(who)
        .then(|owner: String, name: String, secret: String, agent: Arc<Agent>, caller: Caller| async move {
            let (repo, _) = writable_repo(&agent, &caller, &owner, &name).await?;
            remove(agent, Scope::Repo(repo), secret).await
        });
    list_global
        .or(set_global)
        .unify()
        .or(remove_global)
        .unify()
        .or(list_repo)
        .unify()
        .or(set_repo)
        .unify()
        .or(remove_repo)
        .unify()
        .map(|r: ApiResult| r.unwrap_or_else(ApiError::into_response))
        .boxed()
}

/// A repository the caller may push to: its id and `owner/name`.
async fn writable_repo(
    agent: &Arc<Agent>,
    caller: &Caller,
    owner: &str,
    name: &str,
) -> Result<(hangar_core::ids::RepoId, String), ApiError> {
    let repo = find_repo(agent, caller, owner, name).await?;
    caller.require_write()?;
    Ok((repo.id, repo.name.to_string()))
}

/// Names and scopes; for a repository also the global secrets its jobs see
/// (`overridden` when the repository has its own of the same name).
async fn list(agent: Arc<Agent>, repo: Option<hangar_core::ids::RepoId>) -> ApiResult {
    let (global, own) = agent
        .db(move |a| {
            let store = a.secrets.as_ref();
            let global = secrets::names(store, Scope::Global).map_err(ApiError::internal)?;
            let own = match repo {
                Some(id) => secrets::names(store, Scope::Repo(id)).map_err(ApiError::internal)?,
                None => Vec::new(),
            };
            Ok::<_, ApiError>((global, own))
        })
        .await?;
    let mut items: Vec<serde_json::Value> = own
        .iter()
        .map(|n| serde_json::json!({ "name": n, "scope": "repo" }))
        .collect();
    items.extend(global.iter().map(|n| {
        let mut item = serde_json::json!({ "name": n, "scope": "global" });
        if repo.is_some() {
            item["overridden"] = own.contains(n).into();
        }
        item
    }));
    json_reply(StatusCode::OK, &serde_json::json!({ "items": items }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSecret {
    value: String,
}

async fn set(
    agent: Arc<Agent>,
    scope: Scope,
    repo: Option<String>,
    name: String,
    body: NewSecret,
) -> ApiResult {
    let name = secrets::check_name(&name).map_err(ApiError::bad_request)?;
    secrets::check_value(&body.value).map_err(ApiError::bad_request)?;
    let stored = name.clone();
    let existed = agent
        .db(move |a| {
            let store = a.secrets.as_ref();
            let existed = secrets::names(store, scope)
                .map_err(ApiError::internal)?
                .contains(&stored);
            secrets::set(store, scope, &stored, &body.value).map_err(ApiError::internal)?;
            Ok::<_, ApiError>(existed)
        })
        .await?;
    let scope_name = if repo.is_some() { "repo" } else { "global" };
    json_reply(
        if existed {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        },
        &serde_json::json!({ "name": name, "scope": scope_name, "repo": repo }),
    )
}

async fn remove(agent: Arc<Agent>, scope: Scope, name: String) -> ApiResult {
    let name = secrets::check_name(&name).map_err(ApiError::bad_request)?;
    let shown = name.clone();
    let existed = agent
        .db(move |a| secrets::remove(a.secrets.as_ref(), scope, &name).map_err(ApiError::internal))
        .await?;
    if !existed {
        return Err(ApiError::not_found(format!("no secret named {shown} here")));
    }
    Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
}
