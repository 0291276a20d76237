//! Webhook receivers: `POST /hooks/github` and `POST /hooks/gitlab`.
//!
//! A delivery is checked (content type, ids, signature against every
//! forge's secret, then the body's shape), stored in SQLite, and only then
//! answered with 202; the [`worker`] processes it later. A request that fails
//! the signature check changes nothing and costs no database work.

pub mod worker;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use hangar_core::ids::{DeliveryId, ForgeId};
use hangar_core::store::deliveries::{self, NewDelivery};
use hangar_core::store::forges::Provider;
use hangar_core::webhook::{self, MAX_BODY, MAX_ID};
use tokio::sync::{Notify, mpsc, oneshot};
use warp::Filter;
use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;

use crate::agent::Agent;
use crate::forges::HookSecrets;
use crate::http::api::json_reply;
use crate::http::error::{ApiError, ApiResult};

/// Webhook state shared by the receivers and the worker.
#[derive(Default)]
pub struct Hooks {
    pub secrets: HookSecrets,
    /// Wakes the worker when a delivery was stored or replayed.
    pub wake: Notify,
    queue: OnceLock<mpsc::UnboundedSender<Pending>>,
}

/// A verified delivery waiting for its group commit, and who waits for it.
struct Pending {
    provider: Provider,
    hook: String,
    delivery: String,
    forge_id: ForgeId,
    event: String,
    body: Bytes,
    done: oneshot::Sender<Result<(DeliveryId, bool), String>>,
}

/// Most deliveries written by one transaction.
const MAX_BATCH: usize = 256;

impl Hooks {
    /// The writer's queue, starting the writer on first use.
    fn queue(&self, agent: &Arc<Agent>) -> &mpsc::UnboundedSender<Pending> {
        self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(write_deliveries(agent.clone(), rx));
            tx
        })
    }
}

/// Group commit: deliveries that arrive while a transaction is being synced
/// are written together by the next one, so concurrent forges share the
/// fsync, and each request still hears 202 only after its row is durable.
async fn write_deliveries(agent: Arc<Agent>, mut rx: mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH
            && let Ok(next) = rx.try_recv()
        {
            batch.push(next);
        }
        let written = agent
            .db(move |a| {
                let result = a.store.write(|tx| {
                    batch
                        .iter()
                        .map(|p| {
                            deliveries::insert(
                                tx,
                                &NewDelivery {
                                    provider: p.provider.as_str(),
                                    hook_id: &p.hook,
                                    delivery_id: &p.delivery,
                                    forge_id: p.forge_id,
                                    event: &p.event,
                                    body: &p.body,
                                },
                            )
                        })
                        .collect::<Result<Vec<_>, _>>()
                });
                Ok::<_, anyhow::Error>((batch, result))
            })
            .await;
        // A failed join drops the batch: its requests answer 500.
        let Ok((batch, result)) = written else {
            continue;
        };
        match result {
            Ok(ids) => {
                for (p, id) in batch.into_iter().zip(ids) {
                    let _ = p.done.send(Ok(id));
                }
            }
            Err(e) => {
                for p in batch {
                    let _ = p.done.send(Err(format!("cannot store the delivery: {e}")));
                }
            }
        }
    }
}

pub fn routes(agent: Arc<Agent>) -> warp::filters::BoxedFilter<(Response,)> {
    warp::path!("hooks" / String)
        .and(warp::post())
        .and(crate::http::with_agent(agent))
        .and(warp::header::headers_cloned())
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::bytes())
        .then(receive)
        .map(|r: ApiResult| r.unwrap_or_else(ApiError::into_response))
        .boxed()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A required id-like header: present, printable, at most [`MAX_ID`] bytes.
fn id_header<'a>(headers: &'a HeaderMap, names: &[&str]) -> Result<&'a str, ApiError> {
    let value = names
        .iter()
        .find_map(|n| header(headers, n))
        .ok_or_else(|| ApiError::bad_request(format!("missing {} header", names.join(" or "))))?;
    if value.is_empty()
        || value.len() > MAX_ID
        || !value.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
    {
        return Err(ApiError::bad_request(format!(
            "{} header must be 1-{MAX_ID} printable characters",
            names[0]
        )));
    }
    Ok(value)
}

async fn receive(
    provider: String,
    agent: Arc<Agent>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let provider = Provider::parse(&provider).ok_or_else(|| {
        ApiError::not_found(format!(
            "no webhook receiver /hooks/{provider}; use /hooks/github or /hooks/gitlab"
        ))
    })?;
    let content_type = header(&headers, "content-type").unwrap_or("");
    if !content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "webhook content type is {content_type:?}; set the webhook's content type to application/json"
            ),
        ));
    }
    let (event, delivery, hook) = match provider {
        Provider::Github => (
            id_header(&headers, &["x-github-event"])?,
            id_header(&headers, &["x-github-delivery"])?,
            header(&headers, "x-github-hook-id").unwrap_or(""),
        ),
        Provider::Gitlab => (
            id_header(&headers, &["x-gitlab-event"])?,
            id_header(&headers, &["idempotency-key", "x-gitlab-event-uuid"])?,
            header(&headers, "x-gitlab-webhook-uuid").unwrap_or(""),
        ),
    };
    let hook: String = hook.chars().take(MAX_ID).collect();
    let verified = match provider {
        Provider::Github => agent.hooks.secrets.find(provider, |secrets| {
            webhook::verify_github(secrets, header(&headers, "x-hub-signature-256"), &body)
        }),
        Provider::Gitlab => agent.hooks.secrets.find(provider, |secrets| {
            webhook::verify_gitlab(secrets, header(&headers, "x-gitlab-token"))
        }),
    };
    let forge_id = match verified {
        Ok(id) => id,
        Err(e) => {
            audit_refusal(provider, &e);
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_signature",
                e.to_string(),
            ));
        }
    };
    let parsed = match provider {
        Provider::Github => webhook::parse_github(event, &body),
        Provider::Gitlab => webhook::parse_gitlab(event, &body),
    };
    if let Err(e) = parsed {
        return Err(ApiError::bad_request(format!(
            "cannot read the {event} payload: {e}"
        )));
    }
    let (done, answer) = oneshot::channel();
    agent
        .hooks
        .queue(&agent)
        .send(Pending {
            provider,
            hook,
            delivery: delivery.to_owned(),
            forge_id,
            event: event.to_owned(),
            body,
            done,
        })
        .map_err(|_| ApiError::internal("the delivery writer stopped"))?;
    let (id, fresh) = answer
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    if fresh {
        agent.hooks.wake.notify_one();
    }
    json_reply(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "delivery": id, "duplicate": !fresh }),
    )
}

/// Logs refused deliveries at most once per 10 seconds (with how many were
/// refused meanwhile), so a flood cannot fill the log.
fn audit_refusal(provider: Provider, error: &webhook::VerifyError) {
    static LAST: AtomicI64 = AtomicI64::new(0);
    static REFUSED: AtomicU64 = AtomicU64::new(0);
    let refused = REFUSED.fetch_add(1, Ordering::Relaxed) + 1;
    let now = jiff::Timestamp::now().as_second();
    let last = LAST.load(Ordering::Relaxed);
    if now - last >= 10
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        REFUSED.store(0, Ordering::Relaxed);
        tracing::warn!(
            provider = provider.as_str(),
            refused,
            "refused webhook deliveries (401): {error}"
        );
    }
}
