//! Artifacts and caches end to end: jobs upload and download artifacts, the
//! CLI lists and unpacks them, retention removes them; `actions/cache`
//! restores by key and restore-key prefix and saves after a successful job.

use hangar_tests::{Agent, commit_file, git, job_named, work_repo};

const WORKFLOW: &str = r#"
on: push
jobs:
  make:
    runs-on: self-hosted
    steps:
      - run: |
          mkdir -p dist/sub
          echo app > dist/app.txt
          echo deep > dist/sub/deep.txt
          echo map > dist/app.map
          echo hidden > dist/.env
      - uses: actions/upload-artifact@v4
        with:
          name: dist
          path: |
            dist
            !dist/**/*.map
          retention-days: 3
      - uses: actions/upload-artifact@v4
        with:
          name: test report
          path: dist/app.txt
      - uses: actions/upload-artifact@v4
        with:
          name: nothing
          path: not/there
  use:
    needs: make
    runs-on: self-hosted
    steps:
      - uses: actions/download-artifact@v4
        with:
          name: dist
          path: got
      - run: |
          cat got/app.txt got/sub/deep.txt
          test ! -e got/app.map && test ! -e got/.env && echo "filtered ok"
      - uses: actions/download-artifact@v4
        with:
          name: missing
  cache:
    runs-on: self-hosted
    steps:
      - uses: actions/cache@v4
        id: deps
        with:
          key: deps-${{ github.sha }}
          restore-keys: |
            deps-
          path: deps
      - run: |
          echo "hit=${{ steps.deps.outputs.cache-hit }} matched=${{ steps.deps.outputs.cache-matched-key }}"
          if [ -f deps/stamp ]; then echo "restored $(cat deps/stamp)"; fi
          mkdir -p deps && echo "$GITHUB_SHA" > deps/stamp
"#;

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn jobs_share_artifacts_and_caches() {
    let mut agent = Agent::start_with_env(&[("HANGAR_HOST_SLOTS", "2")]);
    agent.create_repo("acme/app", false);
    let work = work_repo(&[(".github/workflows/ci.yml", WORKFLOW.as_bytes())]);
    let url = agent.git_url("acme/app");
    git(work.path(), &["push", "-q", &url, "main"]);
    let first_sha = git(work.path(), &["rev-parse", "HEAD"]);

    let builds = agent.wait_builds("acme/app", 1);
    let build = agent.build(builds[0]["id"].as_str().expect("id"));
    let id = build["id"].as_str().expect("id").to_owned();

    let make = job_named(&build, "make");
    assert_eq!(make["status"], "success", "{make:#}");
    let log = agent.job_log(&build, make);
    assert!(log.contains("Uploaded artifact `dist`: 2 files"), "{log}");
    assert!(log.contains("no files were found"), "warned: {log}");

    let use_job = job_named(&build, "use");
    assert_eq!(
        use_job["status"], "failure",
        "the missing artifact fails the job"
    );
    let log = agent.job_log(&build, use_job);
    assert!(log.contains("app\ndeep\nfiltered ok"), "{log}");
    assert!(
        log.contains("this build has no artifact named `missing` (it has: dist, test report)"),
        "{log}"
    );

    let cache = job_named(&build, "cache");
    assert_eq!(cache["status"], "success", "{cache:#}");
    let log = agent.job_log(&build, cache);
    assert!(log.contains("hit=false matched="), "{log}");
    assert!(!log.contains("restored"), "{log}");
    assert!(
        log.contains("Post cache: Cache saved with key `deps-"),
        "{log}"
    );

    // The CLI lists and unpacks the artifact.
    let listed: serde_json::Value =
        serde_json::from_str(&stdout(&agent.cli(&["build", "artifacts", &id, "--json"])))
            .expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    assert_eq!(listed[0]["name"], "dist");
    assert_eq!(listed[0]["files"], 2);
    assert_eq!(listed[1]["name"], "test report");
    let out = tempfile::tempdir().expect("dir");
    let dir = out.path().join("dist");
    stdout(&agent.cli(&[
        "build",
        "download",
        &id,
        "dist",
        "--dir",
        dir.to_str().expect("utf-8"),
    ]));
    assert_eq!(
        std::fs::read_to_string(dir.join("sub/deep.txt")).expect("unpacked"),
        "deep\n"
    );
    // A name with a space travels percent-encoded in the URL.
    let report = out.path().join("report");
    stdout(&agent.cli(&[
        "build",
        "download",
        &id,
        "test report",
        "--dir",
        report.to_str().expect("utf-8"),
    ]));
    assert_eq!(
        std::fs::read_to_string(report.join("app.txt")).expect("unpacked"),
        "app\n"
    );
    let missing = agent.cli(&["build", "download", &id, "nope"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("has no artifact `nope`"),
        "{missing:?}"
    );

    // A second push: the exact key misses, the restore key finds the first
    // build's entry, and a new entry is saved.
    commit_file(work.path(), "README.md", b"second\n");
    git(work.path(), &["push", "-q", &url, "main"]);
    let builds = agent.wait_builds("acme/app", 2);
    let second = agent.build(builds[0]["id"].as_str().expect("id"));
    let log = agent.job_log(&second, job_named(&second, "cache"));
    assert!(
        log.contains(&format!("hit=false matched=deps-{first_sha}")),
        "{log}"
    );
    assert!(log.contains(&format!("restored {first_sha}")), "{log}");
    let entries: serde_json::Value = serde_json::from_str(&stdout(
        &agent.cli(&["cache", "list", "--repo", "acme/app", "--json"]),
    ))
    .expect("json");
    assert_eq!(entries.as_array().map(Vec::len), Some(2), "{entries}");
    let removed = stdout(&agent.cli(&[
        "cache",
        "rm",
        "acme/app",
        "--key",
        &format!("deps-{first_sha}"),
    ]));
    assert!(removed.contains("Deleted 1 cache entries"), "{removed}");

    // Retention: once expired, the agent removes the record and the file.
    let archive = agent
        .data_dir()
        .join("artifacts")
        .join(&id)
        .join("dist.tar");
    assert!(archive.exists());
    agent.stop();
    let store =
        hangar_core::store::Store::open(&agent.data_dir().join("hangar.db")).expect("open db");
    store
        .write(|tx| tx.execute("UPDATE artifacts SET expires_at = 0", []))
        .expect("expire");
    drop(store);
    agent.restart();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while archive.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!archive.exists(), "expired artifact removed");
    let (_, listed) = agent.api("GET", &format!("/api/v1/builds/{id}/artifacts"), None);
    assert_eq!(listed["items"], serde_json::json!([]));
}
