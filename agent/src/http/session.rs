//! `/api/v1/session`: the dashboard's sign-in. The browser trades a token for
//! an HttpOnly cookie, so the token never sits where page scripts can read it,
//! and `EventSource` (which cannot send headers) is authenticated too.

use std::sync::Arc;

use serde::Deserialize;
use warp::Filter;
use warp::Reply as _;
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

use super::api::{json_body, json_reply};
use super::auth::{SESSION_COOKIE, authenticate};
use super::error::{ApiError, ApiResult};
use crate::agent::Agent;

/// How long a browser stays signed in (the token's own revocation ends it sooner).
const MAX_AGE_SECS: u64 = 30 * 24 * 3600;

pub fn routes(agent: Arc<Agent>) -> warp::filters::BoxedFilter<(Response,)> {
    let sign_in = super::api_v1()
        .and(warp::path!("session"))
        .and(warp::post())
        .and(super::with_agent(agent))
        .and(json_body())
        .then(sign_in);
    let sign_out = super::api_v1()
        .and(warp::path!("session"))
        .and(warp::delete())
        .map(sign_out);
    sign_in
        .map(|r: ApiResult| r.unwrap_or_else(ApiError::into_response))
        .or(sign_out)
        .unify()
        .boxed()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    token: String,
}

async fn sign_in(agent: Arc<Agent>, body: SignIn) -> ApiResult {
    let token = body.token.trim().to_owned();
    // Tokens are `hgr_` and URL-safe characters; anything else cannot be one
    // and must never reach a Set-Cookie header.
    if token.is_empty()
        || token.len() > 256
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(ApiError::bad_request(
            "paste a token such as the one in agent.json or from `hangar token create NAME`",
        ));
    }
    let user = authenticate(&agent, token.clone()).await?;
    let mut response = json_reply(
        StatusCode::OK,
        &serde_json::json!({ "name": user.name, "role": user.role }),
    )?;
    set_cookie(
        &mut response,
        &format!("{SESSION_COOKIE}={token}; Max-Age={MAX_AGE_SECS}"),
    )?;
    Ok(response)
}

fn sign_out() -> Response {
    let mut response =
        warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response();
    if let Err(e) = set_cookie(&mut response, &format!("{SESSION_COOKIE}=; Max-Age=0")) {
        return e.into_response();
    }
    response
}

fn set_cookie(response: &mut Response, value: &str) -> Result<(), ApiError> {
    let header = HeaderValue::from_str(&format!("{value}; Path=/; HttpOnly; SameSite=Strict"))
        .map_err(ApiError::internal)?;
    response.headers_mut().append("set-cookie", header);
    Ok(())
}
