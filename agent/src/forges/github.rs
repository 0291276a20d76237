//! GitHub's REST API (github.com and GitHub Enterprise Server's `/api/v3`).

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use reqwest::Method;
use serde_json::{Value, json};

use hangar_core::store::mirror_sources::{OWN_STARS, Page, SourceKind};

use super::api::{Api, hook_id, next_link, same_hook};
use super::{CommitStatus, Forge, ForgeError, RemoteRepo};

const HEADERS: &[(&str, &str)] = &[
    ("accept", "application/vnd.github+json"),
    ("x-github-api-version", "2022-11-28"),
];

pub struct GitHub {
    api: Api,
}

impl GitHub {
    pub fn new(base: &str, token: &str) -> Self {
        Self {
            api: Api::new(base, ("authorization", format!("Bearer {token}"))),
        }
    }

    async fn get(&self, path: &str) -> Result<Value, ForgeError> {
        self.api.call(Method::GET, path, None, HEADERS).await
    }

    async fn send(&self, method: Method, path: &str, body: &Value) -> Result<Value, ForgeError> {
        self.api.call(method, path, Some(body), HEADERS).await
    }
}

fn field(v: &Value, name: &str, what: &str) -> Result<String, ForgeError> {
    v[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| ForgeError::Request(format!("{what}: the answer has no `{name}`")))
}

impl Forge for GitHub {
    fn repo<'a>(&'a self, remote: &'a str) -> BoxFuture<'a, Result<RemoteRepo, ForgeError>> {
        async move {
            let v = self.get(&format!("/repos/{remote}")).await?;
            Ok(RemoteRepo {
                clone_url: field(&v, "clone_url", remote)?,
                web_url: field(&v, "html_url", remote)?,
            })
        }
        .boxed()
    }

    fn set_status<'a>(
        &'a self,
        remote: &'a str,
        sha: &'a str,
        status: &'a CommitStatus,
    ) -> BoxFuture<'a, Result<(), ForgeError>> {
        async move {
            let body = json!({
                "state": status.state,
                "target_url": status.target_url,
                "description": status.description,
                "context": status.context,
            });
            self.send(
                Method::POST,
                &format!("/repos/{remote}/statuses/{sha}"),
                &body,
            )
            .await?;
            Ok(())
        }
        .boxed()
    }

    fn ensure_hook<'a>(
        &'a self,
        remote: &'a str,
        url: &'a str,
        previous: Option<&'a str>,
        secret: &'a str,
    ) -> BoxFuture<'a, Result<String, ForgeError>> {
        async move {
            let body = json!({
                "active": true,
                "events": ["push", "pull_request"],
                "config": { "url": url, "content_type": "json", "secret": secret, "insecure_ssl": "0" },
            });
            let hooks = self.get(&format!("/repos/{remote}/hooks")).await?;
            let existing = hooks
                .as_array()
                .into_iter()
                .flatten()
                .find(|h| same_hook(h, &h["config"]["url"], url, previous));
            let hook = match existing {
                Some(hook) => {
                    let path = format!("/repos/{remote}/hooks/{}", hook["id"]);
                    self.send(Method::PATCH, &path, &body).await?
                }
                None => {
                    let mut body = body;
                    body["name"] = "web".into();
                    self.send(Method::POST, &format!("/repos/{remote}/hooks"), &body)
                        .await?
                }
            };
            hook_id(remote, &hook)
        }
        .boxed()
    }

    fn git_username(&self) -> &'static str {
        "x-access-token"
    }

    fn list_path(&self, kind: SourceKind, target: &str) -> String {
        match kind {
            // The token's own stars, private repositories included.
            SourceKind::Starred if target == OWN_STARS => "/user/starred?per_page=100".to_owned(),
            SourceKind::Starred => format!("/users/{target}/starred?per_page=100"),
            SourceKind::Org => format!("/orgs/{target}/repos?type=all&per_page=100"),
        }
    }

    fn list_page<'a>(
        &'a self,
        path: &'a str,
        etag: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Option<Page>, ForgeError>> {
        async move {
            let Some((answer, headers)) = self.api.get_if_changed(path, etag, HEADERS).await?
            else {
                return Ok(None);
            };
            let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
            let next_path = match header("link") {
                Some(link) => next_link(link, self.api.base())
                    .map_err(|e| ForgeError::Request(format!("GET {path}: {e}")))?,
                None => None,
            };
            super::page(
                path,
                header("etag"),
                next_path,
                &answer,
                "full_name",
                "clone_url",
            )
            .map(Some)
        }
        .boxed()
    }
}
