//! The HTTP server's routes: `/healthz`, the REST API, and git smart HTTP.

pub mod api;
pub mod artifacts;
pub mod auth;
pub mod builds;
pub mod error;
pub mod git;
pub mod mirrors;
pub mod openapi;
pub mod queue;

use std::sync::Arc;

use warp::Filter;

use crate::agent::Agent;

/// Hands each request the shared agent.
pub(crate) fn with_agent(
    agent: Arc<Agent>,
) -> impl Filter<Extract = (Arc<Agent>,), Error = std::convert::Infallible> + Clone {
    warp::any().map(move || agent.clone())
}

/// The `/api/v1` prefix of every API route.
pub(crate) fn api_v1() -> impl Filter<Extract = (), Error = warp::Rejection> + Copy {
    warp::path("api").and(warp::path("v1"))
}

pub fn routes(
    agent: Arc<Agent>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible>
+ Clone
+ Send
+ Sync
+ 'static {
    let healthz = warp::path!("healthz")
        .and(warp::get())
        .map(|| warp::Reply::into_response("ok\n"));
    healthz
        .or(api::routes(agent.clone()))
        .unify()
        .or(artifacts::routes(agent.clone()))
        .unify()
        .or(builds::routes(agent.clone()))
        .unify()
        .or(mirrors::routes(agent.clone()))
        .unify()
        .or(queue::routes(agent.clone()))
        .unify()
        .or(git::routes(agent))
        .unify()
        .recover(error::recover)
        .unify()
}
