//! The dashboard: the single-page app built from `ui/` into `ui/dist`.
//!
//! rust-embed puts `ui/dist` into release binaries (one file to ship, no path
//! to get wrong) and reads it from disk in debug builds, so `npm run build`
//! shows up on reload without recompiling the agent. A binary built before the
//! UI was serves a page saying how to build it, so `cargo` alone never breaks.
//!
//! Only the client routes fall back to `index.html`; this must never answer
//! for `/api`, `/hooks`, `/healthz` or a git URL, which are routed first and
//! keep their own 404s.

use warp::Filter;
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

#[derive(rust_embed::Embed)]
#[folder = "../ui/dist"]
#[allow_missing = true]
struct Dist;

/// First path segments of the dashboard's own pages, with how many segments
/// each may have (`/builds/ID`, `/repos/OWNER/NAME`).
const CLIENT_ROUTES: &[(&str, usize)] = &[
    ("", 1),
    ("builds", 2),
    ("repos", 3),
    ("pulls", 1),
    ("previews", 1),
    ("mirrors", 1),
    ("settings", 1),
    ("login", 1),
];

const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>Hangar</title>\
<h1>Hangar: the dashboard is not built</h1>\
<p>This agent was built without <code>ui/dist</code>. Run <code>npm ci &amp;&amp; npm run build</code> \
in <code>ui/</code> (<code>scripts/run</code> does this), then reload (debug builds) \
or rebuild the agent (release builds).</p>\
<p>The API is at <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>.</p>\n";

pub fn routes() -> warp::filters::BoxedFilter<(Response,)> {
    let assets = warp::path("assets")
        .and(warp::path::tail())
        .and(warp::get())
        .and_then(|tail: warp::path::Tail| async move {
            file(&format!("assets/{}", tail.as_str()), true).ok_or_else(warp::reject::not_found)
        });
    let pages =
        warp::get()
            .and(warp::path::full())
            .and_then(|path: warp::path::FullPath| async move {
                page(path.as_str()).ok_or_else(warp::reject::not_found)
            });
    assets.or(pages).unify().boxed()
}

/// The response for a GET of `path` outside `/assets`, if the dashboard owns it.
fn page(path: &str) -> Option<Response> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // Top-level files of the build (favicon and the like).
    if let [name] = segments.as_slice()
        && name.contains('.')
    {
        return file(name, false);
    }
    if !is_client_route(&segments) {
        return None;
    }
    Some(file("index.html", false).unwrap_or_else(|| {
        let mut response = Response::new(NOT_BUILT.into());
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        response.headers_mut().insert(
            "content-type",
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        response
    }))
}

fn is_client_route(segments: &[&str]) -> bool {
    let Some(first) = segments.first() else {
        return false;
    };
    CLIENT_ROUTES
        .iter()
        .any(|(name, depth)| name == first && segments.len() <= *depth)
        && segments
            .iter()
            .all(|s| !s.is_empty() || segments.len() == 1)
        && !segments.iter().any(|s| s.ends_with(".git"))
}

fn file(name: &str, immutable: bool) -> Option<Response> {
    let found = Dist::get(name)?;
    let mut response = Response::new(found.data.into_owned().into());
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(content_type(name)));
    // Vite names assets by content hash, so they never change; the page must
    // always be fresh so a new build's assets are picked up.
    headers.insert(
        "cache-control",
        HeaderValue::from_static(if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    Some(response)
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::is_client_route;

    fn routed(path: &str) -> bool {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        is_client_route(&segments)
    }

    #[test]
    fn client_routes_fall_back_to_the_page() {
        for path in [
            "/",
            "/builds",
            "/builds/01J",
            "/repos/alice/app",
            "/settings",
        ] {
            assert!(routed(path), "{path}");
        }
    }

    #[test]
    fn agent_and_git_urls_never_do() {
        for path in [
            "/api/v1/nope",
            "/hooks/github",
            "/healthz",
            "/alice/app.git/info/refs",
            "/repos/app.git",
            "/repos/alice/app.git",
            "/repos/alice/app/info/refs",
            "/builds/x/y",
            "/settings/",
            "/builds//",
        ] {
            assert!(!routed(path), "{path}");
        }
    }

    proptest! {
        /// No path with a `.git` segment (a git URL) and no path under the
        /// agent's own prefixes ever gets the page, whatever follows.
        #[test]
        fn git_and_agent_paths_are_never_pages(
            first in prop_oneof![
                Just("builds".to_owned()),
                Just("repos".to_owned()),
                Just("api".to_owned()),
                Just("hooks".to_owned()),
                Just("healthz".to_owned()),
                Just("assets".to_owned()),
                "[a-z]{1,8}",
            ],
            rest in proptest::collection::vec("[A-Za-z0-9._-]{0,12}", 0..4),
            git_at in 0usize..4,
        ) {
            let agent_owned = ["api", "hooks", "healthz", "assets"].contains(&first.as_str());
            let mut segments: Vec<String> = std::iter::once(first).chain(rest).collect();
            let plain: Vec<&str> = segments.iter().map(String::as_str).collect();
            if agent_owned {
                prop_assert!(!is_client_route(&plain));
            }
            let at = git_at.min(segments.len() - 1);
            segments[at].push_str(".git");
            let with_git: Vec<&str> = segments.iter().map(String::as_str).collect();
            prop_assert!(!is_client_route(&with_git));
        }
    }
}
