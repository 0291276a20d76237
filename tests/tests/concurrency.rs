//! Concurrency groups and matrix strategy end to end: real pushes, real
//! step processes, GitHub's rules for `concurrency`, `fail-fast` and
//! `max-parallel`.

use std::time::{Duration, Instant};

use hangar_tests::{Agent, commit_file, git, job_named, work_repo};

/// Waits until `repo` has `count` builds and the newest one's first job runs.
fn wait_running(agent: &Agent, repo: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, list) = agent.api("GET", &format!("/api/v1/builds?repo={repo}"), None);
        let items = list["items"].as_array().cloned().unwrap_or_default();
        if items.len() >= count
            && let Some(id) = items[0]["id"].as_str()
            && agent.build(id)["jobs"][0]["status"] == "running"
        {
            return;
        }
        assert!(Instant::now() < deadline, "no build ran: {list}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn push(agent: &Agent, work: &std::path::Path, repo: &str) {
    git(work, &["push", "-q", &agent.git_url(repo), "main"]);
}

/// Pushes `workflow` to a fresh repository on an agent with three host slots
/// (so only concurrency groups hold builds back), waits until its build runs,
/// then pushes one commit adding each of `files`; calls `meanwhile` and
/// returns the agent and the finished builds, oldest first.
fn pushes_while_running(
    workflow: &str,
    files: &[&str],
    meanwhile: impl Fn(&Agent),
) -> (Agent, Vec<serde_json::Value>) {
    let agent = Agent::start_with_env(&[("HANGAR_HOST_SLOTS", "3")]);
    agent.create_repo("acme/app", false);
    let work = work_repo(&[(".github/workflows/ci.yml", workflow.as_bytes())]);
    push(&agent, work.path(), "acme/app");
    wait_running(&agent, "acme/app", 1);
    for file in files {
        commit_file(work.path(), file, b"x\n");
        push(&agent, work.path(), "acme/app");
    }
    meanwhile(&agent);
    let all = builds(&agent, "acme/app", files.len() + 1);
    (agent, all)
}

/// Builds of `repo`, oldest first, with their jobs.
fn builds(agent: &Agent, repo: &str, count: usize) -> Vec<serde_json::Value> {
    let mut list = agent.wait_builds(repo, count);
    list.reverse();
    list.iter()
        .map(|b| agent.build(b["id"].as_str().expect("id")))
        .collect()
}

fn text<'a>(value: &'a serde_json::Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or_default()
}

/// A time field (`started_at`, `finished_at`) in milliseconds: the API's
/// RFC 3339 text drops trailing zeros, so it does not compare as text.
fn ms(value: &serde_json::Value, field: &str) -> i64 {
    text(value, field)
        .parse::<jiff::Timestamp>()
        .unwrap_or_else(|e| panic!("{field} of {value:#}: {e}"))
        .as_millisecond()
}

#[test]
fn a_newer_push_cancels_the_build_in_progress() {
    let workflow = r#"
on: push
concurrency:
  group: ci-${{ github.ref }}
  cancel-in-progress: true
jobs:
  slow:
    runs-on: self-hosted
    steps:
      - uses: actions/checkout@v4
      - run: if [ -f second ]; then echo fast; else sleep 60; fi
"#;
    let started = Instant::now();
    let (_agent, all) = pushes_while_running(workflow, &["second"], |_| {});
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "the first build was not stopped"
    );
    assert_eq!(all[0]["status"], "cancelled", "{:#}", all[0]);
    assert_eq!(all[0]["concurrency"], "ci-refs/heads/main");
    let reason = text(&all[0]["jobs"][0], "reason");
    assert!(reason.contains("cancel-in-progress"), "{reason}");
    assert_eq!(all[1]["status"], "success", "{:#}", all[1]);
    // The second started only once the first had ended.
    let (first, second) = (&all[0]["jobs"][0], &all[1]["jobs"][0]);
    assert!(
        ms(second, "started_at") >= ms(first, "finished_at"),
        "{first:#} {second:#}"
    );
}

#[test]
fn a_group_keeps_one_pending_build_and_replaces_it() {
    let workflow = r#"
on: push
concurrency: deploy
jobs:
  deploy:
    runs-on: self-hosted
    steps:
      - uses: actions/checkout@v4
      - run: if [ -f third ]; then echo quick; else sleep 3; fi
"#;
    // The pending build says what it waits for.
    let shows_wait = |agent: &Agent| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, list) = agent.api("GET", "/api/v1/builds?repo=acme/app", None);
            let newest = agent.build(list["items"][0]["id"].as_str().unwrap_or_default());
            let reason = text(&newest["jobs"][0], "reason");
            if reason == "waiting for build #1 of concurrency group \"deploy\"" {
                return;
            }
            assert!(Instant::now() < deadline, "no waiting reason: {newest:#}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let (_agent, all) = pushes_while_running(workflow, &["second", "third"], shows_wait);
    let statuses: Vec<&str> = all.iter().map(|b| text(b, "status")).collect();
    assert_eq!(statuses, ["success", "cancelled", "success"], "{all:#?}");
    let reason = text(&all[1]["jobs"][0], "reason");
    assert!(reason.contains("replaced by build #3"), "{reason}");
    let (first, third) = (&all[0]["jobs"][0], &all[2]["jobs"][0]);
    assert!(
        ms(third, "started_at") >= ms(first, "finished_at"),
        "{first:#} {third:#}"
    );
}

#[test]
fn job_level_groups_hold_jobs_of_different_builds_apart() {
    let workflow = r#"
on: push
jobs:
  deploy:
    runs-on: self-hosted
    concurrency:
      group: production
      cancel-in-progress: true
    steps:
      - uses: actions/checkout@v4
      - run: if [ -f second ]; then echo deployed; else sleep 60; fi
"#;
    let (_agent, all) = pushes_while_running(workflow, &["second"], |_| {});
    assert_eq!(all[0]["status"], "cancelled", "{:#}", all[0]);
    assert_eq!(all[1]["status"], "success", "{:#}", all[1]);
    let reason = text(&all[0]["jobs"][0], "reason");
    assert!(
        reason.contains("concurrency group \"production\""),
        "{reason}"
    );
}

const MATRIX: &str = r#"
on: push
jobs:
  serial:
    runs-on: self-hosted
    strategy:
      max-parallel: 1
      matrix:
        n: [1, 2, 3]
    steps:
      - run: if [ ${{ matrix.n }} = 2 ]; then exit 1; fi; sleep 0.3
  tolerant:
    runs-on: self-hosted
    strategy:
      fail-fast: false
      max-parallel: 2
      matrix:
        n: [1, 2, 3]
    steps:
      - run: if [ ${{ matrix.n }} = 1 ]; then exit 1; fi; sleep 1
  stopped:
    runs-on: self-hosted
    strategy:
      matrix:
        n: [1, 2]
    steps:
      - run: if [ ${{ matrix.n }} = 1 ]; then sleep 0.5; exit 1; fi; sleep 60
  grouped:
    runs-on: self-hosted
    concurrency: one-at-a-time
    strategy:
      matrix:
        n: [1, 2, 3]
    steps:
      - run: sleep 0.5
"#;

#[test]
fn matrix_fail_fast_and_max_parallel() {
    let agent = Agent::start_with_env(&[("HANGAR_HOST_SLOTS", "8")]);
    agent.create_repo("acme/app", false);
    let work = work_repo(&[(".github/workflows/matrix.yml", MATRIX.as_bytes())]);
    push(&agent, work.path(), "acme/app");
    let started = Instant::now();
    let build = builds(&agent, "acme/app", 1).remove(0);
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "fail-fast did not stop `stopped (2)`"
    );
    let job = |name: &str| job_named(&build, name).clone();
    let status = |name: &str| format!("{name}: {}", text(&job(name), "status"));

    // max-parallel 1: one after the other; the failure cancels the rest.
    assert_eq!(status("serial (1)"), "serial (1): success", "{build:#}");
    assert_eq!(status("serial (2)"), "serial (2): failure", "{build:#}");
    assert_eq!(status("serial (3)"), "serial (3): cancelled", "{build:#}");
    assert!(text(&job("serial (3)"), "reason").contains("fail-fast"));
    assert!(ms(&job("serial (2)"), "started_at") >= ms(&job("serial (1)"), "finished_at"));

    // fail-fast off: the others run on; max-parallel 2 holds the third back.
    assert_eq!(status("tolerant (1)"), "tolerant (1): failure", "{build:#}");
    assert_eq!(status("tolerant (2)"), "tolerant (2): success", "{build:#}");
    assert_eq!(status("tolerant (3)"), "tolerant (3): success", "{build:#}");
    let third = job("tolerant (3)");
    let earliest_end = ["tolerant (1)", "tolerant (2)"]
        .iter()
        .map(|n| ms(&job(n), "finished_at"))
        .min()
        .unwrap_or_default();
    assert!(ms(&third, "started_at") >= earliest_end, "{build:#}");

    // A running sibling is stopped.
    assert_eq!(status("stopped (1)"), "stopped (1): failure", "{build:#}");
    assert_eq!(status("stopped (2)"), "stopped (2): cancelled", "{build:#}");
    let reason = text(&job("stopped (2)"), "reason").to_owned();
    assert!(reason.contains("stopped (1) failed"), "{reason}");
    // A job-level group shared by a matrix: one runs, the newest waits, the
    // one in between is replaced (as on GitHub).
    assert_eq!(status("grouped (1)"), "grouped (1): success", "{build:#}");
    assert_eq!(status("grouped (2)"), "grouped (2): cancelled", "{build:#}");
    assert_eq!(status("grouped (3)"), "grouped (3): success", "{build:#}");
    assert!(text(&job("grouped (2)"), "reason").contains("replaced by a newer job"));
    assert!(ms(&job("grouped (3)"), "started_at") >= ms(&job("grouped (1)"), "finished_at"));
    assert_eq!(build["status"], "failure");
}
