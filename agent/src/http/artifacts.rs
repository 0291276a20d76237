//! Artifacts and caches in the REST API: a build's artifacts (list, download
//! as tar) and the `actions/cache` entries (list, delete).

use std::sync::Arc;

use hangar_core::repo_name::RepoName;
use hangar_core::store::artifacts;
use serde::Deserialize;
use warp::Filter;
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

use super::api::{find_repo, json_reply};
use super::auth::{Caller, caller};
use super::builds::readable_build;
use super::error::{ApiError, ApiResult};
use crate::agent::Agent;
use crate::build::{artifacts as files, cache};

pub fn routes(agent: Arc<Agent>) -> warp::filters::BoxedFilter<(Response,)> {
    let a = super::with_agent(agent.clone());
    let who = caller(agent);
    let base = super::api_v1;
    let list = base()
        .and(warp::path!("builds" / String / "artifacts"))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .then(list);
    let download = base()
        .and(warp::path!("builds" / String / "artifacts" / String))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .then(download);
    let caches = base()
        .and(warp::path!("caches"))
        .and(warp::get())
        .and(a.clone())
        .and(who.clone())
        .and(warp::query::<CacheQuery>())
        .then(list_caches);
    let drop = base()
        .and(warp::path!("caches"))
        .and(warp::delete())
        .and(a)
        .and(who)
        .and(warp::query::<CacheQuery>())
        .then(delete_caches);
    list.or(download)
        .unify()
        .or(caches)
        .unify()
        .or(drop)
        .unify()
        .map(|r: ApiResult| r.unwrap_or_else(ApiError::into_response))
        .boxed()
}

async fn list(id: String, agent: Arc<Agent>, caller: Caller) -> ApiResult {
    let build = readable_build(&agent, &caller, &id).await?;
    let build_id = build.id;
    let items = agent
        .db(move |a| {
            a.store
                .read(|c| artifacts::list_artifacts(c, build_id))
                .map_err(ApiError::from)
        })
        .await?;
    json_reply(StatusCode::OK, &serde_json::json!({ "items": items }))
}

async fn download(id: String, name: String, agent: Arc<Agent>, caller: Caller) -> ApiResult {
    // warp hands over the raw path segment; names may hold spaces and other
    // characters clients percent-encode.
    let name = percent_encoding::percent_decode_str(&name)
        .decode_utf8()
        .map_err(|_| ApiError::bad_request("the artifact name in the URL is not UTF-8"))?
        .into_owned();
    let build = readable_build(&agent, &caller, &id).await?;
    let build_id = build.id;
    let lookup = name.clone();
    let found = agent
        .db(move |a| {
            a.store
                .read(|c| artifacts::get_artifact(c, build_id, &lookup))
                .map_err(ApiError::from)
        })
        .await?;
    let missing = || ApiError::not_found(format!("build {build_id} has no artifact `{name}`"));
    found.ok_or_else(missing)?;
    let path = files::path(agent.data.root(), build_id, &name);
    let file = tokio::fs::File::open(&path).await.map_err(|_| missing())?;
    let stream = tokio_util::io::ReaderStream::new(file);
    let mut response = warp::reply::Reply::into_response(warp::reply::stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-tar"),
    );
    // Names were checked at upload: no quotes or separators.
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.tar\"")) {
        headers.insert("content-disposition", value);
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheQuery {
    repo: Option<String>,
    key: Option<String>,
}

async fn list_caches(agent: Arc<Agent>, caller: Caller, query: CacheQuery) -> ApiResult {
    caller.require()?;
    let repo = match &query.repo {
        Some(name) => {
            let name = RepoName::parse(name)?;
            Some(find_repo(&agent, &caller, name.owner(), name.name()).await?)
        }
        None => {
            caller.require_admin()?;
            None
        }
    };
    let repo_id = repo.as_ref().map(|r| r.id);
    let items = agent
        .db(move |a| {
            a.store
                .read(|c| artifacts::list_cache(c, repo_id))
                .map_err(ApiError::from)
        })
        .await?;
    json_reply(StatusCode::OK, &serde_json::json!({ "items": items }))
}

async fn delete_caches(agent: Arc<Agent>, caller: Caller, query: CacheQuery) -> ApiResult {
    caller.require_write()?;
    let name = query
        .repo
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("give `repo=OWNER/NAME` (and `key=` for one key)"))?;
    let name = RepoName::parse(name)?;
    let repo = find_repo(&agent, &caller, name.owner(), name.name()).await?;
    let key = query.key.clone();
    let removed = agent
        .db(move |a| {
            a.store
                .write(|tx| {
                    let gone: Vec<_> = artifacts::list_cache(tx, Some(repo.id))?
                        .into_iter()
                        .filter(|e| key.as_ref().is_none_or(|k| &e.key == k))
                        .collect();
                    for entry in &gone {
                        artifacts::delete_cache(tx, entry)?;
                    }
                    Ok::<_, hangar_core::store::StoreError>(gone)
                })
                .map_err(ApiError::from)
        })
        .await?;
    cache::remove_files(&agent.data.root().join("cache"), &removed);
    json_reply(
        StatusCode::OK,
        &serde_json::json!({ "deleted": removed.len() }),
    )
}
