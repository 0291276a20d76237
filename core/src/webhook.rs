//! Webhooks from GitHub and GitLab: checking that a delivery comes from the
//! forge (pure functions over the secret, headers and raw body), and reading
//! the events Hangar acts on. Nothing here trusts the body before
//! [`verify_github`] / [`verify_gitlab`] passed.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::store::pulls::Pull;

/// Largest delivery accepted (GitHub caps payloads at 25 MB).
pub const MAX_BODY: u64 = 25 * 1024 * 1024;
/// Longest event name, hook id or delivery id kept.
pub const MAX_ID: usize = 200;

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing {0} header; set a secret on the webhook")]
    Missing(&'static str),
    #[error("{0} header is malformed (expected sha256=<64 hex digits>)")]
    Malformed(&'static str),
    #[error("signature does not match any configured webhook secret")]
    Mismatch,
}

/// `sha256=HEX` of HMAC-SHA256(secret, body), as GitHub sends it.
pub fn github_signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks `X-Hub-Signature-256` against each secret in constant time;
/// returns the index of the secret that signed the body.
pub fn verify_github<'a>(
    secrets: impl IntoIterator<Item = &'a [u8]>,
    header: Option<&str>,
    body: &[u8],
) -> Result<usize, VerifyError> {
    const NAME: &str = "X-Hub-Signature-256";
    let header = header.ok_or(VerifyError::Missing(NAME))?;
    let digest = header
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .filter(|d| d.len() == 32)
        .ok_or(VerifyError::Malformed(NAME))?;
    for (i, secret) in secrets.into_iter().enumerate() {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(body);
        // `verify_slice` compares in constant time.
        if mac.verify_slice(&digest).is_ok() {
            return Ok(i);
        }
    }
    Err(VerifyError::Mismatch)
}

/// Checks `X-Gitlab-Token` against each secret in constant time.
pub fn verify_gitlab<'a>(
    secrets: impl IntoIterator<Item = &'a [u8]>,
    header: Option<&str>,
) -> Result<usize, VerifyError> {
    let token = header.ok_or(VerifyError::Missing("X-Gitlab-Token"))?;
    let mut found = None;
    for (i, secret) in secrets.into_iter().enumerate() {
        // Every secret is compared, so timing does not tell which matched.
        if bool::from(secret.ct_eq(token.as_bytes())) && found.is_none() {
            found = Some(i);
        }
    }
    found.ok_or(VerifyError::Mismatch)
}

/// An event Hangar acts on, read from a verified body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A ref moved (`after` all zeros: deleted).
    Push {
        repo: String,
        git_ref: String,
        before: String,
        after: String,
    },
    /// A pull/merge request was opened, updated or closed. `action` is
    /// GitHub's word: `opened`, `synchronize`, `reopened`, `closed`, `edited`.
    PullRequest {
        repo: String,
        action: String,
        pull: Pull,
    },
    Ping {
        repo: Option<String>,
    },
    /// Stored and acknowledged; nothing to do.
    Other {
        event: String,
    },
}

/// Why a verified body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

fn text<'a>(v: &'a Value, path: &[&str]) -> Result<&'a str, ParseError> {
    let mut at = v;
    for key in path {
        at = &at[*key];
    }
    at.as_str()
        .filter(|s| s.len() <= 4096)
        .ok_or_else(|| ParseError(format!("payload has no `{}` string", path.join("."))))
}

fn is_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn sha(v: &Value, path: &[&str]) -> Result<String, ParseError> {
    let s = text(v, path)?;
    if !is_sha(s) {
        return Err(ParseError(format!(
            "`{}` is not a commit id: {s:?}",
            path.join(".")
        )));
    }
    Ok(s.to_ascii_lowercase())
}

/// The clone URLs a delivery names for its repository (GitHub
/// `repository.clone_url` and `ssh_url`, GitLab `project.git_http_url` and
/// `git_ssh_url`): how plain mirrors of it are found.
pub fn clone_urls(body: &[u8]) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    [
        &["repository", "clone_url"][..],
        &["repository", "ssh_url"],
        &["project", "git_http_url"],
        &["project", "git_ssh_url"],
    ]
    .iter()
    .filter_map(|path| text(&v, path).ok())
    .map(str::to_owned)
    .collect()
}

/// Reads a GitHub delivery of event `event` (`X-GitHub-Event`).
pub fn parse_github(event: &str, body: &[u8]) -> Result<Event, ParseError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| ParseError(format!("body is not JSON: {e}")))?;
    match event {
        "push" => Ok(Event::Push {
            repo: text(&v, &["repository", "full_name"])?.to_owned(),
            git_ref: text(&v, &["ref"])?.to_owned(),
            before: sha(&v, &["before"])?,
            after: sha(&v, &["after"])?,
        }),
        "pull_request" => {
            let pr = &v["pull_request"];
            let number = v["number"]
                .as_u64()
                .or_else(|| pr["number"].as_u64())
                .ok_or_else(|| ParseError("payload has no `number`".into()))?;
            let state = if pr["merged"].as_bool() == Some(true) {
                "merged"
            } else if text(pr, &["state"])? == "closed" {
                "closed"
            } else {
                "open"
            };
            Ok(Event::PullRequest {
                repo: text(&v, &["repository", "full_name"])?.to_owned(),
                action: text(&v, &["action"])?.to_owned(),
                pull: Pull {
                    number,
                    title: text(pr, &["title"])?.to_owned(),
                    author: text(pr, &["user", "login"])?.to_owned(),
                    head_ref: text(pr, &["head", "ref"])?.to_owned(),
                    head_sha: sha(pr, &["head", "sha"])?,
                    base_ref: text(pr, &["base", "ref"])?.to_owned(),
                    base_sha: Some(sha(pr, &["base", "sha"])?),
                    state: state.to_owned(),
                    url: text(pr, &["html_url"])?.to_owned(),
                },
            })
        }
        "ping" => Ok(Event::Ping {
            repo: text(&v, &["repository", "full_name"])
                .ok()
                .map(str::to_owned),
        }),
        other => Ok(Event::Other {
            event: other.to_owned(),
        }),
    }
}

/// Reads a GitLab delivery of event `event` (`X-Gitlab-Event`).
pub fn parse_gitlab(event: &str, body: &[u8]) -> Result<Event, ParseError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| ParseError(format!("body is not JSON: {e}")))?;
    match event {
        "Push Hook" | "Tag Push Hook" => Ok(Event::Push {
            repo: text(&v, &["project", "path_with_namespace"])?.to_owned(),
            git_ref: text(&v, &["ref"])?.to_owned(),
            before: sha(&v, &["before"])?,
            after: sha(&v, &["after"])?,
        }),
        "Merge Request Hook" => {
            let mr = &v["object_attributes"];
            let number = mr["iid"]
                .as_u64()
                .ok_or_else(|| ParseError("payload has no `object_attributes.iid`".into()))?;
            // GitLab's actions, in GitHub's words.
            let action = match mr["action"].as_str().unwrap_or("update") {
                "open" => "opened",
                "reopen" => "reopened",
                "close" | "merge" => "closed",
                "update" if mr["oldrev"].is_string() => "synchronize",
                _ => "edited",
            };
            let state = match text(mr, &["state"])? {
                "merged" => "merged",
                "closed" | "locked" => "closed",
                _ => "open",
            };
            let author = text(&v, &["user", "username"])?;
            Ok(Event::PullRequest {
                repo: text(&v, &["project", "path_with_namespace"])?.to_owned(),
                action: action.to_owned(),
                pull: Pull {
                    number,
                    title: text(mr, &["title"])?.to_owned(),
                    author: author.to_owned(),
                    head_ref: text(mr, &["source_branch"])?.to_owned(),
                    head_sha: sha(mr, &["last_commit", "id"])?,
                    base_ref: text(mr, &["target_branch"])?.to_owned(),
                    base_sha: None,
                    state: state.to_owned(),
                    url: text(mr, &["url"])?.to_owned(),
                },
            })
        }
        other => Ok(Event::Other {
            event: other.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's published example ("Validating webhook deliveries").
    #[test]
    fn github_test_vector() {
        let secret = b"It's a Secret to Everybody";
        let body = b"Hello, World!";
        let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(github_signature(secret, body), expected);
        let secrets: [&[u8]; 2] = [b"other", secret];
        assert_eq!(verify_github(secrets, Some(expected), body), Ok(1));
        assert_eq!(
            verify_github([&secret[..]], Some(expected), b"Hello, World?"),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_github([&secret[..]], Some("sha1=abc"), body),
            Err(VerifyError::Malformed("X-Hub-Signature-256"))
        );
        assert_eq!(
            verify_github([&secret[..]], None, body),
            Err(VerifyError::Missing("X-Hub-Signature-256"))
        );
    }

    #[test]
    fn gitlab_token() {
        let secrets: [&[u8]; 2] = [b"one", b"two"];
        assert_eq!(verify_gitlab(secrets, Some("two")), Ok(1));
        assert_eq!(
            verify_gitlab(secrets, Some("three")),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_gitlab(secrets, Some("tw")),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn github_push_and_pull_request() {
        let sha = "a".repeat(40);
        let push = serde_json::json!({
            "ref": "refs/heads/main", "before": "0".repeat(40), "after": sha,
            "repository": { "full_name": "octo/hello" }
        });
        assert_eq!(
            parse_github("push", push.to_string().as_bytes()).unwrap(),
            Event::Push {
                repo: "octo/hello".into(),
                git_ref: "refs/heads/main".into(),
                before: "0".repeat(40),
                after: sha.clone(),
            }
        );
        let pr = serde_json::json!({
            "action": "opened", "number": 7, "repository": { "full_name": "octo/hello" },
            "pull_request": { "title": "Fix", "user": { "login": "mona" }, "state": "open",
                "html_url": "https://github.com/octo/hello/pull/7",
                "head": { "ref": "fix", "sha": sha }, "base": { "ref": "main", "sha": "b".repeat(40) } }
        });
        let Event::PullRequest { action, pull, .. } =
            parse_github("pull_request", pr.to_string().as_bytes()).unwrap()
        else {
            panic!("not a pull request")
        };
        assert_eq!(
            (action.as_str(), pull.number, pull.state.as_str()),
            ("opened", 7, "open")
        );
        let err = parse_github("push", b"{\"ref\": 1}").unwrap_err();
        assert!(err.0.contains("repository.full_name"), "{err}");
        assert_eq!(
            parse_github("star", b"{}").unwrap(),
            Event::Other {
                event: "star".into()
            }
        );
    }

    #[test]
    fn gitlab_merge_request() {
        let mr = serde_json::json!({
            "object_kind": "merge_request", "user": { "username": "mona" },
            "project": { "path_with_namespace": "group/app" },
            "object_attributes": { "iid": 3, "title": "Add", "state": "opened", "action": "open",
                "source_branch": "add", "target_branch": "main",
                "last_commit": { "id": "c".repeat(40) }, "url": "https://gitlab.com/group/app/-/merge_requests/3" }
        });
        let Event::PullRequest { repo, action, pull } =
            parse_gitlab("Merge Request Hook", mr.to_string().as_bytes()).unwrap()
        else {
            panic!("not a merge request")
        };
        assert_eq!(
            (repo.as_str(), action.as_str(), pull.number),
            ("group/app", "opened", 3)
        );
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(event in "push|pull_request|ping|Push Hook|Merge Request Hook|x",
                               body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = parse_github(&event, &body);
            let _ = parse_gitlab(&event, &body);
            let _ = verify_github([&b"s"[..]], std::str::from_utf8(&body).ok(), &body);
        }
    }
}
