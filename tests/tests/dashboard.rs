//! What the dashboard relies on, through the real agent: the event stream,
//! host figures, cookie sign-in with its CSRF guard, and serving the UI
//! without shadowing the API or git URLs. (The UI itself is tested in
//! headless Chromium by `ui/e2e`, run from scripts/test.)

use std::io::{BufRead as _, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hangar_tests::{Agent, git, work_repo};
use serde_json::Value;

const WORKFLOW: &[u8] = b"name: hello
on: push
jobs:
  say:
    runs-on: self-hosted
    steps:
      - run: echo hello
";

/// Opens `/api/v1/events` and hands each `(event, data)` to the channel.
fn listen(agent: &Agent) -> mpsc::Receiver<(String, Value)> {
    let response = reqwest::blocking::Client::builder()
        .timeout(None)
        .build()
        .expect("client")
        .get(format!("{}/api/v1/events", agent.url))
        .bearer_auth(&agent.token)
        .send()
        .expect("events stream");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().expect("type"),
        "text/event-stream"
    );
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut event = String::new();
        for line in BufReader::new(response).lines() {
            let Ok(line) = line else { return };
            if let Some(name) = line.strip_prefix("event: ") {
                event = name.to_owned();
            } else if let Some(data) = line.strip_prefix("data: ") {
                let data = serde_json::from_str(data).unwrap_or(Value::Null);
                if tx.send((event.clone(), data)).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// Waits for an event matching `want`, returning it.
fn expect_event(
    rx: &mpsc::Receiver<(String, Value)>,
    agent: &Agent,
    what: &str,
    want: impl Fn(&str, &Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok((event, data)) if want(&event, &data) => return data,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("no {what} event; log:\n{}", agent.log());
}

#[test]
fn the_event_stream_tells_about_pushes_jobs_and_builds() {
    let agent = Agent::start();
    let (status, _) = agent.api_as(None, "GET", "/api/v1/events", None);
    assert_eq!(status, 401, "anonymous callers get no events");
    let rx = listen(&agent);
    expect_event(&rx, &agent, "hello", |e, _| e == "hello");

    agent.create_repo("team/app", false);
    let work = work_repo(&[(".github/workflows/hello.yml", WORKFLOW)]);
    git(
        work.path(),
        &["push", "-q", &agent.git_url("team/app"), "main"],
    );

    let push = expect_event(&rx, &agent, "push", |e, _| e == "push");
    assert_eq!(push["repo"], "team/app");
    assert_eq!(push["kind"], "push");
    let queued = expect_event(&rx, &agent, "queued build", |e, d| {
        e == "build" && d["status"] == "queued"
    });
    let id = queued["id"].as_str().expect("build id").to_owned();
    expect_event(&rx, &agent, "running job", |e, d| {
        e == "job" && d["build"] == id.as_str() && d["status"] == "running"
    });
    expect_event(&rx, &agent, "finished step", |e, d| {
        e == "step" && d["build"] == id.as_str() && d["status"] == "success"
    });
    expect_event(&rx, &agent, "successful build", |e, d| {
        e == "build" && d["id"] == id.as_str() && d["status"] == "success"
    });

    // The list filters by status.
    let (_, done) = agent.api("GET", "/api/v1/builds?status=success", None);
    assert_eq!(done["items"][0]["id"], id.as_str());
    let (_, queued) = agent.api("GET", "/api/v1/builds?status=queued", None);
    assert_eq!(queued["items"], serde_json::json!([]));
    let (status, body) = agent.api("GET", "/api/v1/builds?status=green", None);
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("unknown status")
    );

    // The repo page's workflow list.
    let (_, workflows) = agent.api("GET", "/api/v1/repos/team/app/workflows", None);
    assert_eq!(workflows["items"][0]["file"], ".github/workflows/hello.yml");
    assert_eq!(
        workflows["items"][0]["triggers"],
        serde_json::json!(["push"])
    );
    assert_eq!(workflows["items"][0]["jobs"], serde_json::json!(["say"]));

    // Pausing and resuming the queue are events too (the tray follows them).
    for (action, paused) in [("pause", true), ("resume", false)] {
        let (status, _) = agent.api("POST", &format!("/api/v1/queue/{action}"), None);
        assert_eq!(status, 200, "{action}");
        expect_event(&rx, &agent, action, |e, d| {
            e == "queue" && d["paused"] == paused
        });
    }
}

#[test]
fn an_open_event_stream_does_not_hold_up_shutdown() {
    let mut agent = Agent::start();
    let _rx = listen(&agent);
    let started = Instant::now();
    let status = agent.stop();
    assert!(status.success(), "{status:?}\n{}", agent.log());
    // Well inside the graceful-shutdown grace period the stream would otherwise use up.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "stopping took {:?}",
        started.elapsed()
    );
}

#[test]
fn host_reports_the_machine_and_the_slots() {
    let agent = Agent::start();
    let (status, _) = agent.api_as(None, "GET", "/api/v1/host", None);
    assert_eq!(status, 401);
    let (status, host) = agent.api("GET", "/api/v1/host", None);
    assert_eq!(status, 200, "{host}");
    let machine = &host["machine"];
    assert!(machine["cpus"].as_u64().expect("cpus") >= 1, "{host}");
    assert!(machine["memory_total"].as_u64().expect("memory") > 0);
    assert!(
        machine["disk"]["total"].as_u64().expect("disk") > 0,
        "{host}"
    );
    assert_eq!(machine["load"].as_array().expect("load").len(), 3);
    assert_eq!(host["queued_jobs"], 0);
    assert_eq!(host["executors"][0]["name"], "host");
    assert_eq!(host["executors"][0]["slots"], 1);
}

#[test]
fn a_session_cookie_signs_in_but_changes_nothing_without_the_ui_header() {
    let agent = Agent::start();
    let http = reqwest::blocking::Client::new();
    let session = format!("{}/api/v1/session", agent.url);

    let bad = http
        .post(&session)
        .json(&serde_json::json!({ "token": "hgr_0000" }))
        .send()
        .expect("sign in");
    assert_eq!(bad.status(), 401);
    assert!(bad.headers().get("set-cookie").is_none());
    let odd = http
        .post(&session)
        .json(&serde_json::json!({ "token": "x; Path=/evil" }))
        .send()
        .expect("sign in");
    assert_eq!(odd.status(), 400);

    let good = http
        .post(&session)
        .json(&serde_json::json!({ "token": agent.token }))
        .send()
        .expect("sign in");
    assert_eq!(good.status(), 200);
    let set = good.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_owned();
    assert!(set.starts_with("hangar_session=hgr_"), "{set}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{set} lacks {attribute}");
    }
    let cookie = set.split(';').next().expect("pair").to_owned();

    let status = http
        .get(format!("{}/api/v1/status", agent.url))
        .header("cookie", &cookie)
        .send()
        .expect("status");
    assert_eq!(status.status(), 200);

    let repo = serde_json::json!({ "name": "team/forged" });
    let forged = http
        .post(format!("{}/api/v1/repos", agent.url))
        .header("cookie", &cookie)
        .json(&repo)
        .send()
        .expect("create");
    assert_eq!(forged.status(), 403);
    let (_, repos) = agent.api("GET", "/api/v1/repos", None);
    assert_eq!(repos["items"], serde_json::json!([]), "nothing was created");

    let from_ui = http
        .post(format!("{}/api/v1/repos", agent.url))
        .header("cookie", &cookie)
        .header("x-hangar-ui", "1")
        .json(&repo)
        .send()
        .expect("create");
    assert_eq!(from_ui.status(), 201);

    // The dashboard gets no Basic challenge (no browser password dialog);
    // other API clients still do.
    let ui_401 = http
        .get(format!("{}/api/v1/status", agent.url))
        .header("x-hangar-ui", "1")
        .send()
        .expect("status");
    assert_eq!(ui_401.status(), 401);
    assert!(ui_401.headers().get("www-authenticate").is_none());
    let plain_401 = http
        .get(format!("{}/api/v1/status", agent.url))
        .send()
        .expect("status");
    assert!(plain_401.headers().get("www-authenticate").is_some());

    let out = http.delete(&session).send().expect("sign out");
    assert_eq!(out.status(), 204);
    let cleared = out.headers()["set-cookie"].to_str().expect("cookie");
    assert!(cleared.starts_with("hangar_session=;") && cleared.contains("Max-Age=0"));
}

#[test]
fn the_dashboard_never_shadows_the_api_or_git() {
    let agent = Agent::start();
    agent.create_repo("alice/app", true);
    let http = reqwest::blocking::Client::new();
    let get = |path: &str| {
        let r = http
            .get(format!("{}{path}", agent.url))
            .send()
            .expect("answer");
        let status = r.status().as_u16();
        let kind = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or_default().to_owned())
            .unwrap_or_default();
        (status, kind, r.text().expect("body"))
    };

    // The page (or, in a build without ui/dist, the page saying how to build it).
    for path in [
        "/",
        "/builds",
        "/builds/01J00000000000000000000000",
        "/repos/alice/app",
    ] {
        let (status, kind, body) = get(path);
        assert!(status == 200 || status == 503, "{path}: {status}");
        assert!(kind.starts_with("text/html"), "{path}: {kind}");
        assert!(body.contains("Hangar"), "{path}");
    }
    let (status, kind, _) = get("/api/v1/nothing");
    assert_eq!((status, kind.as_str()), (404, "application/json"));
    let (status, _, body) = get("/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, kind, _) = get("/alice/app.git/info/refs?service=git-upload-pack");
    assert_eq!(status, 200);
    assert_eq!(kind, "application/x-git-upload-pack-advertisement");
    for path in [
        "/nobody/none.git/info/refs?service=git-upload-pack",
        "/repos/nobody/none/info/refs?service=git-upload-pack",
        "/assets/missing.js",
        "/alice/app",
    ] {
        // Git answers 401 for a repository it will not reveal, others 404.
        let (status, kind, _) = get(path);
        assert!(status == 404 || status == 401, "{path}: {status}");
        assert!(!kind.starts_with("text/html"), "{path}: {kind}");
    }
}
