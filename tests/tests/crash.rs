//! The agent killed or stopped mid-work: nothing acknowledged is lost and the
//! repositories stay consistent.

use std::time::Duration;

use hangar_tests::{Agent, commit_file, git, git_command, random_bytes, work_repo};

#[test]
fn sigkill_mid_push_leaves_the_repository_consistent() {
    let mut agent = Agent::start();
    agent.create_repo("acme/app", false);
    let work = work_repo(&[("a.txt", b"first")]);
    git(
        work.path(),
        &["push", "-q", &agent.git_url("acme/app"), "main"],
    );
    let before = git(work.path(), &["rev-parse", "HEAD"]);

    commit_file(work.path(), "big.bin", &random_bytes(40 << 20, 11));
    let mut push = git_command(work.path())
        .args(["push", "-q", &agent.git_url("acme/app"), "main"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill the agent once the pack is on its way.
    let quarantine_or_pack = || {
        let objects = agent.repo_path("acme/app").join("objects");
        std::fs::read_dir(&objects)
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with("tmp_objdir"))
            })
            .unwrap_or(false)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !quarantine_or_pack()
        && std::time::Instant::now() < deadline
        && push.try_wait().unwrap().is_none()
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    agent.kill();
    let _ = push.wait();

    agent.restart();
    let served = git(&agent.repo_path("acme/app"), &["rev-parse", "main"]);
    assert_eq!(served, before, "the interrupted push did not move main");
    git(&agent.repo_path("acme/app"), &["fsck", "--no-progress"]);

    // The agent serves again, and the same push now succeeds and is recorded.
    git(
        work.path(),
        &["push", "-q", &agent.git_url("acme/app"), "main"],
    );
    assert_eq!(
        git(&agent.repo_path("acme/app"), &["rev-parse", "main"]),
        git(work.path(), &["rev-parse", "HEAD"])
    );
    let (_, events) = agent.api("GET", "/api/v1/repos/acme/app/events", None);
    assert_eq!(events["items"].as_array().unwrap().len(), 2);
}

#[test]
fn sigterm_stops_cleanly_and_keeps_every_acknowledged_push() {
    let mut agent = Agent::start();
    agent.create_repo("acme/app", false);
    let work = work_repo(&[("a.txt", b"a")]);
    for i in 0..5 {
        commit_file(work.path(), &format!("{i}.txt"), b"x");
        git(
            work.path(),
            &["push", "-q", &agent.git_url("acme/app"), "main"],
        );
    }
    let status = agent.stop();
    assert!(status.success(), "clean exit: {status}");
    agent.restart();
    let (_, events) = agent.api("GET", "/api/v1/repos/acme/app/events", None);
    assert_eq!(events["items"].as_array().unwrap().len(), 5);
    // The admin token and agent.json survive restarts.
    let (status, _) = agent.api("GET", "/api/v1/status", None);
    assert_eq!(status, 200);
}
