//! Builds end to end: push a repository with workflows over HTTP and follow
//! the build through the API, with real processes on the host.

use std::time::{Duration, Instant};

use hangar_tests::{Agent, commit_file, git, job_named, work_repo};

/// The process group id a step wrote to `work/BUILD/pid`, once it has.
fn step_pid(agent: &Agent) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = std::fs::read_dir(agent.data_dir().join("work"))
            .into_iter()
            .flatten()
            .flatten()
            .find_map(|d| {
                std::fs::read_to_string(d.path().join("pid"))
                    .ok()?
                    .trim()
                    .parse()
                    .ok()
            });
        if let Some(pid) = found {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "the step did not start: {}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The log of the first job of the newest build.
fn running_log(agent: &Agent) -> String {
    let (_, list) = agent.api("GET", "/api/v1/builds", None);
    let Some(id) = list["items"][0]["id"].as_str() else {
        return String::new();
    };
    let build = agent.build(id);
    agent.job_log(&build, &build["jobs"][0])
}

/// Whether any process of the group is still running (zombies, which this
/// sandbox's init may never reap, do not count).
fn group_alive(pgid: i32) -> bool {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                return false;
            };
            // Fields after the command name: state, ppid, pgrp, ...
            let Some((_, rest)) = stat.rsplit_once(") ") else {
                return false;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
        })
}

const CI: &str = r#"
name: CI
on: push
jobs:
  build:
    runs-on: self-hosted
    outputs:
      greeting: ${{ steps.hello.outputs.greeting }}
    steps:
      - uses: actions/checkout@v4
      - id: hello
        run: |
          echo "greeting=hi from $GITHUB_REF_NAME" >> "$GITHUB_OUTPUT"
          echo "FOO=bar" >> "$GITHUB_ENV"
          cat README.md
      - run: echo "foo is $FOO, ci is $CI"
      - run: echo "::error file=App/main.swift,line=3::broken thing"
      - run: exit 3
        continue-on-error: true
  test:
    needs: build
    runs-on: self-hosted
    strategy:
      matrix:
        n: [1, 2]
    steps:
      - run: echo "got ${{ needs.build.outputs.greeting }} n=${{ matrix.n }}"
  fails:
    runs-on: self-hosted
    steps:
      - run: exit 1
      - if: failure()
        run: echo "cleanup after failure"
      - if: always()
        run: echo "always runs"
      - run: echo "never runs"
"#;

#[test]
fn a_push_runs_its_workflow_on_the_host() {
    let agent = Agent::start_with_env(&[("HANGAR_HOST_SLOTS", "2")]);
    agent.create_repo("acme/app", false);
    let work = work_repo(&[
        ("README.md", b"hello readme\n"),
        (".github/workflows/ci.yml", CI.as_bytes()),
    ]);
    git(
        work.path(),
        &["push", "-q", &agent.git_url("acme/app"), "main"],
    );

    let builds = agent.wait_builds("acme/app", 1);
    assert_eq!(builds.len(), 1);
    let build = agent.build(builds[0]["id"].as_str().unwrap());
    assert_eq!(build["status"], "failure", "{build:#}");
    assert_eq!(build["workflow_name"], "CI");
    assert_eq!(
        build["sha"].as_str().unwrap(),
        git(work.path(), &["rev-parse", "HEAD"])
    );

    let compile = job_named(&build, "build");
    assert_eq!(compile["status"], "success", "{compile:#}");
    let log = agent.job_log(&build, compile);
    assert!(log.contains("hello readme"), "checkout worked: {log}");
    assert!(log.contains("foo is bar, ci is true"), "{log}");
    assert_eq!(compile["annotations"][0]["message"], "broken thing");
    assert_eq!(compile["annotations"][0]["file"], "App/main.swift");
    assert_eq!(compile["outputs"]["greeting"], "hi from main");
    let steps: Vec<&str> = compile["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        ["success", "success", "success", "success", "failure"]
    );

    for n in [1, 2] {
        let test = job_named(&build, &format!("test ({n})"));
        assert_eq!(test["status"], "success");
        assert!(
            agent
                .job_log(&build, test)
                .contains(&format!("got hi from main n={n}"))
        );
    }

    let fails = job_named(&build, "fails");
    assert_eq!(fails["status"], "failure");
    let log = agent.job_log(&build, fails);
    assert!(
        log.contains("cleanup after failure") && log.contains("always runs"),
        "{log}"
    );
    assert!(!log.contains("never runs"));

    // The CLI shows the same build.
    let out = agent.cli(&["build", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["status"], "failure");
    let out = agent.cli(&[
        "build",
        "logs",
        build["id"].as_str().unwrap(),
        "--job",
        "build",
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("foo is bar"));
}

#[test]
fn cancel_kills_the_step_and_timeouts_stop_it() {
    let agent = Agent::start();
    agent.create_repo("acme/slow", false);
    let workflow = r#"
on: push
jobs:
  slow:
    runs-on: self-hosted
    steps:
      - run: |
          echo $$ > "$RUNNER_TEMP/../../pid"
          sleep 300 &
          echo started
          wait
"#;
    let work = work_repo(&[(".github/workflows/slow.yml", workflow.as_bytes())]);
    git(
        work.path(),
        &["push", "-q", &agent.git_url("acme/slow"), "main"],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let build_id = loop {
        let (_, list) = agent.api("GET", "/api/v1/builds", None);
        if let Some(b) = list["items"]
            .as_array()
            .and_then(|a| a.first())
            .filter(|b| b["status"] == "running")
        {
            let build = agent.build(b["id"].as_str().unwrap());
            if agent.job_log(&build, &build["jobs"][0]).contains("started") {
                break b["id"].as_str().unwrap().to_owned();
            }
        }
        assert!(
            Instant::now() < deadline,
            "build did not start: {}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let pgid = step_pid(&agent);
    assert!(group_alive(pgid));
    let (status, _) = agent.api("POST", &format!("/api/v1/builds/{build_id}/cancel"), None);
    assert_eq!(status, 202);
    let builds = agent.wait_builds("acme/slow", 1);
    assert_eq!(builds[0]["status"], "cancelled");
    // The whole process group went, background `sleep` included.
    assert!(
        !group_alive(pgid),
        "the step's processes survived the cancel"
    );
    // Cancelling a finished build is a clear 409.
    let (status, body) = agent.api("POST", &format!("/api/v1/builds/{build_id}/cancel"), None);
    assert_eq!(status, 409, "{body}");

    let timed = r#"
on: push
jobs:
  slow:
    runs-on: self-hosted
    steps:
      - run: sleep 200
        timeout-minutes: ${{ 0.03 }}
"#;
    commit_file(work.path(), ".github/workflows/slow.yml", timed.as_bytes());
    git(
        work.path(),
        &["push", "-q", &agent.git_url("acme/slow"), "main"],
    );
    let builds = agent.wait_builds("acme/slow", 2);
    let build = agent.build(builds[0]["id"].as_str().unwrap());
    assert_eq!(build["status"], "failure", "{build:#}");
    assert!(agent.job_log(&build, &build["jobs"][0]).contains("timeout"));
}

#[test]
fn invalid_workflows_are_reported_and_others_still_run() {
    let agent = Agent::start();
    agent.create_repo("acme/mixed", false);
    let good =
        "on: push\njobs:\n  ok:\n    runs-on: self-hosted\n    steps:\n      - run: echo fine\n";
    let bad = "on: push\njobs:\n  broken:\n    runs-on: self-hosted\n    steps:\n      - run: echo ${{ nope(\n";
    let work = work_repo(&[
        (".github/workflows/good.yml", good.as_bytes()),
        (".github/workflows/bad.yml", bad.as_bytes()),
    ]);
    git(
        work.path(),
        &["push", "-q", &agent.git_url("acme/mixed"), "main"],
    );
    let builds = agent.wait_builds("acme/mixed", 2);
    let by_file = |f: &str| {
        builds
            .iter()
            .find(|b| b["workflow_file"].as_str().unwrap().ends_with(f))
            .unwrap()
    };
    assert_eq!(by_file("good.yml")["status"], "success");
    assert_eq!(by_file("bad.yml")["status"], "invalid");
    assert!(
        by_file("bad.yml")["error"]
            .as_str()
            .unwrap()
            .contains("bad.yml:"),
        "{}",
        by_file("bad.yml")
    );
}

#[test]
fn sigkill_mid_build_resumes_after_restart() {
    let mut agent = Agent::start();
    agent.create_repo("acme/crash", false);
    // The first attempt hangs; the second (after the restart) finishes.
    let workflow = r#"
on: push
jobs:
  j:
    runs-on: self-hosted
    steps:
      - run: |
          if [ -f "$RUNNER_TEMP/../../attempted" ]; then echo finished; exit 0; fi
          touch "$RUNNER_TEMP/../../attempted"
          echo $$ > "$RUNNER_TEMP/../../pid"
          echo waiting
          sleep 300
"#;
    let work = work_repo(&[(".github/workflows/w.yml", workflow.as_bytes())]);
    git(
        work.path(),
        &["push", "-q", &agent.git_url("acme/crash"), "main"],
    );
    let pgid = step_pid(&agent);
    // Output is read once the agent has recorded the step's process group.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !agent
        .api("GET", "/api/v1/builds", None)
        .1
        .to_string()
        .contains("running")
        || !running_log(&agent).contains("waiting")
    {
        assert!(
            Instant::now() < deadline,
            "the step did not print: {}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    agent.kill();
    assert!(group_alive(pgid), "SIGKILL leaves the step running");
    agent.restart();
    let builds = agent.wait_builds("acme/crash", 1);
    assert!(
        !group_alive(pgid),
        "the restarted agent stops what the crashed one left running: {}",
        agent.log()
    );
    let build = agent.build(builds[0]["id"].as_str().unwrap());
    assert_eq!(build["status"], "success", "{build:#}");
    assert_eq!(build["jobs"][0]["attempt"], 2);
    assert!(
        agent
            .job_log(&build, &build["jobs"][0])
            .contains("finished")
    );
}

#[test]
fn a_paused_queue_plans_builds_but_starts_them_only_after_resume() {
    let mut agent = Agent::start();
    agent.create_repo("acme/app", false);
    let (status, queue) = agent.api("POST", "/api/v1/queue/pause", None);
    assert_eq!(status, 200, "{queue}");
    assert_eq!(queue["paused"], true);
    // Members may look but not pause: the queue is the host's.
    let member = agent.create_user("dana", "member");
    let (status, _) = agent.api_as(Some(&member), "POST", "/api/v1/queue/resume", None);
    assert_eq!(status, 403);
    let (status, _) = agent.api("POST", "/api/v1/queue/stop", None);
    assert_eq!(status, 404);

    let work = work_repo(&[(
        ".github/workflows/ci.yml",
        b"on: push\njobs:\n  one:\n    runs-on: self-hosted\n    steps:\n      - run: echo ran\n",
    )]);
    git(
        work.path(),
        &["push", "-q", &agent.git_url("acme/app"), "main"],
    );
    // The push becomes a queued build, and its job waits.
    let deadline = Instant::now() + Duration::from_secs(30);
    let queue = loop {
        let (_, queue) = agent.api("GET", "/api/v1/queue", None);
        if queue["queued"] == 1 {
            break queue;
        }
        assert!(Instant::now() < deadline, "no queued job: {queue}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(queue["paused"], true);
    assert_eq!(queue["running"], 0);
    // The scheduler wakes every second; three of them start nothing.
    std::thread::sleep(Duration::from_secs(3));
    let (_, list) = agent.api("GET", "/api/v1/builds?repo=acme/app", None);
    assert_eq!(list["items"][0]["status"], "queued", "{list}");

    // The pause survives a restart; resume then runs the build.
    agent.restart();
    let out = agent.cli(&["queue", "show"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("queue paused: 1 job(s) queued"), "{text}");
    let out = agent.cli(&["queue", "resume"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let builds = agent.wait_builds("acme/app", 1);
    assert_eq!(builds[0]["status"], "success", "{builds:?}");
    let (_, queue) = agent.api("GET", "/api/v1/queue", None);
    assert_eq!(queue["paused"], false);
}

#[test]
fn jobs_wait_while_the_host_is_short_of_memory() {
    // No machine has a million GiB free: the job must wait, saying why.
    let mut agent = Agent::start_with_env(&[("HANGAR_MIN_FREE_MEMORY_MB", "1000000000")]);
    agent.create_repo("acme/app", false);
    let work = work_repo(&[(
        ".github/workflows/ci.yml",
        b"on: push\njobs:\n  one:\n    runs-on: self-hosted\n    steps:\n      - run: echo ran\n",
    )]);
    git(
        work.path(),
        &["push", "-q", &agent.git_url("acme/app"), "main"],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let job = loop {
        let (_, list) = agent.api("GET", "/api/v1/builds?repo=acme/app", None);
        if let Some(id) = list["items"][0]["id"].as_str() {
            let build = agent.build(id);
            let job = build["jobs"][0].clone();
            if job["reason"].is_string() {
                break job;
            }
        }
        assert!(Instant::now() < deadline, "no held job: {list}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(job["status"], "queued", "{job}");
    let reason = job["reason"].as_str().expect("reason");
    assert!(
        reason.contains("waiting for memory") && reason.contains("min_free_memory_mb"),
        "{reason}"
    );

    // With the threshold lowered, the same queued job runs.
    agent.set_env("HANGAR_MIN_FREE_MEMORY_MB", "0");
    agent.restart();
    let builds = agent.wait_builds("acme/app", 1);
    assert_eq!(builds[0]["status"], "success", "{builds:?}");
}

const WITH_SUBMODULES: &str = r#"
on: push
jobs:
  build:
    runs-on: self-hosted
    steps:
      - uses: actions/checkout@v4
        with:
          submodules: recursive
      - run: cat lib/lib.txt
"#;

/// A repository whose `lib` submodule (commit `lib_sha`) comes from `url`.
fn push_with_submodule(agent: &Agent, repo: &str, url: &str, lib_sha: &str) {
    agent.create_repo(repo, false);
    let work = work_repo(&[(".github/workflows/ci.yml", WITH_SUBMODULES.as_bytes())]);
    std::fs::write(
        work.path().join(".gitmodules"),
        format!("[submodule \"lib\"]\n\tpath = lib\n\turl = {url}\n"),
    )
    .expect("write .gitmodules");
    git(work.path(), &["add", ".gitmodules"]);
    let gitlink = format!("160000,{lib_sha},lib");
    git(
        work.path(),
        &["update-index", "--add", "--cacheinfo", &gitlink],
    );
    git(work.path(), &["commit", "-q", "-m", "add lib"]);
    git(work.path(), &["push", "-q", &agent.git_url(repo), "main"]);
}

#[test]
fn checkout_brings_submodules_from_this_host_only() {
    let agent = Agent::start();
    agent.create_repo("acme/lib", false);
    let lib = work_repo(&[("lib.txt", b"from the library\n")]);
    git(
        lib.path(),
        &["push", "-q", &agent.git_url("acme/lib"), "main"],
    );
    let lib_sha = git(lib.path(), &["rev-parse", "HEAD"]);

    push_with_submodule(&agent, "acme/app", "../lib.git", &lib_sha);
    let build = agent.build(agent.wait_builds("acme/app", 1)[0]["id"].as_str().unwrap());
    let log = agent.job_log(&build, job_named(&build, "build"));
    assert_eq!(build["status"], "success", "{log}");
    assert!(log.contains("from the library"), "{log}");

    // A submodule from the internet is refused with the way out, not fetched.
    push_with_submodule(
        &agent,
        "acme/web",
        "https://example.invalid/lib.git",
        &lib_sha,
    );
    let build = agent.build(agent.wait_builds("acme/web", 1)[0]["id"].as_str().unwrap());
    let log = agent.job_log(&build, job_named(&build, "build"));
    assert_eq!(build["status"], "failure", "{log}");
    assert!(
        log.contains("not a repository on this host")
            && log.contains("hangar mirror add https://example.invalid/lib.git"),
        "{log}"
    );
}

#[test]
fn logs_follow_shows_a_running_job_live_from_the_cli() {
    use std::io::BufRead as _;
    let agent = Agent::start();
    agent.create_repo("acme/live", false);
    let gate = tempfile::tempdir().unwrap();
    let go = gate.path().join("go");
    let workflow = format!(
        r#"
on: push
jobs:
  live:
    runs-on: self-hosted
    steps:
      - run: |
          echo "first line"
          while [ ! -e '{}' ]; do sleep 0.05; done
          echo "second line"
"#,
        go.display()
    );
    let work = work_repo(&[(".github/workflows/live.yml", workflow.as_bytes())]);
    git(
        work.path(),
        &["push", "-q", &agent.git_url("acme/live"), "main"],
    );
    let newest = || {
        let (_, list) = agent.api("GET", "/api/v1/builds", None);
        list["items"][0]["id"].as_str().map(str::to_owned)
    };
    hangar_tests::wait_until(&agent, "the build to be queued", || newest().is_some());
    let build_id = newest().unwrap();

    let mut follow = agent
        .cli_command(&["build", "logs", &build_id, "-f"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines.send(line);
        }
    });
    let wait_for = |text: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match received.recv_timeout(left) {
                Ok(line) if line.contains(text) => return,
                Ok(_) => {}
                Err(e) => panic!("no {text:?} from `build logs -f` ({e}): {}", agent.log()),
            }
        }
    };
    // The first line arrives while the step is still waiting at the gate.
    wait_for("first line");
    assert!(follow.try_wait().unwrap().is_none(), "-f stopped early");
    assert_eq!(agent.build(&build_id)["status"], "running");
    std::fs::write(&go, "").unwrap();
    wait_for("second line");
    // The stream ends with the job, and so does the command.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = follow.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "-f did not end with the job");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    assert_eq!(agent.wait_builds("acme/live", 1)[0]["status"], "success");
}
