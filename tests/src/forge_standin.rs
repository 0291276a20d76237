//! A stand-in for GitHub's and GitLab's REST APIs, on loopback, for tests:
//! GitHub cannot be reached from here. It speaks the documented endpoints
//! Hangar uses (repository lookup, commit statuses, repository webhooks),
//! checks the token header each API documents, records what it was sent,
//! and can play "down" (503 to everything). The git side of a hosted
//! repository is a real `git http-backend` ([`crate::upstream::Upstream`]):
//! the stand-in only answers with its clone URL.
//!
//! Repository lists (a user's starred repositories, an organization's or a
//! group's repositories) are paged as documented (`Link: <...>; rel="next"`
//! on GitHub, `X-Next-Page` on GitLab) and carry an `ETag`; a request whose
//! `If-None-Match` matches gets 304 with no body.
//!
//! It also makes webhook deliveries in the documented formats (headers,
//! HMAC-SHA256 signature) for tests to post to the agent.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// One request the stand-in answered (method, path, JSON body).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub body: Value,
}

/// One request for a repository list, and how it was answered.
#[derive(Debug, Clone)]
pub struct ListRequest {
    /// Path and query, as sent.
    pub path: String,
    pub if_none_match: Option<String>,
    pub status: u16,
}

#[derive(Default)]
struct State {
    /// Repository path (`octo/hello`) → clone URL.
    repos: HashMap<String, String>,
    hooks: Vec<Value>,
    recorded: Vec<Recorded>,
    /// `starred/USER`, `org/ORG`, `group/GROUP`, `own-starred` → repository paths.
    lists: HashMap<String, Vec<String>>,
    /// Most repositories per page (below `per_page`, as forges may).
    page_size: Option<usize>,
    list_requests: Vec<ListRequest>,
}

/// The stand-in server. It stops when the test process ends.
pub struct ForgeStandin {
    pub port: u16,
    pub token: String,
    state: Arc<Mutex<State>>,
    down: Arc<AtomicBool>,
}

impl ForgeStandin {
    /// Starts a stand-in that accepts `token`.
    pub fn start(token: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stand-in");
        let port = listener.local_addr().expect("addr").port();
        let standin = ForgeStandin {
            port,
            token: token.to_owned(),
            state: Arc::default(),
            down: Arc::default(),
        };
        let (state, down, token) = (
            standin.state.clone(),
            standin.down.clone(),
            token.to_owned(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (state, down, token) = (state.clone(), down.clone(), token.clone());
                std::thread::spawn(move || serve(stream, &state, &down, &token));
            }
        });
        standin
    }

    /// GitHub's API base (`--url` of `hangar forge add github`).
    pub fn github_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// GitLab's instance URL (the API is below `/api/v4`).
    pub fn gitlab_url(&self) -> String {
        format!("http://127.0.0.1:{}/gitlab", self.port)
    }

    /// Makes `path` (`octo/hello`) a repository cloned from `clone_url`.
    pub fn add_repo(&self, path: &str, clone_url: &str) {
        self.lock()
            .repos
            .insert(path.to_owned(), clone_url.to_owned());
    }

    /// The repositories `user` has starred (GitHub and GitLab).
    pub fn set_starred(&self, user: &str, repos: &[&str]) {
        self.set_list(&format!("starred/{user}"), repos);
    }

    /// The repositories the token's own user starred (GitHub's `GET
    /// /user/starred`); their entries say `"private": true`, as they may.
    pub fn set_own_starred(&self, repos: &[&str]) {
        self.set_list(OWN_STARRED, repos);
    }

    /// The repositories of GitHub organization `org`.
    pub fn set_org(&self, org: &str, repos: &[&str]) {
        self.set_list(&format!("org/{org}"), repos);
    }

    /// The projects of GitLab group `group` (subgroups included).
    pub fn set_group(&self, group: &str, repos: &[&str]) {
        self.set_list(&format!("group/{group}"), repos);
    }

    fn set_list(&self, key: &str, repos: &[&str]) {
        self.lock().lists.insert(
            key.to_owned(),
            repos.iter().map(|r| (*r).to_owned()).collect(),
        );
    }

    /// Pages hold at most `n` repositories from now on.
    pub fn set_page_size(&self, n: usize) {
        self.lock().page_size = Some(n);
    }

    /// Requests for repository lists, oldest first.
    pub fn list_requests(&self) -> Vec<ListRequest> {
        self.lock().list_requests.clone()
    }

    /// While down, every request gets 503.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Commit statuses received: (path, body), oldest first.
    pub fn statuses(&self) -> Vec<Recorded> {
        self.lock()
            .recorded
            .iter()
            .filter(|r| r.method == "POST" && r.path.contains("/statuses/"))
            .cloned()
            .collect()
    }

    /// Webhooks as created or updated.
    pub fn hooks(&self) -> Vec<Value> {
        self.lock().hooks.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("stand-in state")
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>, down: &AtomicBool, token: &str) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_owned(),
        parts.next().unwrap_or("").to_owned(),
    );
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (status, extra, text) = if down.load(Ordering::SeqCst) {
        (
            503,
            Vec::new(),
            json!({ "message": "stand-in is down" }).to_string(),
        )
    } else if let Some(listed) = list(state, &method, &path, &headers, token) {
        listed
    } else {
        let (status, answer) = respond(state, &method, &path, &headers, body, token);
        (status, Vec::new(), answer.to_string())
    };
    let mut head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        text.len()
    );
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let mut stream = stream;
    let _ = write!(stream, "{head}\r\n{text}");
}

/// An answer: status, extra headers, body.
type Answer = (u16, Vec<(String, String)>, String);

const OWN_STARRED: &str = "own-starred";

/// Repository lists: GitHub `GET /users/USER/starred`, `GET /user/starred`
/// (the token's user), `GET /orgs/ORG/repos`;
/// GitLab `GET /api/v4/users/USER/starred_projects`,
/// `GET /api/v4/groups/GROUP/projects`. Paged, with ETags.
fn list(
    state: &Mutex<State>,
    method: &str,
    path: &str,
    headers: &HashMap<String, String>,
    token: &str,
) -> Option<Answer> {
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    let segments: Vec<&str> = route.trim_start_matches('/').split('/').collect();
    let (gitlab, key) = match segments.as_slice() {
        ["users", user, "starred"] => (false, format!("starred/{user}")),
        ["user", "starred"] => (false, OWN_STARRED.to_owned()),
        ["orgs", org, "repos"] => (false, format!("org/{org}")),
        ["gitlab", "api", "v4", "users", user, "starred_projects"] => {
            (true, format!("starred/{user}"))
        }
        ["gitlab", "api", "v4", "groups", group, "projects"] => {
            (true, format!("group/{}", group.replace("%2F", "/")))
        }
        _ => return None,
    };
    if method != "GET" {
        return None;
    }
    let authorized = if gitlab {
        headers.get("private-token").map(String::as_str) == Some(token)
    } else {
        headers.get("authorization").map(String::as_str) == Some(&format!("Bearer {token}"))
    };
    if !authorized {
        return Some((
            401,
            Vec::new(),
            json!({ "message": "401 Unauthorized" }).to_string(),
        ));
    }
    let param = |name: &str| -> Option<usize> {
        query
            .split('&')
            .find_map(|p| p.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
    };
    let mut state = state.lock().expect("stand-in state");
    let Some(all) = state.lists.get(&key).cloned() else {
        return Some((
            404,
            Vec::new(),
            json!({ "message": "404 Not Found" }).to_string(),
        ));
    };
    let size = param("per_page")
        .unwrap_or(30)
        .min(state.page_size.unwrap_or(100))
        .max(1);
    let page = param("page").unwrap_or(1).max(1);
    let pages = all.len().div_ceil(size).max(1);
    let items: Vec<Value> = all
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|repo| {
            let clone_url = state.repos.get(repo).cloned().unwrap_or_default();
            if gitlab {
                json!({ "id": 1, "path_with_namespace": repo, "http_url_to_repo": clone_url,
                        "web_url": format!("https://gitlab.example/{repo}"), "archived": false })
            } else {
                json!({ "full_name": repo, "name": repo.rsplit('/').next(), "clone_url": clone_url,
                        "html_url": format!("https://github.example/{repo}"), "private": key == OWN_STARRED, "archived": false })
            }
        })
        .collect();
    let text = Value::Array(items).to_string();
    let etag = format!("W/\"{:016x}\"", fnv(text.as_bytes()));
    let if_none_match = headers.get("if-none-match").cloned();
    let status = if if_none_match.as_deref() == Some(etag.as_str()) {
        304
    } else {
        200
    };
    state.list_requests.push(ListRequest {
        path: path.to_owned(),
        if_none_match,
        status,
    });
    let mut extra = vec![("etag".to_owned(), etag)];
    if page < pages {
        if gitlab {
            extra.push(("x-next-page".to_owned(), (page + 1).to_string()));
        } else {
            let host = headers.get("host").cloned().unwrap_or_default();
            let first: Vec<&str> = query
                .split('&')
                .filter(|p| !p.starts_with("page="))
                .collect();
            let link = |n: usize| format!("<http://{host}{route}?{}&page={n}>", first.join("&"));
            extra.push((
                "link".to_owned(),
                format!(
                    "{}; rel=\"next\", {}; rel=\"last\"",
                    link(page + 1),
                    link(pages)
                ),
            ));
        }
    } else if gitlab {
        extra.push(("x-next-page".to_owned(), String::new()));
    }
    let body = if status == 304 { String::new() } else { text };
    Some((status, extra, body))
}

/// FNV-1a, for stable ETags.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn respond(
    state: &Mutex<State>,
    method: &str,
    path: &str,
    headers: &HashMap<String, String>,
    body: Value,
    token: &str,
) -> (u16, Value) {
    let mut state = state.lock().expect("stand-in state");
    // GitLab: `/gitlab/api/v4/projects/GROUP%2FNAME/...`, PRIVATE-TOKEN.
    if let Some(rest) = path.strip_prefix("/gitlab/api/v4/projects/") {
        if headers.get("private-token").map(String::as_str) != Some(token) {
            return (401, json!({ "message": "401 Unauthorized" }));
        }
        let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
        let repo = id.replace("%2F", "/");
        let Some(clone_url) = state.repos.get(&repo).cloned() else {
            return (404, json!({ "message": "404 Project Not Found" }));
        };
        state.recorded.push(Recorded {
            method: method.to_owned(),
            path: path.to_owned(),
            body: body.clone(),
        });
        return match (method, tail) {
            ("GET", "") => (
                200,
                json!({ "id": 1, "path_with_namespace": repo, "http_url_to_repo": clone_url,
                        "web_url": format!("https://gitlab.example/{repo}") }),
            ),
            ("POST", t) if t.starts_with("statuses/") => {
                (201, json!({ "id": 1, "status": body["state"] }))
            }
            ("GET", "hooks") => (200, Value::Array(state.hooks.clone())),
            ("POST", "hooks") => {
                let mut hook = body;
                hook["id"] = json!(state.hooks.len() + 1);
                state.hooks.push(hook.clone());
                (201, hook)
            }
            _ => (404, json!({ "message": "404 Not Found" })),
        };
    }
    // GitHub: `/repos/OWNER/NAME/...`, `Authorization: Bearer`.
    if let Some(rest) = path.strip_prefix("/repos/") {
        if headers.get("authorization").map(String::as_str) != Some(&format!("Bearer {token}")) {
            return (401, json!({ "message": "Bad credentials" }));
        }
        let mut segments = rest.splitn(3, '/');
        let repo = format!(
            "{}/{}",
            segments.next().unwrap_or(""),
            segments.next().unwrap_or("")
        );
        let tail = segments.next().unwrap_or("");
        let Some(clone_url) = state.repos.get(&repo).cloned() else {
            return (404, json!({ "message": "Not Found" }));
        };
        state.recorded.push(Recorded {
            method: method.to_owned(),
            path: path.to_owned(),
            body: body.clone(),
        });
        return match (method, tail) {
            ("GET", "") => (
                200,
                json!({ "full_name": repo, "clone_url": clone_url, "html_url": format!("https://github.example/{repo}") }),
            ),
            ("POST", t) if t.starts_with("statuses/") => (
                201,
                json!({ "state": body["state"], "context": body["context"] }),
            ),
            ("GET", "hooks") => (200, Value::Array(state.hooks.clone())),
            ("POST", "hooks") => {
                let mut hook = body;
                hook["id"] = json!(state.hooks.len() + 1);
                state.hooks.push(hook.clone());
                (201, hook)
            }
            ("PATCH", t) if t.starts_with("hooks/") => {
                let id: u64 = t["hooks/".len()..].parse().unwrap_or(0);
                match state.hooks.iter_mut().find(|h| h["id"] == json!(id)) {
                    Some(hook) => {
                        hook["config"] = body["config"].clone();
                        (200, hook.clone())
                    }
                    None => (404, json!({ "message": "Not Found" })),
                }
            }
            _ => (404, json!({ "message": "Not Found" })),
        };
    }
    (404, json!({ "message": "Not Found" }))
}

/// A webhook delivery as GitHub sends it: headers (with the HMAC-SHA256
/// signature of `body` under `secret`) and the body.
pub fn github_delivery(
    event: &str,
    delivery: &str,
    secret: &str,
    body: &Value,
) -> (Vec<(String, String)>, Vec<u8>) {
    let bytes = body.to_string().into_bytes();
    let headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("x-github-event".to_owned(), event.to_owned()),
        ("x-github-delivery".to_owned(), delivery.to_owned()),
        ("x-github-hook-id".to_owned(), "1".to_owned()),
        (
            "user-agent".to_owned(),
            "GitHub-Hookshot/stand-in".to_owned(),
        ),
        (
            "x-hub-signature-256".to_owned(),
            hangar_core::webhook::github_signature(secret.as_bytes(), &bytes),
        ),
    ];
    (headers, bytes)
}

/// Posts a delivery (headers and body) to `url`; returns the status and the
/// JSON answer (Null when there is none).
pub fn post_delivery(
    http: &reqwest::blocking::Client,
    url: &str,
    (headers, body): &(Vec<(String, String)>, Vec<u8>),
) -> (u16, Value) {
    let mut request = http.post(url).body(body.clone());
    for (k, v) in headers {
        request = request.header(k, v);
    }
    let response = request.send().expect("the receiver answers");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// A webhook delivery as GitLab sends it (the secret travels as a token).
pub fn gitlab_delivery(
    event: &str,
    delivery: &str,
    secret: &str,
    body: &Value,
) -> (Vec<(String, String)>, Vec<u8>) {
    let headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("x-gitlab-event".to_owned(), event.to_owned()),
        ("idempotency-key".to_owned(), delivery.to_owned()),
        ("x-gitlab-event-uuid".to_owned(), delivery.to_owned()),
        ("x-gitlab-webhook-uuid".to_owned(), "hook-1".to_owned()),
        ("x-gitlab-token".to_owned(), secret.to_owned()),
    ];
    (headers, body.to_string().into_bytes())
}

/// GitHub's `push` payload (the fields Hangar reads, and a few more).
pub fn github_push(repo: &str, git_ref: &str, before: &str, after: &str) -> Value {
    json!({
        "ref": git_ref, "before": before, "after": after, "created": false, "deleted": false,
        "repository": { "full_name": repo, "name": repo.rsplit('/').next() },
        "pusher": { "name": "mona" }, "sender": { "login": "mona" },
    })
}

/// GitHub's `pull_request` payload.
pub fn github_pull_request(
    repo: &str,
    action: &str,
    number: u64,
    head: (&str, &str),
    base: (&str, &str),
) -> Value {
    json!({
        "action": action, "number": number,
        "repository": { "full_name": repo },
        "pull_request": {
            "number": number, "title": format!("Change #{number}"), "state": if action == "closed" { "closed" } else { "open" },
            "merged": false, "user": { "login": "mona" },
            "html_url": format!("https://github.example/{repo}/pull/{number}"),
            "head": { "ref": head.0, "sha": head.1 }, "base": { "ref": base.0, "sha": base.1 },
        },
    })
}

/// A stand-in for a smee.io-style relay channel: Server-Sent Events whose
/// `data` carries a delivery's headers and body.
pub struct RelayStandin {
    pub port: u16,
    clients: Arc<Mutex<Vec<TcpStream>>>,
}

impl RelayStandin {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let port = listener.local_addr().expect("addr").port();
        let clients: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let accepted = clients.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                // Read the request head, then answer with an open event stream.
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\r\nevent: ready\ndata: {}\n\n",
                );
                accepted.lock().expect("clients").push(stream);
            }
        });
        RelayStandin { port, clients }
    }

    /// The channel URL (what the forge's webhook would point at).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/channel", self.port)
    }

    pub fn subscribers(&self) -> usize {
        self.clients.lock().expect("clients").len()
    }

    /// Relays a delivery as smee.io does: headers as members, the body as
    /// `body` (embedded as is, so it may span several `data:` lines).
    pub fn send(&self, (headers, body): &(Vec<(String, String)>, Vec<u8>)) {
        let mut data = String::from("{");
        for (k, v) in headers {
            data.push_str(&format!("{}:{},", json!(k), json!(v)));
        }
        data.push_str("\"host\":\"smee.example\",\"body\":");
        data.push_str(std::str::from_utf8(body).expect("utf-8 body"));
        data.push_str(",\"query\":{},\"timestamp\":1}");
        let mut event = String::new();
        for line in data.split('\n') {
            event.push_str(&format!("data: {line}\n"));
        }
        event.push('\n');
        for client in self.clients.lock().expect("clients").iter_mut() {
            let _ = client.write_all(event.as_bytes());
        }
    }
}
