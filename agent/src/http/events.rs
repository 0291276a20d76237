//! `GET /api/v1/events`: one server-sent event stream of [`Change`]s, so the
//! dashboard and the desktop app never poll. Each event's name is the change's
//! `type` and its data the change as JSON. A listener that fell behind gets a
//! `reload` event (refetch what you show); a comment every 15 s keeps proxies
//! and dead-peer detection honest.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast::error::RecvError;
use warp::Filter;
use warp::http::HeaderValue;
use warp::reply::Response;

use super::auth::{Caller, caller};
use super::error::{ApiError, ApiResult};
use crate::agent::Agent;
use crate::changes::Change;

const KEEPALIVE: Duration = Duration::from_secs(15);

pub fn routes(agent: Arc<Agent>) -> warp::filters::BoxedFilter<(Response,)> {
    super::api_v1()
        .and(warp::path!("events"))
        .and(warp::get())
        .and(super::with_agent(agent.clone()))
        .and(caller(agent))
        .then(stream)
        .map(|r: ApiResult| r.unwrap_or_else(ApiError::into_response))
        .boxed()
}

/// What the stream writes next.
enum Next {
    Change(Change),
    Reload,
    Keepalive,
    End,
}

async fn stream(agent: Arc<Agent>, caller: Caller) -> ApiResult {
    // Every signed-in user may read every repository, so every change is
    // theirs to see; anonymous callers only see public repos and get nothing.
    caller.require()?;
    let rx = agent.changes.subscribe();
    let closed = agent.changes.closed.clone();
    let hello = futures_util::stream::once(async {
        Ok::<_, std::io::Error>(Bytes::from_static(
            b"retry: 2000\nevent: hello\ndata: {}\n\n",
        ))
    });
    let changes = futures_util::stream::unfold((rx, closed), |(mut rx, closed)| async move {
        let next = tokio::select! {
            () = closed.cancelled() => Next::End,
            received = rx.recv() => match received {
                Ok(change) => Next::Change(change),
                Err(RecvError::Lagged(_)) => Next::Reload,
                Err(RecvError::Closed) => Next::End,
            },
            () = tokio::time::sleep(KEEPALIVE) => Next::Keepalive,
        };
        let bytes = match next {
            Next::End => return None,
            Next::Change(change) => encode(&change),
            Next::Reload => Bytes::from_static(b"event: reload\ndata: {}\n\n"),
            Next::Keepalive => Bytes::from_static(b": keepalive\n\n"),
        };
        Some((Ok(bytes), (rx, closed)))
    });
    let mut response = warp::reply::Reply::into_response(warp::reply::stream(
        futures_util::StreamExt::chain(hello, changes),
    ));
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert("cache-control", HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// One change as an SSE event: `event: TYPE` and the JSON on one `data:` line.
fn encode(change: &Change) -> Bytes {
    let data = serde_json::to_value(change).unwrap_or_default();
    let kind = data["type"].as_str().unwrap_or("change").to_owned();
    Bytes::from(format!("event: {kind}\ndata: {data}\n\n"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_change_is_one_named_event_on_one_data_line() {
        let text = super::encode(&super::Change::Push {
            repo: "a/b".into(),
            kind: "push".into(),
            refs: 1,
        });
        assert_eq!(
            text,
            "event: push\ndata: {\"kind\":\"push\",\"refs\":1,\"repo\":\"a/b\",\"type\":\"push\"}\n\n"
        );
    }
}
