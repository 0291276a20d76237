//! Workflow secrets end to end: set with the CLI, used by a real step, and
//! masked everywhere they could show: the stored log, the API, the live SSE
//! stream (and its resumption), the SQLite file and the agent's own log.

use std::time::{Duration, Instant};

use base64::Engine as _;
use hangar_tests::{Agent, git, job_named, work_repo};

const TOKEN: &str = "hx9-Kq2vLmT7pW";
const GLOBAL_TOKEN: &str = "global-value-xyz-12345";
const MULTI: &str = "first-line-Aq7\nsecond-line-Zr4";
const QUOTED: &str = "say \"hi\" \\ now\nnext-line-Bw8";
const RUNTIME: &str = "runtime-value-Uy61";

const WORKFLOW: &str = r#"
on: push
jobs:
  leak:
    runs-on: self-hosted
    env:
      FROM_ENV: ${{ secrets.API_TOKEN }}
    outputs:
      token: ${{ steps.out.outputs.token }}
    steps:
      # Time for the test to start following the live log.
      - run: sleep 2
      - name: plain ${{ secrets.API_TOKEN }}
        run: |
          echo "plain: ${{ secrets.api_token }}"
          echo "env: $FROM_ENV"
          echo "token length ${#FROM_ENV}"
          echo "missing: [${{ secrets.NOT_SET }}]"
      - name: multi-line
        env:
          MULTI: ${{ secrets.MULTI_LINE }}
        run: echo "$MULTI"
      - name: base64
        run: |
          printf '%s' "$FROM_ENV" | base64
          echo "$FROM_ENV" | base64
      - name: json
        env:
          QUOTED: ${{ secrets.QUOTED }}
        run: |
          escaped=$(printf '%s' "$QUOTED" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | awk '{ printf "%s%s", (NR > 1 ? "\\n" : ""), $0 }')
          printf '{"v":"%s"}\n' "$escaped"
      - name: split across writes
        run: |
          printf 'split: %s' "${FROM_ENV:0:6}"; sleep 0.2; printf '%s\n' "${FROM_ENV:6}"
          printf '%s' "${FROM_ENV:0:3}" >&2; sleep 0.2; printf '%s' "${FROM_ENV:3}" >&2
      - name: add-mask
        run: |
          echo "::add-mask::runtime-value-Uy61"
          echo "runtime: runtime-value-Uy61"
      - id: out
        run: |
          echo "token=$FROM_ENV" >> "$GITHUB_OUTPUT"
          echo "::warning::annotated $FROM_ENV"
      - run: echo done-marker
"#;

/// Every form the values take that must never be shown.
fn forms(values: &[&str]) -> Vec<String> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut out = Vec::new();
    for &value in values {
        out.push(value.to_owned());
        out.extend(value.lines().map(str::to_owned));
        out.push(b64(value));
        out.push(b64(&format!("{value}\n")));
        let json = serde_json::to_string(value).expect("json");
        out.push(json.trim_matches('"').to_owned());
    }
    out
}

/// No secret, nor the `::add-mask::` value, shows in `text`.
fn assert_clean(what: &str, text: &str) {
    assert_none_of(&[TOKEN, MULTI, QUOTED, RUNTIME], what, text);
}

fn assert_none_of(values: &[&str], what: &str, text: &str) {
    for form in forms(values) {
        if let Some(at) = text.find(&form) {
            let around: String = text[at.saturating_sub(200)..].chars().take(400).collect();
            panic!("{form:?} leaked in {what}, at: {around:?}");
        }
    }
}

fn set_secret(agent: &Agent, args: &[&str], value: &str) {
    let mut full = vec!["secret", "set"];
    full.extend_from_slice(args);
    let out = agent.cli_with_input(&full, value.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_clean("the CLI's output", &String::from_utf8_lossy(&out.stdout));
}

#[test]
fn secrets_reach_steps_and_are_masked_everywhere() {
    let agent = Agent::start();
    agent.create_repo("acme/app", false);
    // The trailing newline `echo` adds is dropped; the repo's value wins.
    set_secret(
        &agent,
        &["api_token", "--repo", "acme/app"],
        &format!("{TOKEN}\n"),
    );
    set_secret(&agent, &["API_TOKEN"], GLOBAL_TOKEN);
    set_secret(&agent, &["MULTI_LINE"], &format!("{MULTI}\n"));
    set_secret(&agent, &["QUOTED", "--repo", "acme/app"], QUOTED);

    let out = agent.cli(&["secret", "list", "--repo", "acme/app", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let names: Vec<(String, String)> = listed
        .as_array()
        .expect("items")
        .iter()
        .map(|i| (i["name"].to_string(), i["scope"].to_string()))
        .collect();
    assert_eq!(names.len(), 4, "{listed}");
    assert!(names.contains(&("\"API_TOKEN\"".into(), "\"repo\"".into())));
    assert!(names.contains(&("\"MULTI_LINE\"".into(), "\"global\"".into())));
    let out = agent.cli(&["secret", "list"]);
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(
        human.contains("MULTI_LINE") && human.contains("global"),
        "{human}"
    );
    assert_clean("secret list", &human);

    let work = work_repo(&[(".github/workflows/leak.yml", WORKFLOW.as_bytes())]);
    git(
        work.path(),
        &["push", "-q", &agent.git_url("acme/app"), "main"],
    );

    // Follow the job live while it runs.
    let (build_id, job_id) = running_job(&agent);
    let live = agent.follow_log(&build_id, &job_id, None);
    assert!(live.contains("done-marker"), "{live}");

    let builds = agent.wait_builds("acme/app", 1);
    let build = agent.build(builds[0]["id"].as_str().expect("id"));
    let job = job_named(&build, "leak");
    assert_eq!(job["status"], "success", "{build:#}");

    let out = agent.cli(&["build", "logs", &build_id, "--job", "leak"]);
    let stored = String::from_utf8_lossy(&out.stdout).into_owned();
    for expected in [
        "plain: ***",
        "env: ***",
        "token length 14",
        "missing: []",
        "split: ***",
        "runtime: ***",
        "{\"v\":\"***\"}",
        "done-marker",
    ] {
        assert!(stored.contains(expected), "{expected:?} not in:\n{stored}");
    }
    for (what, text) in [("the stored log", &stored), ("the SSE stream", &live)] {
        assert_clean(what, text);
        assert!(text.matches("***").count() >= 10, "{what}:\n{text}");
    }

    // Resuming the stream after line 3 sends only later lines, still masked.
    let resumed = agent.follow_log(&build_id, &job_id, Some(3));
    assert!(
        !resumed.contains("id: 3\n") && resumed.contains("id: 4\n"),
        "{resumed}"
    );
    assert_clean("the resumed SSE stream", &resumed);

    // The API: step names, outputs and annotations.
    let shown = build.to_string();
    assert_clean("the build's JSON", &shown);
    assert_eq!(job["outputs"]["token"], "***");
    assert_eq!(job["steps"][1]["name"], "plain ***");
    assert_eq!(job["annotations"][0]["message"], "annotated ***");
    let (_, list) = agent.api("GET", "/api/v1/repos/acme/app/secrets", None);
    assert_clean("the secrets API", &list.to_string());

    // The database file (and its write-ahead log) and the agent's log.
    for entry in std::fs::read_dir(agent.data_dir())
        .expect("data dir")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("hangar.db") {
            let bytes = std::fs::read(entry.path()).expect("db");
            // (The `::add-mask::` value is in the workflow file, so in the
            // job's spec: only stored secrets count here.)
            let text = String::from_utf8_lossy(&bytes);
            assert_none_of(&[TOKEN, MULTI, QUOTED, GLOBAL_TOKEN], &name, &text);
        }
    }
    assert_clean("the agent's log", &agent.log());
}

/// The newest build's first job, once it runs.
fn running_job(agent: &Agent) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, list) = agent.api("GET", "/api/v1/builds", None);
        if let Some(id) = list["items"][0]["id"].as_str() {
            let build = agent.build(id);
            let job = &build["jobs"][0];
            if job["status"] == "running" {
                return (
                    id.to_owned(),
                    job["id"].as_str().expect("job id").to_owned(),
                );
            }
        }
        assert!(Instant::now() < deadline, "no job started: {}", agent.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn who_may_set_secrets() {
    let agent = Agent::start();
    agent.create_repo("acme/app", false);
    let member = agent.create_user("mia", "member");
    let reader = agent.create_user("rob", "reader");
    let body = Some(serde_json::json!({ "value": "v4lue-xyz" }));
    let repo_path = "/api/v1/repos/acme/app/secrets/DEPLOY_KEY";
    let (status, _) = agent.api_as(Some(&reader), "PUT", repo_path, body.clone());
    assert_eq!(status, 403);
    let (status, _) = agent.api_as(Some(&member), "PUT", "/api/v1/secrets/X", body.clone());
    assert_eq!(status, 403);
    let (status, created) = agent.api_as(Some(&member), "PUT", repo_path, body.clone());
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["name"], "DEPLOY_KEY");
    assert!(!created.to_string().contains("v4lue-xyz"));
    let (status, _) = agent.api_as(Some(&member), "PUT", repo_path, body.clone());
    assert_eq!(status, 200);
    let (status, error) = agent.api("PUT", "/api/v1/secrets/GITHUB_TOKEN", body);
    assert_eq!(status, 400);
    assert!(
        error["error"]["message"]
            .as_str()
            .expect("message")
            .contains("reserved")
    );
    let (status, error) = agent.api(
        "PUT",
        "/api/v1/secrets/EMPTY",
        Some(serde_json::json!({ "value": "" })),
    );
    assert_eq!(status, 400, "{error}");
    let out = agent.cli_with_input(&["secret", "set", "NOPE"], b"");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));
    let out = agent.cli(&["secret", "rm", "deploy_key", "--repo", "acme/app"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, _) = agent.api("DELETE", repo_path, None);
    assert_eq!(status, 404);

    let (_, doc) = agent.api_as(None, "GET", "/api/v1/openapi.json", None);
    for path in [
        "/api/v1/secrets",
        "/api/v1/secrets/{secret}",
        "/api/v1/repos/{owner}/{name}/secrets",
        "/api/v1/repos/{owner}/{name}/secrets/{secret}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
}
