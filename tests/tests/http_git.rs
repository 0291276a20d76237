//! Git smart HTTP against a real agent with the real git CLI.

use hangar_tests::{Agent, commit_file, git, git_output, random_bytes, work_repo};

#[test]
fn clone_empty_push_clone_and_fetch_over_v2_and_v0() {
    let agent = Agent::start();
    agent.create_repo("acme/app", false);
    let scratch = tempfile::tempdir().unwrap();

    // Cloning an empty repository works (with git's usual warning).
    git(
        scratch.path(),
        &["clone", "-q", &agent.git_url("acme/app"), "empty"],
    );
    let work = scratch.path().join("empty");
    commit_file(&work, "README.md", b"hello\n");
    git(&work, &["push", "-q", "origin", "main"]);

    for version in ["2", "0"] {
        let name = format!("v{version}");
        git(
            scratch.path(),
            &[
                "-c",
                &format!("protocol.version={version}"),
                "clone",
                "-q",
                &agent.git_url("acme/app"),
                &name,
            ],
        );
        let cloned = scratch.path().join(&name);
        assert_eq!(std::fs::read(cloned.join("README.md")).unwrap(), b"hello\n");

        commit_file(&work, &format!("from-{version}.txt"), version.as_bytes());
        git(&work, &["push", "-q", "origin", "main"]);
        git(
            &cloned,
            &[
                "-c",
                &format!("protocol.version={version}"),
                "fetch",
                "-q",
                "origin",
            ],
        );
        assert_eq!(
            git(&cloned, &["rev-parse", "origin/main"]),
            git(&work, &["rev-parse", "HEAD"])
        );
    }
    git(&agent.repo_path("acme/app"), &["fsck", "--no-progress"]);

    // Each accepted push was recorded with its ref update.
    let (status, events) = agent.api("GET", "/api/v1/repos/acme/app/events", None);
    assert_eq!(status, 200);
    let events = events["items"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0]["kind"], "push");
    assert_eq!(events[0]["payload"]["updates"][0]["ref"], "refs/heads/main");
    assert_eq!(
        events[0]["payload"]["updates"][0]["new"].as_str().unwrap(),
        git(&work, &["rev-parse", "HEAD"])
    );
}

#[test]
fn partial_and_shallow_clones() {
    let agent = Agent::start();
    agent.create_repo("acme/big", false);
    let work = work_repo(&[
        ("a.txt", b"one"),
        ("b.bin", &random_bytes(200_000, 1)),
        ("c.txt", b"three"),
    ]);
    git(
        work.path(),
        &["push", "-q", &agent.git_url("acme/big"), "main"],
    );
    let scratch = tempfile::tempdir().unwrap();

    git(
        scratch.path(),
        &[
            "clone",
            "-q",
            "--filter=blob:none",
            &agent.git_url("acme/big"),
            "partial",
        ],
    );
    let partial = scratch.path().join("partial");
    assert_eq!(git(&partial, &["config", "remote.origin.promisor"]), "true");
    assert_eq!(
        std::fs::read(partial.join("b.bin")).unwrap(),
        random_bytes(200_000, 1)
    );

    git(
        scratch.path(),
        &[
            "clone",
            "-q",
            "--depth",
            "1",
            &agent.git_url("acme/big"),
            "shallow",
        ],
    );
    let shallow = scratch.path().join("shallow");
    assert_eq!(git(&shallow, &["rev-list", "--count", "HEAD"]), "1");
    assert_eq!(
        git(&shallow, &["rev-parse", "HEAD"]),
        git(work.path(), &["rev-parse", "HEAD"])
    );
}

#[test]
fn push_of_a_20_mb_file() {
    let agent = Agent::start();
    agent.create_repo("acme/assets", false);
    let big = random_bytes(20 << 20, 7);
    let work = work_repo(&[("asset.bin", &big)]);
    git(
        work.path(),
        &["push", "-q", &agent.git_url("acme/assets"), "main"],
    );
    let scratch = tempfile::tempdir().unwrap();
    git(
        scratch.path(),
        &["clone", "-q", &agent.git_url("acme/assets"), "copy"],
    );
    assert!(std::fs::read(scratch.path().join("copy/asset.bin")).unwrap() == big);
    git(&agent.repo_path("acme/assets"), &["fsck", "--no-progress"]);
}

#[test]
fn pushes_and_private_clones_need_a_token() {
    let agent = Agent::start();
    agent.create_repo("acme/private", false);
    agent.create_repo("acme/open", true);
    let work = work_repo(&[("a.txt", b"a")]);
    let scratch = tempfile::tempdir().unwrap();

    // No token: the push is refused with a 401 and nothing changes.
    let out = git_output(work.path(), &["push", &agent.anon_url("acme/open"), "main"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("could not read Username") || stderr.contains("401"),
        "{stderr}"
    );
    let (_, branches) = agent.api("GET", "/api/v1/repos/acme/open/branches", None);
    assert_eq!(branches["items"].as_array().unwrap().len(), 0);

    // A wrong token is refused too.
    let out = git_output(
        work.path(),
        &[
            "push",
            &agent.git_url_with("acme/open", "hgr_wrong"),
            "main",
        ],
    );
    assert!(!out.status.success());

    git(
        work.path(),
        &["push", "-q", &agent.git_url("acme/open"), "main"],
    );
    git(
        work.path(),
        &["push", "-q", &agent.git_url("acme/private"), "main"],
    );

    // Public repos clone anonymously; private ones do not, and look like missing ones.
    git(
        scratch.path(),
        &["clone", "-q", &agent.anon_url("acme/open"), "open"],
    );
    let private = git_output(
        scratch.path(),
        &["clone", &agent.anon_url("acme/private"), "private"],
    );
    let missing = git_output(
        scratch.path(),
        &["clone", &agent.anon_url("acme/missing"), "missing"],
    );
    assert!(!private.status.success() && !missing.status.success());
    assert_eq!(
        String::from_utf8_lossy(&private.stderr).replace("private", "X"),
        String::from_utf8_lossy(&missing.stderr).replace("missing", "X")
    );
    assert!(!scratch.path().join("private/.git").exists());

    // A reader may clone but not push.
    let reader = agent.create_user("rita", "reader");
    git(
        scratch.path(),
        &[
            "clone",
            "-q",
            &agent.git_url_with("acme/private", &reader),
            "as-reader",
        ],
    );
    let clone = scratch.path().join("as-reader");
    commit_file(&clone, "b.txt", b"b");
    let out = git_output(&clone, &["push", "origin", "main"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("403"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn concurrent_pushes_to_one_branch_one_wins() {
    let agent = Agent::start();
    agent.create_repo("acme/race", false);
    let base = work_repo(&[("base.txt", b"base")]);
    git(
        base.path(),
        &["push", "-q", &agent.git_url("acme/race"), "main"],
    );
    let scratch = tempfile::tempdir().unwrap();
    let mut clones = Vec::new();
    for i in 0..2 {
        let name = format!("c{i}");
        git(
            scratch.path(),
            &["clone", "-q", &agent.git_url("acme/race"), &name],
        );
        let dir = scratch.path().join(&name);
        commit_file(&dir, &format!("{i}.bin"), &random_bytes(3 << 20, i));
        clones.push(dir);
    }
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = clones
            .iter()
            .map(|dir| s.spawn(move || git_output(dir, &["push", "origin", "main"])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won: Vec<bool> = results.iter().map(|o| o.status.success()).collect();
    assert_eq!(
        won.iter().filter(|w| **w).count(),
        1,
        "exactly one push wins: {results:?}"
    );
    let loser = results.iter().find(|o| !o.status.success()).unwrap();
    let stderr = String::from_utf8_lossy(&loser.stderr);
    assert!(
        stderr.contains("rejected")
            || stderr.contains("failed to update")
            || stderr.contains("lock"),
        "the loser is told why: {stderr}"
    );
    let winner = &clones[won.iter().position(|w| *w).unwrap()];
    let served = git(&agent.repo_path("acme/race"), &["rev-parse", "main"]);
    assert_eq!(served, git(winner, &["rev-parse", "HEAD"]));
    git(&agent.repo_path("acme/race"), &["fsck", "--no-progress"]);
}

#[test]
fn traversal_and_malformed_names_are_refused_before_any_path_is_built() {
    let agent = Agent::start();
    for name in [
        "../etc",
        "acme/..",
        "acme/.git",
        "-x/app",
        "acme/a/b",
        "acme/a%00b",
        "acme/é",
    ] {
        let (status, body) = agent.api(
            "POST",
            "/api/v1/repos",
            Some(serde_json::json!({ "name": name })),
        );
        assert_eq!(status, 400, "{name}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().len() > 10,
            "{body}"
        );
    }
    let client = reqwest::blocking::Client::new();
    for path in [
        "/acme/..%2F..%2Fetc.git/info/refs?service=git-upload-pack",
        "/..%2F../x.git/info/refs?service=git-upload-pack",
    ] {
        let status = client
            .get(format!("{}{path}", agent.url))
            .bearer_auth(&agent.token)
            .send()
            .unwrap()
            .status();
        assert!(status == 400 || status == 404, "{path}: {status}");
    }
    let entries: Vec<_> = std::fs::read_dir(agent.data_dir().join("repos"))
        .unwrap()
        .collect();
    assert!(entries.is_empty(), "nothing was created: {entries:?}");
}

#[test]
fn oversized_and_malformed_requests_are_refused() {
    let agent = Agent::start_with_env(&[("HANGAR_MAX_PUSH_MB", "1")]);
    agent.create_repo("acme/small", false);
    let client = reqwest::blocking::Client::new();
    let rpc = format!("{}/acme/small.git/git-receive-pack", agent.url);

    // A pkt-line header longer than git allows.
    let response = client
        .post(&rpc)
        .bearer_auth(&agent.token)
        .body("ffffjunk")
        .send()
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().unwrap().contains("exceeds the limit"));

    // A push over max_push_mb is cut off and changes nothing.
    let work = work_repo(&[("big.bin", &random_bytes(3 << 20, 3))]);
    let out = git_output(work.path(), &["push", &agent.git_url("acme/small"), "main"]);
    assert!(!out.status.success());
    assert_eq!(git(&agent.repo_path("acme/small"), &["for-each-ref"]), "");

    // An API body over the JSON limit.
    let big = "x".repeat(100_000);
    let (status, body) = agent.api(
        "POST",
        "/api/v1/tokens",
        Some(serde_json::json!({ "name": big })),
    );
    assert_eq!(status, 413, "{body}");
}

#[test]
fn gzip_request_bodies_are_accepted() {
    let agent = Agent::start();
    agent.create_repo("acme/zip", false);
    let work = work_repo(&[("a.txt", b"a")]);
    git(
        work.path(),
        &["push", "-q", &agent.git_url("acme/zip"), "main"],
    );

    // A protocol v2 ls-refs request, gzipped as git does for large requests.
    let request = b"0014command=ls-refs\n00010009peel\n0000";
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/acme/zip.git/git-upload-pack", agent.url))
        .bearer_auth(&agent.token)
        .header("Git-Protocol", "version=2")
        .header("Content-Encoding", "gzip")
        .header("Content-Type", "application/x-git-upload-pack-request")
        .body(gzip(request))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().unwrap();
    assert!(text.contains("refs/heads/main"), "{text}");
}

/// Gzips with the system `gzip` tool, so the test does not share the agent's decoder.
fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut child = std::process::Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("write");
    child.wait_with_output().expect("gzip output").stdout
}
