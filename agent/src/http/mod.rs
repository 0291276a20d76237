//! The HTTP server's routes: `/healthz`, the REST API, git smart HTTP, and
//! the dashboard (last, so it never shadows the others).

pub mod api;
pub mod artifacts;
pub mod auth;
pub mod builds;
pub mod error;
pub mod events;
pub mod forges;
pub mod git;
pub mod host;
pub mod mirrors;
pub mod openapi;
pub mod queue;
pub mod secrets;
pub mod session;
pub mod ui;

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
    // The dashboard handles 401s itself (it shows its sign-in page); a Basic
    // challenge would make the browser pop up its own password dialog.
    let from_dashboard = warp::header::headers_cloned().map(|h: warp::http::HeaderMap| {
        h.contains_key(auth::UI_HEADER)
            || h.get("accept")
                .is_some_and(|a| a.as_bytes().starts_with(b"text/event-stream"))
    });
    let healthz = warp::path!("healthz")
        .and(warp::get())
        .map(|| warp::Reply::into_response("ok\n"));
    // Before `api`, whose `repos/{owner}/{name}/{part}` answers every part.
    let all = healthz
        .or(secrets::routes(agent.clone()))
        .unify()
        .or(api::routes(agent.clone()))
        .unify()
        .or(artifacts::routes(agent.clone()))
        .unify()
        .or(builds::routes(agent.clone()))
        .unify()
        .or(mirrors::routes(agent.clone()))
        .unify()
        .or(events::routes(agent.clone()))
        .unify()
        .or(host::routes(agent.clone()))
        .unify()
        .or(session::routes(agent.clone()))
        .unify()
        .or(forges::routes(agent.clone()))
        .unify()
        .or(crate::hooks::routes(agent.clone()))
        .unify()
        .or(queue::routes(agent.clone()))
        .unify()
        .or(git::routes(agent))
        .unify()
        .or(ui::routes())
        .unify()
        .recover(error::recover)
        .unify();
    from_dashboard
        .and(all)
        .map(|dashboard: bool, mut response: warp::reply::Response| {
            if dashboard {
                response.headers_mut().remove("www-authenticate");
            }
            response
        })
}
