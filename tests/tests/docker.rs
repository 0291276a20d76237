//! The Docker executor end to end, against podman's Docker Engine API (which
//! `scripts/test` starts) and the locally imported `localhost/busybox:latest`
//! image: no registry is reachable here.

use hangar_tests::{
    Agent, commit_file, containers_labelled, docker_host, git, job_named, work_repo,
};

const IMAGE: &str = "localhost/busybox:latest";

const CI: &str = r#"
on: push
jobs:
  box:
    runs-on: ubuntu-latest
    container:
      image: localhost/busybox:latest
      env:
        FROM_CONTAINER: declared
    outputs:
      word: ${{ steps.one.outputs.word }}
    steps:
      - uses: actions/checkout@v4
      - id: one
        run: |
          cat README.md
          echo "pid 1 is $(tr '\0' ' ' < /proc/1/cmdline)"
          echo "workspace is $GITHUB_WORKSPACE, in $(pwd)"
          echo "container env is $FROM_CONTAINER, host env is ${E2E_HOST_ONLY:-absent}"
          echo "word=hello" >> "$GITHUB_OUTPUT"
          echo "CARRIED=carried-value" >> "$GITHUB_ENV"
          echo /opt/tools >> "$GITHUB_PATH"
          echo "::add-mask::hush-hush"
          echo "the secret is hush-hush"
      - run: echo "got ${{ steps.one.outputs.word }} and $CARRIED, PATH=$PATH"
  mapped:
    runs-on: linux
    steps:
      - run: echo "mapped label runs in $(tr '\0' ' ' < /proc/1/cmdline)"
  after:
    needs: box
    runs-on: self-hosted
    steps:
      - run: echo "needs gave ${{ needs.box.outputs.word }}"
  fails:
    runs-on: ubuntu-latest
    container: localhost/busybox:latest
    steps:
      - run: exit 4
      - if: failure()
        run: echo "cleanup ran in the box"
      - run: echo "never runs"
"#;

#[test]
fn container_jobs_run_their_steps_in_the_container() {
    if docker_host().is_none() {
        return;
    }
    let agent = Agent::start_with_env(&[
        ("HANGAR_DOCKER_IMAGES", &format!("linux={IMAGE}")),
        ("E2E_HOST_ONLY", "leaked"),
    ]);
    agent.create_repo("acme/box", false);
    let work = work_repo(&[
        ("README.md", b"hello from the checkout\n"),
        (".github/workflows/ci.yml", CI.as_bytes()),
    ]);
    git(
        work.path(),
        &["push", "-q", &agent.git_url("acme/box"), "main"],
    );
    let builds = agent.wait_builds("acme/box", 1);
    let build = agent.build(builds[0]["id"].as_str().unwrap());
    assert_eq!(build["status"], "failure", "{build:#}");

    let boxed = job_named(&build, "box");
    assert_eq!(boxed["status"], "success", "{build:#}\n{}", agent.log());
    let log = agent.job_log(&build, boxed);
    assert!(log.contains("hello from the checkout"), "{log}");
    assert!(log.contains("pid 1 is tail -f /dev/null"), "{log}");
    let workspace = log
        .lines()
        .find_map(|l| l.split("workspace is ").nth(1))
        .expect("workspace line");
    let (env_path, pwd) = workspace.split_once(", in ").expect("pwd");
    assert_eq!(env_path, pwd, "{log}");
    assert!(
        log.contains("container env is declared, host env is absent"),
        "{log}"
    );
    // GITHUB_PATH goes in front of the image's own PATH.
    assert!(
        log.contains("got hello and carried-value, PATH=/opt/tools:/bin"),
        "{log}"
    );
    assert!(log.contains("the secret is ***"), "{log}");
    assert!(!log.contains("hush-hush"), "{log}");

    let mapped = agent.job_log(&build, job_named(&build, "mapped"));
    assert!(
        mapped.contains("mapped label runs in tail -f /dev/null"),
        "{mapped}"
    );
    let after = agent.job_log(&build, job_named(&build, "after"));
    assert!(after.contains("needs gave hello"), "{after}");

    let fails = job_named(&build, "fails");
    assert_eq!(fails["status"], "failure");
    let log = agent.job_log(&build, fails);
    assert!(log.contains("exited with status 4"), "{log}");
    assert!(log.contains("cleanup ran in the box"), "{log}");
    assert!(!log.contains("never runs\n"), "{log}");

    let id = build["id"].as_str().unwrap();
    assert_eq!(
        containers_labelled(&format!("hangar.build={id}")),
        Vec::<String>::new(),
        "containers are removed after success and failure"
    );
}

#[test]
fn cancel_removes_the_container_and_a_timeout_stops_only_its_step() {
    if docker_host().is_none() {
        return;
    }
    let agent = Agent::start();
    agent.create_repo("acme/slow", false);
    let workflow = r#"
on: push
jobs:
  slow:
    runs-on: ubuntu-latest
    container: localhost/busybox:latest
    steps:
      - run: |
          sleep 300 &
          echo started
          wait
"#;
    let work = work_repo(&[(".github/workflows/slow.yml", workflow.as_bytes())]);
    git(
        work.path(),
        &["push", "-q", &agent.git_url("acme/slow"), "main"],
    );
    let (build, job) = agent.wait_running_log("acme/slow", "started");
    let label = format!("hangar.job={}", job["id"].as_str().unwrap());
    assert_eq!(
        containers_labelled(&label).len(),
        1,
        "the job has its container"
    );

    let id = build["id"].as_str().unwrap();
    let (status, _) = agent.api("POST", &format!("/api/v1/builds/{id}/cancel"), None);
    assert_eq!(status, 202);
    let builds = agent.wait_builds("acme/slow", 1);
    assert_eq!(builds[0]["status"], "cancelled");
    assert_eq!(
        containers_labelled(&label),
        Vec::<String>::new(),
        "the cancelled job's container is gone"
    );

    // A step's timeout stops that step only: later steps still run in the
    // same container.
    let timed = r#"
on: push
jobs:
  slow:
    runs-on: ubuntu-latest
    container: localhost/busybox:latest
    steps:
      - run: sleep 200
        timeout-minutes: ${{ 0.03 }}
      - if: always()
        run: echo "still in $(tr '\0' ' ' < /proc/1/cmdline)"
"#;
    commit_file(work.path(), ".github/workflows/slow.yml", timed.as_bytes());
    git(
        work.path(),
        &["push", "-q", &agent.git_url("acme/slow"), "main"],
    );
    let builds = agent.wait_builds("acme/slow", 2);
    let build = agent.build(builds[0]["id"].as_str().unwrap());
    assert_eq!(build["status"], "failure", "{build:#}");
    let log = agent.job_log(&build, &build["jobs"][0]);
    assert!(log.contains("timeout-minutes"), "{log}");
    assert!(log.contains("still in tail -f /dev/null"), "{log}");
}

#[test]
fn sigkill_mid_container_job_leaves_no_container_after_restart() {
    if docker_host().is_none() {
        return;
    }
    let mut agent = Agent::start();
    agent.create_repo("acme/crash", false);
    // The first attempt hangs; the second (after the restart) finishes. The
    // marker sits in the job directory, which the container mounts.
    let workflow = r#"
on: push
jobs:
  j:
    runs-on: ubuntu-latest
    container: localhost/busybox:latest
    steps:
      - run: |
          if [ -f "$RUNNER_TEMP/../attempted" ]; then echo finished; exit 0; fi
          touch "$RUNNER_TEMP/../attempted"
          echo waiting
          sleep 300
"#;
    let work = work_repo(&[(".github/workflows/w.yml", workflow.as_bytes())]);
    git(
        work.path(),
        &["push", "-q", &agent.git_url("acme/crash"), "main"],
    );
    let (_, job) = agent.wait_running_log("acme/crash", "waiting");
    let label = format!("hangar.job={}", job["id"].as_str().unwrap());
    let first = containers_labelled(&label);
    assert_eq!(first.len(), 1);

    agent.kill();
    assert_eq!(
        containers_labelled(&label),
        first,
        "SIGKILL leaves the container running"
    );
    agent.restart();
    let builds = agent.wait_builds("acme/crash", 1);
    let build = agent.build(builds[0]["id"].as_str().unwrap());
    assert_eq!(build["status"], "success", "{build:#}\n{}", agent.log());
    assert_eq!(build["jobs"][0]["attempt"], 2);
    assert!(
        agent
            .job_log(&build, &build["jobs"][0])
            .contains("finished")
    );
    assert_eq!(
        containers_labelled(&label),
        Vec::<String>::new(),
        "the restarted agent removed the leftover container, and the retry's own: {}",
        agent.log()
    );
}

#[test]
fn a_missing_image_fails_the_job_with_the_fix() {
    if docker_host().is_none() {
        return;
    }
    let agent = Agent::start();
    agent.create_repo("acme/img", false);
    let workflow = r#"
on: push
jobs:
  j:
    runs-on: ubuntu-latest
    container: localhost/hangar-missing:1.0
    steps:
      - run: echo never
"#;
    let work = work_repo(&[(".github/workflows/w.yml", workflow.as_bytes())]);
    git(
        work.path(),
        &["push", "-q", &agent.git_url("acme/img"), "main"],
    );
    let builds = agent.wait_builds("acme/img", 1);
    let build = agent.build(builds[0]["id"].as_str().unwrap());
    let job = &build["jobs"][0];
    assert_eq!(job["status"], "failure", "{build:#}");
    let reason = job["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("cannot pull image localhost/hangar-missing:1.0")
            && reason.contains("docker_images"),
        "{reason}"
    );
}

/// Needs no engine: an unreachable one fails Docker jobs with what to start,
/// and host jobs run as ever.
#[test]
fn without_an_engine_docker_jobs_fail_clearly_and_host_jobs_run() {
    let dir = tempfile::tempdir().unwrap();
    let host = format!("unix://{}", dir.path().join("no-engine.sock").display());
    let agent = Agent::start_with_env(&[("DOCKER_HOST", &host)]);
    agent.create_repo("acme/mixed", false);
    let workflow = format!(
        r#"
on: push
jobs:
  boxed:
    runs-on: ubuntu-latest
    container: {IMAGE}
    steps:
      - run: echo never
  native:
    runs-on: self-hosted
    steps:
      - run: echo on the host
"#
    );
    let work = work_repo(&[(".github/workflows/w.yml", workflow.as_bytes())]);
    git(
        work.path(),
        &["push", "-q", &agent.git_url("acme/mixed"), "main"],
    );
    let builds = agent.wait_builds("acme/mixed", 1);
    let build = agent.build(builds[0]["id"].as_str().unwrap());
    assert_eq!(
        job_named(&build, "native")["status"],
        "success",
        "{build:#}"
    );
    let boxed = job_named(&build, "boxed");
    assert_eq!(boxed["status"], "failure");
    let reason = boxed["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&host) && reason.contains("Docker Desktop, OrbStack or colima"),
        "{reason}"
    );
}
