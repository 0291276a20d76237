//! `/api/v1/forges`, `/api/v1/hosted-repos`, `/api/v1/deliveries` and
//! `/api/v1/pulls`: thin adapters over [`crate::forges`] and
//! [`crate::hooks`]. Tokens and webhook secrets go in, never out (except
//! the webhook secret once, when an account is added).

use std::sync::Arc;

use hangar_core::ids::DeliveryId;
use hangar_core::store::{deliveries, forges, pulls, repos};
use serde::Deserialize;
use warp::Filter;
use warp::Reply as _;
use warp::http::StatusCode;
use warp::reply::Response;

use super::api::{json_body, json_reply};
use super::auth::{Caller, caller};
use super::error::{ApiError, ApiResult};
use crate::agent::Agent;
use crate::forges::account::{self, NewForge};
use crate::forges::hosted::{self, NewHosted};

pub fn routes(agent: Arc<Agent>) -> warp::filters::BoxedFilter<(Response,)> {
    let a = super::with_agent(agent.clone());
    let who = caller(agent);
    let base = super::api_v1;

    let list_forges = base()
        .and(warp::path!("forges"))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .then(list_forges);
    let add_forge = base()
        .and(warp::path!("forges"))
        .and(warp::post())
        .and(a.clone())
        .and(who.clone())
        .and(json_body())
        .then(add_forge);
    let remove_forge = base()
        .and(warp::path!("forges" / String))
        .and(warp::delete())
        .and(a.clone())
        .and(who.clone())
        .then(remove_forge);
    let list_hosted = base()
        .and(warp::path!("hosted-repos"))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .then(list_hosted);
    let add_hosted = base()
        .and(warp::path!("hosted-repos"))
        .and(warp::post())
        .and(a.clone())
        .and(who.clone())
        .and(json_body())
        .then(add_hosted);
    let list_deliveries = base()
        .and(warp::path!("deliveries"))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .and(warp::query::<Query>())
        .then(list_deliveries);
    let show_delivery = base()
        .and(warp::path!("deliveries" / String))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .then(show_delivery);
    let replay = base()
        .and(warp::path!("deliveries" / String / "replay"))
        .and(warp::post())
        .and(a.clone())
        .and(who.clone())
        .then(replay);
    let tunnel = base()
        .and(warp::path!("tunnel"))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .then(tunnel);
    let tunnel_key = base()
        .and(warp::path!("tunnel" / "key"))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .then(tunnel_key);
    let set_tunnel_key = base()
        .and(warp::path!("tunnel" / "key"))
        .and(warp::post())
        .and(a.clone())
        .and(who.clone())
        .and(json_body())
        .then(set_tunnel_key);
    let list_pulls = base()
        .and(warp::path!("pulls"))
        .and(warp::get())
        .and(a)
        .and(who)
        .and(warp::query::<Query>())
        .then(list_pulls);

    list_forges
        .or(add_forge)
        .unify()
        .or(remove_forge)
        .unify()
        .or(list_hosted)
        .unify()
        .or(add_hosted)
        .unify()
        .or(list_deliveries)
        .unify()
        .or(show_delivery)
        .unify()
        .or(replay)
        .unify()
        .or(list_pulls)
        .unify()
        .or(tunnel)
        .unify()
        .or(tunnel_key)
        .unify()
        .or(set_tunnel_key)
        .unify()
        .map(|r: ApiResult| r.unwrap_or_else(ApiError::into_response))
        .boxed()
}

#[derive(Debug, Deserialize)]
struct Query {
    limit: Option<usize>,
    state: Option<String>,
}

impl Query {
    fn limit(&self) -> usize {
        self.limit.unwrap_or(50).clamp(1, 500)
    }
}

async fn list_forges(agent: Arc<Agent>, caller: Caller) -> ApiResult {
    caller.require()?;
    let all = agent
        .db(|a| a.store.read(forges::list).map_err(ApiError::from))
        .await?;
    json_reply(StatusCode::OK, &serde_json::json!({ "items": all }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddForge {
    provider: String,
    url: Option<String>,
    name: Option<String>,
    token: String,
    webhook_secret: Option<String>,
    #[serde(default)]
    allow_http: bool,
}

async fn add_forge(agent: Arc<Agent>, caller: Caller, body: AddForge) -> ApiResult {
    caller.require_admin()?;
    let (forge, secret) = account::add(
        &agent,
        NewForge {
            provider: body.provider,
            url: body.url,
            name: body.name,
            token: body.token,
            webhook_secret: body.webhook_secret,
            allow_http: body.allow_http,
        },
    )
    .await?;
    let mut value = serde_json::to_value(&forge).map_err(ApiError::internal)?;
    value["webhook_secret"] = secret.into();
    value["webhook_url"] = hosted::hook_url(&agent, forge.provider).into();
    json_reply(StatusCode::CREATED, &value)
}

async fn remove_forge(name: String, agent: Arc<Agent>, caller: Caller) -> ApiResult {
    caller.require_admin()?;
    let lookup = name.clone();
    let forge = agent
        .db(move |a| {
            a.store
                .read(|c| forges::by_name(c, &lookup))
                .map_err(ApiError::from)
        })
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("no forge named {name} (see `hangar forge list`)"))
        })?;
    account::remove(&agent, forge).await?;
    Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
}

async fn list_hosted(agent: Arc<Agent>, caller: Caller) -> ApiResult {
    caller.require()?;
    let all = agent
        .db(move |a| {
            a.store.read(|c| {
                let mut visible = Vec::new();
                for h in forges::list_hosted(c)? {
                    if let Some(repo) = repos::get(c, h.repo_id)?
                        && caller.can_read(&repo)
                    {
                        visible.push(h);
                    }
                }
                Ok::<_, ApiError>(visible)
            })
        })
        .await?;
    json_reply(StatusCode::OK, &serde_json::json!({ "items": all }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddHosted {
    /// `github:OWNER/NAME` or `gitlab:GROUP/NAME`.
    repo: String,
    forge: Option<String>,
    name: Option<String>,
    #[serde(default)]
    public: bool,
}

async fn add_hosted(agent: Arc<Agent>, caller: Caller, body: AddHosted) -> ApiResult {
    caller.require_write()?;
    let (repo, hook_error) = hosted::add(
        &agent,
        NewHosted {
            spec: body.repo,
            forge: body.forge,
            name: body.name,
            public: body.public,
        },
    )
    .await?;
    let mut value = serde_json::to_value(&repo).map_err(ApiError::internal)?;
    value["clone_url"] = format!("{}/{}.git", agent.url, repo.repo).into();
    value["webhook_error"] = hook_error.into();
    json_reply(StatusCode::CREATED, &value)
}

async fn list_deliveries(agent: Arc<Agent>, caller: Caller, query: Query) -> ApiResult {
    caller.require_admin()?;
    let limit = query.limit();
    let all = agent
        .db(move |a| {
            a.store
                .read(|c| deliveries::list(c, limit))
                .map_err(ApiError::from)
        })
        .await?;
    json_reply(StatusCode::OK, &serde_json::json!({ "items": all }))
}

fn delivery_id(text: &str) -> Result<DeliveryId, ApiError> {
    text.parse()
        .map_err(|e: hangar_core::ids::InvalidId| ApiError::bad_request(e.to_string()))
}

async fn show_delivery(id: String, agent: Arc<Agent>, caller: Caller) -> ApiResult {
    caller.require_admin()?;
    let id = delivery_id(&id)?;
    let found = agent
        .db(move |a| {
            a.store
                .read(|c| deliveries::get(c, id))
                .map_err(ApiError::from)
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("delivery {id} not found")))?;
    json_reply(StatusCode::OK, &found)
}

async fn replay(id: String, agent: Arc<Agent>, caller: Caller) -> ApiResult {
    caller.require_admin()?;
    let id = delivery_id(&id)?;
    let found = agent
        .db(move |a| {
            a.store
                .write(|tx| {
                    if !deliveries::replay(tx, id)? {
                        return Ok(None);
                    }
                    deliveries::get(tx, id)
                })
                .map_err(ApiError::from)
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("delivery {id} not found")))?;
    agent.hooks.wake.notify_one();
    json_reply(StatusCode::ACCEPTED, &found)
}

async fn list_pulls(agent: Arc<Agent>, caller: Caller, query: Query) -> ApiResult {
    caller.require()?;
    if let Some(state) = &query.state
        && !matches!(state.as_str(), "open" | "closed" | "merged")
    {
        return Err(ApiError::bad_request(
            "state must be open, closed or merged",
        ));
    }
    let limit = query.limit();
    let all = agent
        .db(move |a| {
            a.store.read(|c| {
                let mut visible = Vec::new();
                for p in pulls::list(c, query.state.as_deref(), limit)? {
                    if let Some(repo) = repos::by_name(c, &p.repo)?
                        && caller.can_read(&repo)
                    {
                        visible.push(p);
                    }
                }
                Ok::<_, ApiError>(visible)
            })
        })
        .await?;
    json_reply(StatusCode::OK, &serde_json::json!({ "items": all }))
}

async fn tunnel(agent: Arc<Agent>, caller: Caller) -> ApiResult {
    caller.require()?;
    json_reply(StatusCode::OK, &agent.tunnel.status())
}

/// The SSH tunnel's public key (to put in the server's `authorized_keys`).
async fn tunnel_key(agent: Arc<Agent>, caller: Caller) -> ApiResult {
    caller.require_admin()?;
    let key = agent
        .db(|a| crate::tunnel::ssh::public_key(a).map_err(ApiError::internal))
        .await?
        .ok_or_else(|| {
            ApiError::not_found("no tunnel key (make one: `hangar tunnel key generate`)")
        })?;
    json_reply(StatusCode::OK, &key_reply(&key))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTunnelKey {
    /// An unencrypted OpenSSH private key to import; without it a new
    /// ed25519 key is made.
    private_key: Option<String>,
    #[serde(default)]
    replace: bool,
}

/// Makes or imports the SSH tunnel's client key; answers with its public half.
async fn set_tunnel_key(agent: Arc<Agent>, caller: Caller, body: NewTunnelKey) -> ApiResult {
    use crate::tunnel::ssh::KeyError;
    caller.require_admin()?;
    let key = agent
        .db(move |a| {
            crate::tunnel::ssh::set_key(a, body.private_key.as_deref(), body.replace).map_err(|e| {
                match e {
                    KeyError::Exists => ApiError::conflict(e.to_string()),
                    KeyError::Invalid(_) => ApiError::bad_request(e.to_string()),
                    KeyError::Store(_) => ApiError::internal(e),
                }
            })
        })
        .await?;
    json_reply(StatusCode::CREATED, &key_reply(&key))
}

fn key_reply(public_key: &str) -> serde_json::Value {
    let fingerprint = hangar_core::store::ssh_keys::parse(public_key)
        .map(|k| k.fingerprint)
        .unwrap_or_default();
    serde_json::json!({ "public_key": public_key, "fingerprint": fingerprint })
}
