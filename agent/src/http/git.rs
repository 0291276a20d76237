//! Git smart HTTP: `info/refs`, `git-upload-pack`, `git-receive-pack` under
//! `/OWNER/NAME.git/`. Bytes stream between the client and a git child in
//! both directions; only a push's small command list and git's short report
//! are held in memory.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use futures_util::{Stream, StreamExt, TryStreamExt};
use hangar_core::store::repos;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use warp::Filter;
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

use super::auth::{Caller, caller};
use crate::agent::Agent;
use crate::git::access::{self, Denied};
use crate::git::push::{self, parse_commands};
use crate::git::service::{self, Mode, Service};

type BodyReader = Pin<Box<dyn AsyncRead + Send>>;

/// All git routes.
pub fn routes(agent: Arc<Agent>) -> warp::filters::BoxedFilter<(Response,)> {
    let with_agent = super::with_agent(agent.clone());
    // `/api/...` and the like never reach git, so their errors stay API errors.
    let owner = warp::path::param::<String>().and_then(|owner: String| async move {
        if hangar_core::repo_name::is_reserved_owner(&owner) {
            Err(warp::reject::not_found())
        } else {
            Ok(owner)
        }
    });
    let repo = owner.and(warp::path::param::<String>());
    let protocol = warp::header::optional::<String>("git-protocol");

    let info_refs = repo
        .and(warp::path!("info" / "refs"))
        .and(warp::get())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(protocol)
        .and(with_agent.clone())
        .and(caller(agent.clone()))
        .then(|owner, name, query, protocol, agent, caller| {
            info_refs(agent, caller, owner, name, query, protocol)
        });

    let rpc = repo
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::post())
        .and(protocol)
        .and(warp::header::optional::<String>("content-encoding"))
        .and(warp::body::stream())
        .and(with_agent)
        .and(caller(agent))
        .then(
            |owner, name, service: String, protocol, encoding, body, agent, caller| {
                let body = body_reader(body, encoding);
                rpc(agent, caller, owner, name, service, protocol, body)
            },
        );

    info_refs.or(rpc).unify().boxed()
}

/// A plain-text error, which git shows to its user as `remote: ...` lines.
fn text(status: StatusCode, message: impl Into<String>) -> Response {
    let mut response =
        warp::reply::with_status(format!("{}\n", message.into()), status).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Basic realm=\"Hangar\""),
        );
    }
    response
}

use warp::Reply as _;

/// Finds the repository and checks the caller may use `service` on it.
async fn authorize(
    agent: &Arc<Agent>,
    caller: &Caller,
    owner: &str,
    name: &str,
    service: Service,
) -> Result<(repos::Repo, PathBuf), Response> {
    access::authorize(
        agent,
        caller.user.as_ref(),
        &format!("{owner}/{name}"),
        service,
    )
    .await
    .map_err(|denied| match denied {
        Denied::BadName(e) => text(StatusCode::BAD_REQUEST, e.to_string()),
        Denied::SignInRequired { push: false } => text(
            StatusCode::UNAUTHORIZED,
            "authentication required; use a Hangar token as the password",
        ),
        Denied::SignInRequired { push: true } => text(
            StatusCode::UNAUTHORIZED,
            "pushing needs a token; use a Hangar token as the password",
        ),
        Denied::NotFound(_) => text(StatusCode::NOT_FOUND, denied.to_string()),
        Denied::ReadOnly(_) | Denied::Mirror(_) => text(StatusCode::FORBIDDEN, denied.to_string()),
        Denied::Internal(_) => text(StatusCode::INTERNAL_SERVER_ERROR, denied.to_string()),
    })
}

async fn info_refs(
    agent: Arc<Agent>,
    caller: Caller,
    owner: String,
    name: String,
    query: String,
    protocol: Option<String>,
) -> Response {
    let service = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("service="))
        .and_then(Service::parse_http);
    let Some(service) = service else {
        return text(
            StatusCode::FORBIDDEN,
            "only git's smart HTTP protocol is served; use git 1.6.6 or newer",
        );
    };
    let (_, path) = match authorize(&agent, &caller, &owner, &name, service).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let protocol = service::protocol(protocol.as_deref()).map(str::to_owned);
    let mut cmd = service::command(service, &path, protocol.as_deref(), Mode::Advertise);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot run git: {e}"),
            );
        }
    };
    drop(child.stdin.take());
    // Protocol v2 has no service announcement (as git http-backend does it).
    let mut head = Vec::new();
    if !protocol.as_deref().is_some_and(|p| p.contains("version=2")) {
        let _ = hangar_core::pktline::encode(
            format!("# service=git-{}\n", service.name()).as_bytes(),
            &mut head,
        );
        hangar_core::pktline::flush(&mut head);
    }
    let output = child_output(child);
    let body = futures_util::stream::once(async move { Ok(Bytes::from(head)) }).chain(output);
    stream_response(
        body,
        &format!("application/x-git-{}-advertisement", service.name()),
    )
}

async fn rpc(
    agent: Arc<Agent>,
    caller: Caller,
    owner: String,
    name: String,
    service: String,
    protocol: Option<String>,
    body: BodyReader,
) -> Response {
    let Some(service) = Service::parse_http(&service) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("unknown git service {service:?}"),
        );
    };
    let (repo, path) = match authorize(&agent, &caller, &owner, &name, service).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let protocol = service::protocol(protocol.as_deref());
    match service {
        Service::UploadPack => upload_pack(&path, protocol, body),
        Service::ReceivePack => receive_pack(&agent, &caller, repo, &path, protocol, body).await,
        // Filtered out by `parse_http`; git's HTTP protocol has no archive service.
        Service::UploadArchive => text(
            StatusCode::NOT_FOUND,
            "git-upload-archive is served over SSH only",
        ),
    }
}

fn upload_pack(path: &std::path::Path, protocol: Option<&str>, mut body: BodyReader) -> Response {
    let mut child =
        match service::command(Service::UploadPack, path, protocol, Mode::StatelessRpc).spawn() {
            Ok(child) => child,
            Err(e) => {
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot run git: {e}"),
                );
            }
        };
    if let Some(mut stdin) = child.stdin.take() {
        tokio::spawn(async move {
            // A client that goes away closes stdin; git then stops on its own.
            let _ = tokio::io::copy(&mut body, &mut stdin).await;
        });
    }
    stream_response(child_output(child), "application/x-git-upload-pack-result")
}

async fn receive_pack(
    agent: &Arc<Agent>,
    caller: &Caller,
    repo: repos::Repo,
    path: &std::path::Path,
    protocol: Option<&str>,
    mut body: BodyReader,
) -> Response {
    // The command list comes first; keep its bytes to hand on to git.
    let mut head = Vec::with_capacity(4096);
    let updates = loop {
        match parse_commands(&head) {
            Ok(Some((updates, _))) => break updates,
            Ok(None) => {}
            Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
        }
        let mut chunk = [0u8; 16 * 1024];
        match body.read(&mut chunk).await {
            Ok(0) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    "push ended before its command list",
                );
            }
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the push: {e}"),
                );
            }
        }
    };

    let mut child =
        match service::command(Service::ReceivePack, path, protocol, Mode::StatelessRpc).spawn() {
            Ok(child) => child,
            Err(e) => {
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot run git: {e}"),
                );
            }
        };
    let (Some(mut stdin), Some(mut stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "git child has no pipes");
    };
    // git's report is short; collect it while feeding the pack, so neither side blocks.
    let report = tokio::spawn(async move {
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).await.map(|_| out)
    });
    let errors = tokio::spawn(read_stderr(stderr));

    let limit = agent.settings.max_push_mb.saturating_mul(1 << 20);
    let fed = async {
        stdin.write_all(&head).await?;
        let copied = tokio::io::copy(&mut (&mut body).take(limit + 1), &mut stdin).await?;
        stdin.shutdown().await?;
        Ok::<_, std::io::Error>(copied + head.len() as u64)
    }
    .await;
    drop(stdin);
    match fed {
        Ok(size) if size > limit => {
            let _ = child.kill().await;
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "push is larger than {} MiB (max_push_mb); nothing was changed",
                    agent.settings.max_push_mb
                ),
            );
        }
        Ok(_) => {}
        Err(e) => {
            // The client went away: git drops its quarantined objects, refs are untouched.
            let _ = child.kill().await;
            tracing::info!(repo = %repo.name, "push aborted: {e}");
            return text(StatusCode::BAD_REQUEST, format!("push aborted: {e}"));
        }
    }
    let status = child.wait().await;
    let report = match report.await {
        Ok(Ok(report)) => report,
        _ => return text(StatusCode::INTERNAL_SERVER_ERROR, "lost git's report"),
    };
    if !status.is_ok_and(|s| s.success()) {
        tracing::warn!(repo = %repo.name, "git receive-pack failed: {}", errors.await.unwrap_or_default());
    }

    // Record what actually moved before the client hears about it.
    let actor = caller.user.as_ref().map(|u| u.id);
    match push::record(agent, actor, &repo, path, updates).await {
        Ok(()) => {}
        Err(e) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("push applied but not recorded: {e}"),
            );
        }
    }
    let mut response = warp::reply::Response::new(Bytes::from(report).into());
    set_git_headers(&mut response, "application/x-git-receive-pack-result");
    response
}

/// The request body as bytes, gunzipped when the client compressed it.
fn body_reader<S, B>(body: S, encoding: Option<String>) -> BodyReader
where
    S: Stream<Item = Result<B, warp::Error>> + Send + 'static,
    B: Buf,
{
    let bytes = body
        .map_ok(|mut b| b.copy_to_bytes(b.remaining()))
        .map_err(std::io::Error::other);
    let reader = tokio_util::io::StreamReader::new(bytes);
    if encoding.is_some_and(|e| e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip"))
    {
        let mut decoder = async_compression::tokio::bufread::GzipDecoder::new(reader);
        decoder.multiple_members(true);
        Box::pin(decoder)
    } else {
        Box::pin(reader)
    }
}

/// git's stdout as a byte stream; the child is reaped (and its errors logged)
/// when the stream ends or the client goes away.
fn child_output(
    mut child: tokio::process::Child,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + Sync + 'static {
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    tokio::spawn(async move {
        let errors = match stderr {
            Some(stderr) => read_stderr(stderr).await,
            None => String::new(),
        };
        match child.wait().await {
            Ok(status) if status.success() => {}
            Ok(status) => tracing::debug!("git exited with {status}: {errors}"),
            Err(e) => tracing::warn!("cannot wait for git: {e}"),
        }
    });
    match stdout {
        Some(stdout) => {
            tokio_util::io::ReaderStream::with_capacity(stdout, 64 * 1024).left_stream()
        }
        None => futures_util::stream::empty().right_stream(),
    }
}

async fn read_stderr(mut stderr: tokio::process::ChildStderr) -> String {
    let mut text = Vec::new();
    let _ = (&mut stderr).take(64 * 1024).read_to_end(&mut text).await;
    // Drain the rest so git never blocks on a full pipe.
    let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
    String::from_utf8_lossy(&text).trim().to_owned()
}

fn stream_response<S>(body: S, content_type: &str) -> Response
where
    S: Stream<Item = std::io::Result<Bytes>> + Send + Sync + 'static,
{
    let mut response = warp::reply::stream(body).into_response();
    set_git_headers(&mut response, content_type);
    response
}

fn set_git_headers(response: &mut Response, content_type: &str) {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert("content-type", value);
    }
    headers.insert(
        "cache-control",
        HeaderValue::from_static("no-cache, max-age=0, must-revalidate"),
    );
}
