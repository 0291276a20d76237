//! The build queue in the REST API: its state, and pausing it (the scheduler
//! then plans builds but starts no jobs until it is resumed).

use std::sync::Arc;

use hangar_core::store::builds;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::api::json_reply;
use super::auth::{Caller, caller};
use super::error::{ApiError, ApiResult};
use crate::agent::Agent;

pub fn routes(agent: Arc<Agent>) -> warp::filters::BoxedFilter<(Response,)> {
    let a = super::with_agent(agent.clone());
    let who = caller(agent);
    let show = super::api_v1()
        .and(warp::path!("queue"))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .then(show);
    let set = super::api_v1()
        .and(warp::path!("queue" / String))
        .and(warp::post())
        .and(a)
        .and(who)
        .then(set);
    show.or(set)
        .unify()
        .map(|r: ApiResult| r.unwrap_or_else(ApiError::into_response))
        .boxed()
}

/// `{"paused", "queued", "running"}`: the pause flag, queued and running jobs.
async fn state(agent: &Arc<Agent>) -> ApiResult {
    let queued = agent
        .db(|a| a.store.read(builds::queued_jobs).map_err(ApiError::from))
        .await?
        .len();
    json_reply(
        StatusCode::OK,
        &serde_json::json!({
            "paused": agent.builds.paused(),
            "queued": queued,
            "running": agent.builds.running_jobs(),
        }),
    )
}

async fn show(agent: Arc<Agent>, caller: Caller) -> ApiResult {
    caller.require()?;
    state(&agent).await
}

async fn set(action: String, agent: Arc<Agent>, caller: Caller) -> ApiResult {
    caller.require_admin()?;
    let paused = match action.as_str() {
        "pause" => true,
        "resume" => false,
        other => {
            return Err(ApiError::not_found(format!(
                "no queue action {other:?}; use POST /api/v1/queue/pause or /api/v1/queue/resume"
            )));
        }
    };
    agent
        .db(move |a| a.builds.set_paused(a.data.root(), paused))
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(paused, "build queue {action}d");
    agent.changes.send(crate::changes::Change::Queue { paused });
    state(&agent).await
}
