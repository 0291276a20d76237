//! GitHub and GitLab end to end: hosted repos, signed webhooks, builds and
//! commit statuses. GitHub and GitLab cannot be reached from here: their
//! APIs are played by the stand-in in tests/src/forge_standin.rs, and the
//! hosted repository's git side is a real `git http-backend` upstream.

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use hangar_tests::forge_standin::{
    self, ForgeStandin, github_delivery, github_pull_request, github_push, gitlab_delivery,
};
use hangar_tests::upstream::Upstream;
use hangar_tests::{Agent, commit_file, git, wait_until, work_repo};
use serde_json::{Value, json};

const TOKEN: &str = "ghp_standin_token";
const SECRET: &str = "webhook secret for tests";

const CI: &str = r#"
name: CI
on: [push, pull_request]
jobs:
  build:
    runs-on: self-hosted
    steps:
      - run: echo "built $GITHUB_SHA"
"#;

/// An agent with a GitHub account on the stand-in and `octo/hello` hosted
/// there (mirrored, first fetch done).
struct Hosted {
    agent: Agent,
    standin: ForgeStandin,
    upstream: Upstream,
    work: tempfile::TempDir,
}

fn hosted_with_env(env: &[(&str, &str)]) -> Hosted {
    let upstream = Upstream::http(None);
    let work = work_repo(&[
        (".github/workflows/ci.yml", CI.as_bytes()),
        ("README.md", b"hi\n"),
    ]);
    upstream.bare("octo/hello", Some(work.path()));
    let standin = ForgeStandin::start(TOKEN);
    standin.add_repo("octo/hello", &upstream.url("octo/hello"));
    let mut all = vec![("HANGAR_ALLOW_LOCAL_MIRRORS", "true")];
    all.extend_from_slice(env);
    let agent = Agent::start_with_env(&all);
    let (status, forge) = agent.api(
        "POST",
        "/api/v1/forges",
        Some(
            json!({ "provider": "github", "url": standin.github_url(), "token": TOKEN,
                     "webhook_secret": SECRET, "allow_http": true }),
        ),
    );
    assert_eq!(status, 201, "{forge}");
    assert_eq!(forge["webhook_secret"], SECRET);
    let out = agent.cli(&["repo", "add", "github:octo/hello", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let added: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(added["repo"], "octo/hello");
    wait_until(&agent, "the first fetch", || {
        let (_, m) = agent.api("GET", "/api/v1/mirrors/octo/hello", None);
        m["state"] == "ok"
    });
    Hosted {
        agent,
        standin,
        upstream,
        work,
    }
}

fn hosted() -> Hosted {
    hosted_with_env(&[])
}

impl Hosted {
    /// Commits to the work repo, pushes it upstream, returns (before, after).
    fn push_upstream(&self, file: &str) -> (String, String) {
        let before = git(self.work.path(), &["rev-parse", "HEAD"])
            .trim()
            .to_owned();
        commit_file(self.work.path(), file, b"change\n");
        let after = git(self.work.path(), &["rev-parse", "HEAD"])
            .trim()
            .to_owned();
        let path = self.upstream.path("octo/hello");
        git(
            self.work.path(),
            &["push", "-q", path.to_str().expect("utf-8"), "main"],
        );
        (before, after)
    }

    fn push_delivery(
        &self,
        id: &str,
        before: &str,
        after: &str,
    ) -> (Vec<(String, String)>, Vec<u8>) {
        let body = github_push("octo/hello", "refs/heads/main", before, after);
        github_delivery("push", id, SECRET, &body)
    }

    fn builds(&self) -> Vec<Value> {
        let (_, list) = self
            .agent
            .api("GET", "/api/v1/builds?repo=octo/hello", None);
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until the stand-in has statuses `states` (in order) for `sha`.
    fn wait_statuses(&self, sha: &str, states: &[&str]) -> Vec<Value> {
        let got = || -> Vec<Value> {
            self.standin
                .statuses()
                .into_iter()
                .filter(|s| s.path.ends_with(sha))
                .map(|s| s.body)
                .collect()
        };
        wait_until(
            &self.agent,
            &format!("statuses {states:?} for {sha}"),
            || got().len() >= states.len(),
        );
        let bodies = got();
        let seen: Vec<&str> = bodies
            .iter()
            .map(|b| b["state"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(seen, states, "{bodies:?}");
        bodies
    }
}

#[test]
fn signed_push_builds_and_statuses_land_on_the_forge() {
    let h = hosted();
    let (before, after) = h.push_upstream("one.txt");
    let (status, answer) = h
        .agent
        .deliver("github", &h.push_delivery("d-push-1", &before, &after));
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["duplicate"], false);

    let builds = h.agent.wait_builds("octo/hello", 1);
    assert_eq!(builds.len(), 1, "{builds:?}");
    assert_eq!(builds[0]["sha"], after.as_str());
    assert_eq!(builds[0]["status"], "success");

    let statuses = h.wait_statuses(&after, &["pending", "success"]);
    assert_eq!(statuses[1]["context"], "hangar/CI/build");
    let target = statuses[1]["target_url"].as_str().expect("target url");
    assert!(
        target.ends_with(&format!(
            "/api/v1/builds/{}",
            builds[0]["id"].as_str().expect("id")
        )),
        "{target}"
    );

    // The delivery is listed as done, by the API and the CLI.
    let out = h.agent.cli(&["delivery", "list", "--json"]);
    assert!(out.status.success());
    let list: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(list[0]["delivery_id"], "d-push-1");
    assert_eq!(list[0]["state"], "done", "{list}");
    let out = h.agent.cli(&["forge", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("github"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains(TOKEN));

    // Replaying it builds the commit again.
    let id = list[0]["id"].as_str().expect("id");
    let out = h.agent.cli(&["delivery", "replay", id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    h.agent.wait_builds("octo/hello", 2);
}

#[test]
fn pull_request_is_recorded_and_its_head_builds() {
    let h = hosted();
    let base = git(h.work.path(), &["rev-parse", "HEAD"]).trim().to_owned();
    git(h.work.path(), &["checkout", "-q", "-b", "fix"]);
    commit_file(h.work.path(), "fix.txt", b"fixed\n");
    let head = git(h.work.path(), &["rev-parse", "HEAD"]).trim().to_owned();
    // GitHub keeps a PR's head at refs/pull/N/head.
    let path = h.upstream.path("octo/hello");
    git(
        h.work.path(),
        &[
            "push",
            "-q",
            path.to_str().expect("utf-8"),
            "HEAD:refs/pull/7/head",
        ],
    );

    let body = github_pull_request("octo/hello", "opened", 7, ("fix", &head), ("main", &base));
    let (status, answer) = h.agent.deliver(
        "github",
        &github_delivery("pull_request", "d-pr-1", SECRET, &body),
    );
    assert_eq!(status, 202, "{answer}");

    let builds = h.agent.wait_builds("octo/hello", 1);
    assert_eq!(builds[0]["sha"], head.as_str());
    assert_eq!(builds[0]["trigger"], "pull_request");
    h.wait_statuses(&head, &["pending", "success"]);

    let out = h.agent.cli(&["pr", "list", "--json"]);
    assert!(out.status.success());
    let pulls: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(pulls[0]["number"], 7);
    assert_eq!(pulls[0]["state"], "open");
    assert_eq!(pulls[0]["head_sha"], head.as_str());
    assert_eq!(pulls[0]["base_ref"], "main");
    assert_eq!(pulls[0]["author"], "mona");
    assert_eq!(pulls[0]["forge"], "github");

    // Closing updates the record and builds nothing.
    let body = github_pull_request("octo/hello", "closed", 7, ("fix", &head), ("main", &base));
    let (status, _) = h.agent.deliver(
        "github",
        &github_delivery("pull_request", "d-pr-2", SECRET, &body),
    );
    assert_eq!(status, 202);
    wait_until(&h.agent, "the PR to close", || {
        let (_, v) = h.agent.api("GET", "/api/v1/pulls?state=closed", None);
        v["items"].as_array().is_some_and(|a| a.len() == 1)
    });
    assert_eq!(h.builds().len(), 1);
}

#[test]
fn the_same_delivery_100_times_and_after_a_restart_builds_once() {
    let mut h = hosted();
    let (before, after) = h.push_upstream("one.txt");
    let delivery = h.push_delivery("d-dup", &before, &after);
    let url = h.agent.url.clone();
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..100)
            .map(|_| {
                let delivery = &delivery;
                let url = &url;
                scope.spawn(move || {
                    let mut request = reqwest::blocking::Client::new()
                        .post(format!("{url}/hooks/github"))
                        .body(delivery.1.clone());
                    for (k, v) in &delivery.0 {
                        request = request.header(k, v);
                    }
                    let response = request.send().expect("agent answers");
                    (
                        response.status().as_u16(),
                        response.json().unwrap_or(Value::Null),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert!(answers.iter().all(|(s, _)| *s == 202), "{answers:?}");
    assert_eq!(
        answers
            .iter()
            .filter(|(_, a)| a["duplicate"] == false)
            .count(),
        1
    );
    let first = answers[0].1["delivery"].clone();
    assert!(answers.iter().all(|(_, a)| a["delivery"] == first));
    h.agent.wait_builds("octo/hello", 1);

    h.agent.restart();
    let (status, answer) = h.agent.deliver("github", &delivery);
    assert_eq!(status, 202);
    assert_eq!(answer["duplicate"], true);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(h.builds().len(), 1, "{:?}", h.builds());
    let (_, list) = h.agent.api("GET", "/api/v1/deliveries", None);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
}

#[test]
fn forged_and_malformed_requests_change_nothing() {
    let h = hosted();
    let (before, after) = h.push_upstream("one.txt");
    let http = reqwest::blocking::Client::new();
    let (headers, body) = h.push_delivery("d-forged", &before, &after);
    let forged_headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            if k == "x-hub-signature-256" {
                (
                    k.clone(),
                    forge_standin::github_delivery("push", "x", "wrong secret", &json!({})).0[5]
                        .1
                        .clone(),
                )
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    // 10,000 forged deliveries over one keep-alive connection.
    let mut refused = 0;
    for i in 0..10_000 {
        let mut request = http
            .post(format!("{}/hooks/github", h.agent.url))
            .body(body.clone());
        for (k, v) in &forged_headers {
            let v = if k == "x-github-delivery" {
                format!("forged-{i}")
            } else {
                v.clone()
            };
            request = request.header(k, v);
        }
        let response = request.send().expect("agent answers");
        if response.status().as_u16() == 401 {
            refused += 1;
        }
        let _ = response.bytes();
    }
    assert_eq!(refused, 10_000);

    let with = |name: &str, value: Option<&str>| -> (Vec<(String, String)>, Vec<u8>) {
        let mut headers: Vec<(String, String)> =
            headers.iter().filter(|(k, _)| k != name).cloned().collect();
        if let Some(value) = value {
            headers.push((name.to_owned(), value.to_owned()));
        }
        (headers, body.clone())
    };
    let (status, v) = h
        .agent
        .deliver("github", &with("x-hub-signature-256", None));
    assert_eq!(status, 401, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("X-Hub-Signature-256"),
        "{v}"
    );
    let (status, v) = h
        .agent
        .deliver("github", &with("x-hub-signature-256", Some("sha256=zz")));
    assert_eq!(status, 401, "{v}");
    let (status, v) = h.agent.deliver(
        "github",
        &with("content-type", Some("application/x-www-form-urlencoded")),
    );
    assert_eq!(status, 415, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("application/json"),
        "{v}"
    );
    let (status, v) = h.agent.deliver("github", &with("x-github-delivery", None));
    assert_eq!(status, 400, "{v}");
    let (status, _) = h
        .agent
        .deliver("bitbucket", &(headers.clone(), body.clone()));
    assert_eq!(status, 404);
    // Signed but not JSON: 400 with the reason.
    let bad = b"{not json".to_vec();
    let mut signed = headers.clone();
    signed[5].1 = hangar_core::webhook::github_signature(SECRET.as_bytes(), &bad);
    let (status, v) = h.agent.deliver("github", &(signed, bad));
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("JSON"),
        "{v}"
    );
    // Over 25 MB: refused from the Content-Length, before the body is read.
    let addr = h.agent.url.trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
    write!(
        stream,
        "POST /hooks/github HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        25 * 1024 * 1024 + 1
    )
    .expect("write");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    std::thread::sleep(Duration::from_secs(1));
    let (_, list) = h.agent.api("GET", "/api/v1/deliveries", None);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{list}");
    assert!(h.builds().is_empty());
    assert!(h.agent.log().contains("refused webhook deliveries"));
}

#[test]
fn an_acknowledged_delivery_is_processed_after_a_crash() {
    let mut h = hosted();
    let (before, after) = h.push_upstream("one.txt");
    // The worker's fetch waits on the upstream, so the agent dies mid-way.
    h.upstream.hang();
    let (status, _) = h
        .agent
        .deliver("github", &h.push_delivery("d-crash", &before, &after));
    assert_eq!(status, 202);
    std::thread::sleep(Duration::from_millis(300));
    h.agent.kill();
    h.upstream.unhang();
    h.agent.restart();
    let builds = h.agent.wait_builds("octo/hello", 1);
    assert_eq!(builds[0]["sha"], after.as_str());
}

#[test]
fn statuses_wait_for_a_forge_that_is_down() {
    let h = hosted();
    h.standin.set_down(true);
    let (before, after) = h.push_upstream("one.txt");
    let (status, _) = h
        .agent
        .deliver("github", &h.push_delivery("d-down", &before, &after));
    assert_eq!(status, 202);
    let builds = h.agent.wait_builds("octo/hello", 1);
    assert_eq!(builds[0]["status"], "success");
    assert!(h.standin.statuses().is_empty());
    h.standin.set_down(false);
    h.wait_statuses(&after, &["pending", "success"]);
}

#[test]
fn gitlab_push_builds_and_reports_to_gitlab() {
    let upstream = Upstream::http(None);
    let work = work_repo(&[(".github/workflows/ci.yml", CI.as_bytes())]);
    upstream.bare("group/app", Some(work.path()));
    let standin = ForgeStandin::start(TOKEN);
    standin.add_repo("group/app", &upstream.url("group/app"));
    let agent = Agent::start_with_env(&[("HANGAR_ALLOW_LOCAL_MIRRORS", "true")]);
    let (status, forge) = agent.api(
        "POST",
        "/api/v1/forges",
        Some(json!({ "provider": "gitlab", "url": standin.gitlab_url(), "token": TOKEN, "allow_http": true })),
    );
    assert_eq!(status, 201, "{forge}");
    let secret = forge["webhook_secret"]
        .as_str()
        .expect("generated secret")
        .to_owned();
    let (status, v) = agent.api(
        "POST",
        "/api/v1/hosted-repos",
        Some(json!({ "repo": "gitlab:group/app" })),
    );
    assert_eq!(status, 201, "{v}");
    wait_until(&agent, "the first fetch", || {
        let (_, m) = agent.api("GET", "/api/v1/mirrors/group/app", None);
        m["state"] == "ok"
    });
    let before = git(work.path(), &["rev-parse", "HEAD"]).trim().to_owned();
    commit_file(work.path(), "two.txt", b"2\n");
    let after = git(work.path(), &["rev-parse", "HEAD"]).trim().to_owned();
    git(
        work.path(),
        &[
            "push",
            "-q",
            upstream.path("group/app").to_str().expect("utf-8"),
            "main",
        ],
    );
    let body = json!({ "object_kind": "push", "ref": "refs/heads/main", "before": before, "after": after,
                       "project": { "path_with_namespace": "group/app" } });
    let (status, v) = agent.deliver(
        "gitlab",
        &gitlab_delivery("Push Hook", "uuid-1", "wrong", &body),
    );
    assert_eq!(status, 401, "{v}");
    let (status, v) = agent.deliver(
        "gitlab",
        &gitlab_delivery("Push Hook", "uuid-1", &secret, &body),
    );
    assert_eq!(status, 202, "{v}");
    let builds = agent.wait_builds("group/app", 1);
    assert_eq!(builds[0]["sha"], after.as_str());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let states: Vec<String> = standin
            .statuses()
            .iter()
            .filter(|s| s.path == format!("/gitlab/api/v4/projects/group%2Fapp/statuses/{after}"))
            .map(|s| s.body["state"].as_str().unwrap_or("").to_owned())
            .collect();
        if states.len() >= 2 {
            assert_eq!(states, ["pending", "success"]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "statuses: {states:?}\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn webhooks_are_registered_at_the_public_url_and_follow_it() {
    let mut h = hosted_with_env(&[("HANGAR_PUBLIC_URL", "https://hangar.example")]);
    let hooks = h.standin.hooks();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(
        hooks[0]["config"]["url"],
        "https://hangar.example/hooks/github"
    );
    assert_eq!(hooks[0]["config"]["secret"], SECRET);
    assert_eq!(hooks[0]["events"], json!(["push", "pull_request"]));

    // A new public URL: the same hook is updated at the next start.
    h.agent.set_env("HANGAR_PUBLIC_URL", "https://new.example");
    h.agent.restart();
    wait_until(&h.agent, "the hook to move", || {
        h.standin
            .hooks()
            .first()
            .is_some_and(|hook| hook["config"]["url"] == "https://new.example/hooks/github")
    });
    assert_eq!(h.standin.hooks().len(), 1);
    // The agent records the hook after the forge answered the update.
    wait_until(&h.agent, "the hosted repo to record the new hook", || {
        let (_, repos) = h.agent.api("GET", "/api/v1/hosted-repos", None);
        repos["items"][0]["hook_url"] == "https://new.example/hooks/github"
    });
}

#[test]
fn deliveries_arrive_through_a_relay_channel_unchanged() {
    let relay = forge_standin::RelayStandin::start();
    let h = hosted_with_env(&[("HANGAR_RELAY_URL", &relay.url())]);
    // Without a public URL, the webhook points at the relay channel.
    assert_eq!(h.standin.hooks()[0]["config"]["url"], relay.url().as_str());
    wait_until(&h.agent, "the relay subscription", || {
        relay.subscribers() > 0
    });
    let (before, after) = h.push_upstream("one.txt");
    // A pretty-printed body: its line breaks must survive the relay, or the
    // signature would not verify.
    let body = serde_json::to_string_pretty(&github_push(
        "octo/hello",
        "refs/heads/main",
        &before,
        &after,
    ))
    .expect("json");
    let headers = github_delivery("push", "relay-1", SECRET, &json!({})).0;
    let mut headers: Vec<(String, String)> = headers
        .into_iter()
        .filter(|(k, _)| k != "x-hub-signature-256")
        .collect();
    headers.push((
        "x-hub-signature-256".to_owned(),
        hangar_core::webhook::github_signature(SECRET.as_bytes(), body.as_bytes()),
    ));
    relay.send(&(headers, body.into_bytes()));
    let builds = h.agent.wait_builds("octo/hello", 1);
    assert_eq!(builds[0]["sha"], after.as_str());

    let out = h.agent.cli(&["tunnel", "status", "--json"]);
    assert!(out.status.success());
    let status: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(status["kind"], "relay");
    assert_eq!(status["connected"], true);
    assert_eq!(status["deliveries"], 1);
}
