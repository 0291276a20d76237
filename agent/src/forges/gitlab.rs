//! GitLab's REST API v4 (gitlab.com and self-managed instances).

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use reqwest::Method;
use serde_json::json;

use hangar_core::store::mirror_sources::{Page, SourceKind};

use super::api::{Api, encode_path, hook_id, same_hook};
use super::{CommitStatus, Forge, ForgeError, RemoteRepo};

/// Most pages followed through `X-Next-Page`.
const MAX_PAGE_NUMBER: u32 = 10_000;

pub struct GitLab {
    api: Api,
}

impl GitLab {
    /// `base` is the instance (`https://gitlab.com`); the API is below `/api/v4`.
    pub fn new(base: &str, token: &str) -> Self {
        let api = format!("{}/api/v4", base.trim_end_matches('/'));
        Self {
            api: Api::new(&api, ("private-token", token.to_owned())),
        }
    }
}

/// GitHub's status words in GitLab's.
fn gitlab_state(state: &str) -> &'static str {
    match state {
        "pending" => "pending",
        "success" => "success",
        "failure" => "failed",
        _ => "canceled",
    }
}

impl Forge for GitLab {
    fn repo<'a>(&'a self, remote: &'a str) -> BoxFuture<'a, Result<RemoteRepo, ForgeError>> {
        async move {
            let v = self
                .api
                .call(
                    Method::GET,
                    &format!("/projects/{}", encode_path(remote)),
                    None,
                    &[],
                )
                .await?;
            let get = |name: &str| {
                v[name].as_str().map(str::to_owned).ok_or_else(|| {
                    ForgeError::Request(format!("{remote}: the answer has no `{name}`"))
                })
            };
            Ok(RemoteRepo {
                clone_url: get("http_url_to_repo")?,
                web_url: get("web_url")?,
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
                "state": gitlab_state(&status.state),
                "name": status.context,
                "target_url": status.target_url,
                "description": status.description,
            });
            let path = format!("/projects/{}/statuses/{sha}", encode_path(remote));
            self.api.call(Method::POST, &path, Some(&body), &[]).await?;
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
            let project = format!("/projects/{}/hooks", encode_path(remote));
            let body = json!({
                "url": url,
                "token": secret,
                "push_events": true,
                "tag_push_events": true,
                "merge_requests_events": true,
                "enable_ssl_verification": true,
            });
            let hooks = self.api.call(Method::GET, &project, None, &[]).await?;
            let existing = hooks
                .as_array()
                .into_iter()
                .flatten()
                .find(|h| same_hook(h, &h["url"], url, previous));
            let hook = match existing {
                Some(hook) => {
                    let path = format!("{project}/{}", hook["id"]);
                    self.api.call(Method::PUT, &path, Some(&body), &[]).await?
                }
                None => {
                    self.api
                        .call(Method::POST, &project, Some(&body), &[])
                        .await?
                }
            };
            hook_id(remote, &hook)
        }
        .boxed()
    }

    fn git_username(&self) -> &'static str {
        "oauth2"
    }

    fn list_path(&self, kind: SourceKind, target: &str) -> String {
        let id = encode_path(target);
        match kind {
            SourceKind::Starred => format!("/users/{id}/starred_projects?per_page=100"),
            SourceKind::Org => {
                format!("/groups/{id}/projects?include_subgroups=true&per_page=100")
            }
        }
    }

    fn list_page<'a>(
        &'a self,
        path: &'a str,
        etag: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Option<Page>, ForgeError>> {
        async move {
            let Some((answer, headers)) = self.api.get_if_changed(path, etag, &[]).await? else {
                return Ok(None);
            };
            let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
            // GitLab names the next page's number; empty on the last page.
            let next_path = match header("x-next-page")
                .map(str::trim)
                .filter(|n| !n.is_empty())
            {
                Some(n) => {
                    let page = n
                        .parse::<u32>()
                        .ok()
                        .filter(|p| (2..=MAX_PAGE_NUMBER).contains(p))
                        .ok_or_else(|| {
                            ForgeError::Request(format!(
                                "GET {path}: X-Next-Page {n:.20} is not a page number"
                            ))
                        })?;
                    let first = path.split("&page=").next().unwrap_or(path);
                    Some(format!("{first}&page={page}"))
                }
                None => None,
            };
            super::page(
                path,
                header("etag"),
                next_path,
                &answer,
                "path_with_namespace",
                "http_url_to_repo",
            )
            .map(Some)
        }
        .boxed()
    }
}
