//! Mirrors against real git servers on loopback: `git http-backend` behind
//! the test upstream (tests/src/upstream.py) and `git daemon`; starred and
//! organization sync against the GitHub/GitLab API stand-in.

use std::process::Output;
use std::time::{Duration, Instant};

use hangar_tests::forge_standin::{self, ForgeStandin};
use hangar_tests::upstream::Upstream;
use hangar_tests::{Agent, commit_file, git, git_output, work_repo};
use serde_json::{Value, json};

/// An agent that may mirror loopback upstreams, retrying fast.
fn agent() -> Agent {
    Agent::start_with_env(&[
        ("HANGAR_ALLOW_LOCAL_MIRRORS", "true"),
        ("HANGAR_MIRROR_BACKOFF_SECS", "1"),
        ("HANGAR_MIRROR_FAILING_AFTER", "2"),
    ])
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    assert!(!out.status.success(), "unexpected success");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn mirror(agent: &Agent, name: &str) -> Value {
    let (status, body) = agent.api("GET", &format!("/api/v1/mirrors/{name}"), None);
    assert_eq!(status, 200, "{body}");
    body
}

fn wait_for(agent: &Agent, name: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = mirror(agent, name);
        if ok(&m) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {m}\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn refs(repo: &std::path::Path) -> String {
    git(repo, &["for-each-ref", "--format=%(objectname) %(refname)"])
}

#[test]
fn pull_mirror_clones_follows_upstream_and_refuses_pushes() {
    let agent = agent();
    let upstream = Upstream::http(None);
    let work = work_repo(&[("README.md", b"hello\n")]);
    git(work.path(), &["branch", "feature"]);
    git(work.path(), &["tag", "v1"]);
    upstream.bare("app", Some(work.path()));

    let added: Value = serde_json::from_str(&stdout(&agent.cli(&[
        "mirror",
        "add",
        &upstream.url("app"),
        "--as",
        "acme/app",
        "--interval",
        "1h",
        "--allow-http",
        "--wait",
        "--json",
    ])))
    .unwrap();
    assert_eq!(added["state"], "ok", "{added}");
    assert_eq!(added["kind"], "pull");
    assert_eq!(added["last_refs"], 3);
    assert_eq!(
        refs(&agent.repo_path("acme/app")),
        refs(&upstream.path("app"))
    );

    // Served on the LAN like any repository.
    let scratch = tempfile::tempdir().unwrap();
    git(
        scratch.path(),
        &["clone", "-q", &agent.git_url("acme/app"), "c"],
    );
    assert_eq!(
        std::fs::read(scratch.path().join("c/README.md")).unwrap(),
        b"hello\n"
    );

    // Upstream moves: a new commit, a force-pushed branch, a deleted branch.
    commit_file(work.path(), "two.txt", b"2");
    git(
        work.path(),
        &["push", "-q", upstream.path("app").to_str().unwrap(), "main"],
    );
    git(
        work.path(),
        &[
            "push",
            "-q",
            upstream.path("app").to_str().unwrap(),
            ":feature",
        ],
    );
    git(
        work.path(),
        &["checkout", "-q", "-b", "rewritten", "HEAD~1"],
    );
    commit_file(work.path(), "other.txt", b"x");
    git(
        work.path(),
        &[
            "push",
            "-q",
            upstream.path("app").to_str().unwrap(),
            "rewritten",
        ],
    );
    let out = stdout(&agent.cli(&["mirror", "sync", "acme/app", "--wait"]));
    assert!(out.contains("(pull mirror, ok)"), "{out}");
    assert!(out.contains("3 refs changed"), "{out}");
    assert_eq!(
        refs(&agent.repo_path("acme/app")),
        refs(&upstream.path("app"))
    );
    git(
        work.path(),
        &[
            "push",
            "-q",
            "--force",
            upstream.path("app").to_str().unwrap(),
            "HEAD:main",
        ],
    );
    stdout(&agent.cli(&["mirror", "sync", "acme/app", "--wait"]));
    assert_eq!(
        refs(&agent.repo_path("acme/app")),
        refs(&upstream.path("app"))
    );

    // Each fetch that moved refs is an event, like a push.
    let (_, events) = agent.api("GET", "/api/v1/repos/acme/app/events", None);
    let events = events["items"].as_array().unwrap().clone();
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events.iter().all(|e| e["kind"] == "mirror_fetch"));
    let updates = events[1]["payload"]["updates"].as_array().unwrap();
    let gone = updates
        .iter()
        .find(|u| u["ref"] == "refs/heads/feature")
        .unwrap();
    assert!(gone["new"].as_str().unwrap().chars().all(|c| c == '0'));

    // A push to the mirror is refused and says why.
    let clone = scratch.path().join("c");
    commit_file(&clone, "local.txt", b"nope");
    let out = git_output(&clone, &["push", "origin", "main"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("read-only mirror of") && err.contains(&upstream.url("app")),
        "{err}"
    );

    let table = stdout(&agent.cli(&["mirror", "list"]));
    assert!(
        table.starts_with("NAME") && table.contains("acme/app") && table.contains(" ok "),
        "{table}"
    );
    assert!(table.contains("s ago"), "{table}");

    // Removing the mirror keeps the repository, now writable.
    stdout(&agent.cli(&["mirror", "remove", "acme/app"]));
    git(&clone, &["push", "-q", "origin", "HEAD:refs/heads/local"]);
}

#[test]
fn failing_upstream_backs_off_then_recovers_and_pause_stops_syncs() {
    let agent = agent();
    let mut upstream = Upstream::daemon();
    let work = work_repo(&[("a.txt", b"a")]);
    upstream.bare("lib", Some(work.path()));
    stdout(&agent.cli(&[
        "mirror",
        "add",
        &upstream.url("lib"),
        "--interval",
        "1h",
        "--wait",
    ]));
    assert_eq!(mirror(&agent, "mirrors/lib")["state"], "ok");

    upstream.stop();
    stdout(&agent.cli(&["mirror", "sync", "mirrors/lib"]));
    let retrying = wait_for(&agent, "mirrors/lib", "a failure", |m| m["failures"] == 1);
    assert_eq!(retrying["state"], "retrying");
    assert!(
        retrying["last_error"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1"),
        "{retrying}"
    );
    // The next attempt comes by itself after the backoff.
    let failing = wait_for(&agent, "mirrors/lib", "failing", |m| {
        m["state"] == "failing"
    });
    assert_eq!(failing["failures"], 2);
    assert!(
        !failing["last_success"].is_null(),
        "it still says how fresh it is"
    );
    let (_, events) = agent.api("GET", "/api/v1/repos/mirrors/lib/events", None);
    assert_eq!(events["items"][0]["kind"], "mirror_failing");
    let table = stdout(&agent.cli(&["mirror", "list"]));
    assert!(table.contains("failing"), "{table}");
    assert!(agent.log().contains("mirror is failing"));

    commit_file(work.path(), "b.txt", b"b");
    upstream.resume();
    git(
        work.path(),
        &["push", "-q", upstream.path("lib").to_str().unwrap(), "main"],
    );
    let ok = wait_for(&agent, "mirrors/lib", "recovery", |m| m["state"] == "ok");
    assert_eq!(ok["failures"], 0);
    assert!(ok["last_error"].is_null());
    assert_eq!(
        refs(&agent.repo_path("mirrors/lib")),
        refs(&upstream.path("lib"))
    );

    stdout(&agent.cli(&["mirror", "pause", "mirrors/lib"]));
    assert_eq!(mirror(&agent, "mirrors/lib")["state"], "paused");
    let err = stderr(&agent.cli(&["mirror", "sync", "mirrors/lib"]));
    assert!(err.contains("resume it first"), "{err}");
    commit_file(work.path(), "c.txt", b"c");
    git(
        work.path(),
        &["push", "-q", upstream.path("lib").to_str().unwrap(), "main"],
    );
    let before = mirror(&agent, "mirrors/lib")["last_attempt"].clone();
    stdout(&agent.cli(&["mirror", "resume", "mirrors/lib"]));
    wait_for(&agent, "mirrors/lib", "a sync after resume", |m| {
        m["state"] == "ok" && m["last_attempt"] != before
    });
    assert_eq!(
        refs(&agent.repo_path("mirrors/lib")),
        refs(&upstream.path("lib"))
    );
}

#[test]
fn a_sync_cut_off_by_a_crash_runs_again_after_restart() {
    let mut agent = agent();
    let upstream = Upstream::http(None);
    let work = work_repo(&[("a.txt", b"a")]);
    upstream.bare("app", Some(work.path()));
    upstream.hang();
    stdout(&agent.cli(&[
        "mirror",
        "add",
        &upstream.url("app"),
        "--allow-http",
        "--interval",
        "1h",
    ]));
    wait_for(&agent, "mirrors/app", "the clone to start", |m| {
        m["state"] == "syncing"
    });
    agent.kill();
    upstream.unhang();
    agent.restart();
    let m = wait_for(&agent, "mirrors/app", "the retried clone", |m| {
        m["state"] == "ok"
    });
    assert_eq!(m["last_refs"], 1);
    assert_eq!(
        refs(&agent.repo_path("mirrors/app")),
        refs(&upstream.path("app"))
    );
}

/// What sits beside `repo` in its owner's directory besides repositories
/// (a clone's staging directory, a half-removed tree).
fn leftovers(repo: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(repo.parent().expect("an owner directory"))
        .expect("readable")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| !n.ends_with(".git"))
        .collect()
}

#[test]
fn a_failed_initial_clone_leaves_nothing_half_made_and_the_next_is_a_real_clone() {
    let agent = agent();
    let upstream = Upstream::daemon();
    stdout(&agent.cli(&["mirror", "add", &upstream.url("late"), "--interval", "1h"]));
    let failed = wait_for(&agent, "mirrors/late", "a failed clone", |m| {
        m["failures"] == 1
    });
    assert_eq!(failed["state"], "retrying");
    assert!(
        failed["last_error"]
            .as_str()
            .unwrap()
            .contains("repository not exported"),
        "git's own reason: {failed}"
    );
    // The repository stays what `mirror add` made: empty, served, no partial clone.
    let repo = agent.repo_path("mirrors/late");
    assert_eq!(refs(&repo), "");
    assert_eq!(leftovers(&repo), Vec::<String>::new());

    // What a crash in the middle of a clone leaves is cleared away.
    let stale = repo.with_extension("staging-01CRASHEDCLONE");
    std::fs::create_dir_all(stale.join("objects/pack")).unwrap();
    std::fs::write(stale.join("objects/pack/tmp_pack_x"), b"half a pack").unwrap();

    // Upstream's default branch is not main: a clone follows it.
    let work = work_repo(&[("a.txt", b"a")]);
    git(work.path(), &["branch", "develop"]);
    git(work.path(), &["tag", "v1"]);
    let bare = upstream.bare("late", Some(work.path()));
    git(&bare, &["symbolic-ref", "HEAD", "refs/heads/develop"]);
    stdout(&agent.cli(&["mirror", "sync", "mirrors/late", "--wait"]));
    let ok = mirror(&agent, "mirrors/late");
    assert_eq!(ok["state"], "ok", "{ok}");
    assert_eq!(ok["last_refs"], 3);
    assert_eq!(refs(&repo), refs(&bare));
    assert_eq!(
        git(&repo, &["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/develop"
    );
    assert_eq!(leftovers(&repo), Vec::<String>::new());
    // The upstream URL is kept in SQLite only, not in the repository's config.
    let config = std::fs::read_to_string(repo.join("config")).unwrap();
    assert!(!config.contains("remote"), "{config}");

    // Later syncs fetch into the clone.
    commit_file(work.path(), "b.txt", b"b");
    git(work.path(), &["push", "-q", bare.to_str().unwrap(), "main"]);
    let out = stdout(&agent.cli(&["mirror", "sync", "mirrors/late", "--wait"]));
    assert!(out.contains("1 refs changed"), "{out}");
    assert_eq!(refs(&repo), refs(&bare));
}

#[test]
fn push_mirror_forwards_pushes_with_a_credential_that_never_shows() {
    const TOKEN: &str = "s3cret-upstream-token-4242";
    let agent = agent();
    let upstream = Upstream::http(Some(&format!("robot:{TOKEN}")));
    upstream.bare("target", None);
    agent.create_repo("acme/app", false);
    let url = upstream.url("target");

    // Without a credential the upstream says 401, and the mirror says so.
    stdout(&agent.cli(&[
        "mirror",
        "push",
        "acme/app",
        &url,
        "--allow-http",
        "--branches",
        "main,release/*",
    ]));
    let work = work_repo(&[("a.txt", b"a")]);
    git(
        work.path(),
        &["push", "-q", &agent.git_url("acme/app"), "main"],
    );
    let failed = wait_for(&agent, "acme/app", "a refused forward", |m| {
        m["failures"] == 1
    });
    let host = format!("127.0.0.1:{}", upstream.port);
    let advice = format!(
        "{host} asks for credentials: run `hangar mirror credential set {host} --token-stdin`"
    );
    assert!(
        failed["last_error"].as_str().unwrap().contains(&advice),
        "{failed}"
    );

    let out = agent.cli_with_input(
        &[
            "mirror",
            "credential",
            "set",
            &host,
            "--token-stdin",
            "--username",
            "robot",
        ],
        TOKEN.as_bytes(),
    );
    assert!(stdout(&out).contains(&format!("Stored the token for {host}")));
    stdout(&agent.cli(&["mirror", "sync", "acme/app", "--wait"]));
    assert_eq!(
        git(&upstream.path("target"), &["rev-parse", "main"]),
        git(work.path(), &["rev-parse", "HEAD"])
    );

    // Each accepted push is forwarded; branches outside the patterns are not.
    commit_file(work.path(), "b.txt", b"b");
    git(
        work.path(),
        &[
            "push",
            "-q",
            &agent.git_url("acme/app"),
            "main",
            "main:release/1",
            "main:scratch",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while git_output(&upstream.path("target"), &["rev-parse", "release/1"])
        .status
        .code()
        != Some(0)
    {
        assert!(Instant::now() < deadline, "not forwarded: {}", agent.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        git(&upstream.path("target"), &["rev-parse", "main"]),
        git(work.path(), &["rev-parse", "HEAD"])
    );
    assert!(
        !git_output(
            &upstream.path("target"),
            &["rev-parse", "--verify", "-q", "scratch"]
        )
        .status
        .success()
    );
    let ok = wait_for(&agent, "acme/app", "ok", |m| m["state"] == "ok");
    assert!(ok["last_refs"].as_i64().unwrap() >= 1);

    // A pull mirror of the same host uses the credential too.
    stdout(&agent.cli(&[
        "mirror",
        "add",
        &url,
        "--as",
        "acme/copy",
        "--allow-http",
        "--wait",
    ]));
    assert_eq!(mirror(&agent, "acme/copy")["state"], "ok");

    // The token is nowhere to be seen: not in the API, the log, the database, the data dir.
    let listed = stdout(&agent.cli(&["mirror", "credential", "list"]));
    assert!(
        listed.contains(&host) && listed.contains("token"),
        "{listed}"
    );
    for path in [
        "/api/v1/mirrors",
        "/api/v1/mirror-credentials",
        "/api/v1/mirrors/acme/app",
        "/api/v1/repos/acme/app/events",
    ] {
        let (_, body) = agent.api("GET", path, None);
        assert!(!body.to_string().contains(TOKEN), "{path}: {body}");
    }
    for entry in walk(agent.data_dir()) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(TOKEN),
            "token in {}",
            entry.display()
        );
    }
    assert!(agent.log().contains("mirror synced"));

    stdout(&agent.cli(&["mirror", "credential", "remove", &host]));
    assert!(!stdout(&agent.cli(&["mirror", "credential", "list"])).contains(&host));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn hostile_mirror_urls_are_refused_and_create_nothing() {
    // No allow_local_mirrors here: loopback and LAN targets are refused.
    let agent = Agent::start();
    let cases: &[(&[&str], &str)] = &[
        (&["file:///etc"], "file: URLs"),
        (&["/srv/git/app.git"], "local paths"),
        (&["ext::sh -c touch% /tmp/pwned"], "spaces"),
        (&["ext::sh%20-c%20id"], "remote helpers"),
        (&["--", "-uhttps://example.com/a"], "start with `-`"),
        (&["ssh://-oProxyCommand=id/x"], "option"),
        (
            &["https://user:pw@example.com/a/b"],
            "mirror credential set example.com",
        ),
        (&["http://example.com/a/b"], "--allow-http"),
        (&["https://127.0.0.1/a/b"], "--allow-local-mirrors"),
        (&["git://[::1]/a"], "--allow-local-mirrors"),
        (&["https://localhost/a/b"], "local address"),
        (&["https://10.0.0.8/a/b"], "local address"),
        (&["https://169.254.169.254/latest"], "local address"),
        (&["http://192.168.1.1/a", "--allow-http"], "local address"),
        (
            &["https://example.com/a/b", "--as", "../etc"],
            "may not start with",
        ),
        (&["https://example.com/a/b", "--interval", "0"], "interval"),
    ];
    for (args, hint) in cases {
        let mut full = vec!["mirror", "add"];
        full.extend_from_slice(args);
        let err = stderr(&agent.cli(&full));
        assert!(err.contains(hint), "{args:?}: {err}");
    }
    let err = stderr(&agent.cli(&["mirror", "push", "acme/none", "https://127.0.0.1/x"]));
    assert!(err.contains("--allow-local-mirrors"), "{err}");
    agent.create_repo("acme/app", false);
    let err = stderr(&agent.cli(&[
        "mirror",
        "push",
        "acme/app",
        "https://example.com/x",
        "--branches=-x",
    ]));
    assert!(err.contains("branch pattern"), "{err}");

    assert!(stdout(&agent.cli(&["mirror", "list"])).contains("No mirrors yet"));
    let (_, repos) = agent.api("GET", "/api/v1/repos", None);
    assert_eq!(repos["items"].as_array().unwrap().len(), 1, "{repos}");
    let on_disk: Vec<_> = walk(&agent.data_dir().join("repos"))
        .into_iter()
        .filter(|p| !p.starts_with(agent.repo_path("acme/app")))
        .collect();
    assert!(on_disk.is_empty(), "{on_disk:?}");
    let err = stderr(&agent.cli(&["mirror", "credential", "set", "bad/host", "--token-stdin"]));
    assert!(err.contains("not a host name"), "{err}");
}

// Starred and organization sync. GitHub and GitLab cannot be reached from
// here: their APIs are played by the stand-in (tests/src/forge_standin.rs);
// the listed repositories' git side is a real `git http-backend` upstream.

const FORGE_TOKEN: &str = "ghp_standin_token";
const HOOK_SECRET: &str = "sync webhook secret";

/// Adds a forge account on the stand-in (`github` or `gitlab`).
fn add_forge(agent: &Agent, standin: &ForgeStandin, provider: &str) {
    let url = if provider == "github" {
        standin.github_url()
    } else {
        standin.gitlab_url()
    };
    let (status, forge) = agent.api(
        "POST",
        "/api/v1/forges",
        Some(
            json!({ "provider": provider, "url": url, "token": FORGE_TOKEN,
                     "webhook_secret": HOOK_SECRET, "allow_http": true }),
        ),
    );
    assert_eq!(status, 201, "{forge}");
}

/// Bare repositories `names` on `upstream`, each known to the stand-in.
fn upstream_repos(upstream: &Upstream, standin: &ForgeStandin, names: &[&str]) {
    for name in names {
        let work = work_repo(&[("README.md", name.as_bytes())]);
        upstream.bare(name, Some(work.path()));
        standin.add_repo(name, &upstream.url(name));
    }
}

fn source(agent: &Agent, id: &str) -> Value {
    let (status, body) = agent.api("GET", &format!("/api/v1/mirror-sources/{id}"), None);
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn starred_sync_mirrors_polls_with_etags_and_archives_what_leaves() {
    let agent = agent();
    let upstream = Upstream::http(None);
    let standin = ForgeStandin::start(FORGE_TOKEN);
    upstream_repos(&upstream, &standin, &["octo/a", "octo/b"]);
    standin.set_starred("mona", &["octo/a", "octo/b"]);
    add_forge(&agent, &standin, "github");

    let first: Value = serde_json::from_str(&stdout(&agent.cli(&[
        "mirror",
        "sync-starred",
        "github:mona",
        "--interval",
        "1h",
        "--wait",
        "--json",
    ])))
    .unwrap();
    assert_eq!(first["repo_count"], 2, "{first}");
    assert_eq!(first["spec"], "github:mona");
    assert!(first["last_error"].is_null(), "{first}");
    let id = first["id"].as_str().unwrap().to_owned();
    for name in ["octo/a", "octo/b"] {
        let m = wait_for(&agent, name, "the first clone", |m| m["state"] == "ok");
        assert_eq!(m["kind"], "pull");
        assert_eq!(m["url"], upstream.url(name));
        assert_eq!(refs(&agent.repo_path(name)), refs(&upstream.path(name)));
    }
    let err = stderr(&agent.cli(&["mirror", "sync-starred", "github:mona"]));
    assert!(err.contains("already synced"), "{err}");

    // Nothing changed: the stand-in hears the ETag and answers 304; nothing is created.
    let etag = standin.list_requests()[0].clone();
    assert_eq!((etag.status, etag.if_none_match), (200, None));
    let out = stdout(&agent.cli(&["mirror", "sources", "poll", &id, "--wait"]));
    assert!(out.contains("github:mona"), "{out}");
    let requests = standin.list_requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests[1].if_none_match.is_some(), "{requests:?}");
    assert_eq!(requests[1].status, 304);
    let polled = source(&agent, &id);
    assert_eq!(
        (polled["unchanged"].clone(), polled["repo_count"].clone()),
        (json!(1), json!(2))
    );
    let (_, all) = agent.api("GET", "/api/v1/mirrors", None);
    assert_eq!(all["items"].as_array().unwrap().len(), 2, "{all}");

    // A repository leaves the list: its mirror is archived, the repository stays.
    standin.set_starred("mona", &["octo/a"]);
    stdout(&agent.cli(&["mirror", "sources", "poll", &id, "--wait"]));
    assert_eq!(standin.list_requests().last().unwrap().status, 200);
    assert_eq!(mirror(&agent, "octo/b")["state"], "archived");
    assert_eq!(mirror(&agent, "octo/a")["state"], "ok");
    let scratch = tempfile::tempdir().unwrap();
    git(
        scratch.path(),
        &["clone", "-q", &agent.git_url("octo/b"), "b"],
    );
    let table = stdout(&agent.cli(&["mirror", "list"]));
    assert!(table.contains("archived"), "{table}");
    let sources: Value =
        serde_json::from_str(&stdout(&agent.cli(&["mirror", "sources", "--json"]))).unwrap();
    assert_eq!(sources[0]["repo_count"], 1, "{sources}");
    assert!(stdout(&agent.cli(&["mirror", "sources"])).contains("github:mona"));

    // It comes back: the archived mirror syncs again.
    standin.set_starred("mona", &["octo/a", "octo/b"]);
    stdout(&agent.cli(&["mirror", "sources", "poll", &id, "--wait"]));
    wait_for(&agent, "octo/b", "the mirror to resume", |m| {
        m["state"] == "ok"
    });

    // A push webhook for a synced repository fetches it at once (its
    // interval is an hour).
    let work = tempfile::tempdir().unwrap();
    git(
        work.path(),
        &[
            "clone",
            "-q",
            upstream.path("octo/a").to_str().unwrap(),
            "w",
        ],
    );
    let w = work.path().join("w");
    commit_file(&w, "new.txt", b"new");
    git(&w, &["push", "-q", "origin", "HEAD:main"]);
    let after = git(&w, &["rev-parse", "HEAD"]).trim().to_owned();
    let body = forge_standin::github_push("octo/a", "refs/heads/main", &after, &after);
    let (status, answer) = agent.deliver(
        "github",
        &forge_standin::github_delivery("push", "d-starred", HOOK_SECRET, &body),
    );
    assert_eq!(status, 202, "{answer}");
    wait_for(&agent, "octo/a", "the webhook's fetch", |_| {
        refs(&agent.repo_path("octo/a")) == refs(&upstream.path("octo/a"))
    });

    // Removing the source keeps its mirrors.
    stdout(&agent.cli(&["mirror", "sources", "remove", &id]));
    assert!(stdout(&agent.cli(&["mirror", "sources"])).contains("No sync sources"));
    assert_eq!(mirror(&agent, "octo/a")["state"], "ok");
}

#[test]
fn own_stars_with_delete_missing_delete_only_the_mirrors_the_source_made() {
    let agent = agent();
    let upstream = Upstream::http(None);
    let standin = ForgeStandin::start(FORGE_TOKEN);
    upstream_repos(
        &upstream,
        &standin,
        &["octo/made", "octo/mine", "octo/kept"],
    );
    add_forge(&agent, &standin, "github");
    // Mirrored by hand before the source lists it: adopted, never deleted.
    stdout(&agent.cli(&[
        "mirror",
        "add",
        &upstream.url("octo/mine"),
        "--as",
        "octo/mine",
        "--allow-http",
        "--wait",
    ]));
    standin.set_own_starred(&["octo/made", "octo/mine", "octo/kept"]);

    let first: Value = serde_json::from_str(&stdout(&agent.cli(&[
        "mirror",
        "sync-starred",
        "github:@me",
        "--delete-missing",
        "--interval",
        "1h",
        "--wait",
        "--json",
    ])))
    .unwrap();
    assert_eq!(first["spec"], "github:@me", "{first}");
    assert_eq!(first["delete_missing"], true);
    assert_eq!(first["repo_count"], 3);
    assert!(first["last_error"].is_null(), "{first}");
    let id = first["id"].as_str().unwrap().to_owned();
    let asked = standin.list_requests()[0].path.clone();
    assert!(asked.starts_with("/user/starred?"), "{asked}");
    for name in ["octo/made", "octo/mine", "octo/kept"] {
        wait_for(&agent, name, "the first clone", |m| m["state"] == "ok");
    }
    let table = stdout(&agent.cli(&["mirror", "sources"]));
    assert!(
        table.contains("WHEN GONE") && table.contains("github:@me") && table.contains("delete"),
        "{table}"
    );
    let (_, listed) = agent.api("GET", "/api/v1/mirror-sources", None);
    assert_eq!(listed["items"][0]["delete_missing"], true, "{listed}");

    // Two leave the list: the mirror the source made is deleted, repository
    // and all; the adopted one is only archived.
    standin.set_own_starred(&["octo/kept"]);
    let polled = stdout(&agent.cli(&["mirror", "sources", "poll", &id, "--wait"]));
    assert!(polled.contains("delete the mirrors it made"), "{polled}");
    let (status, _) = agent.api("GET", "/api/v1/repos/octo/made", None);
    assert_eq!(status, 404);
    assert!(!agent.repo_path("octo/made").exists());
    assert_eq!(mirror(&agent, "octo/mine")["state"], "archived");
    assert_eq!(
        refs(&agent.repo_path("octo/mine")),
        refs(&upstream.path("octo/mine"))
    );
    assert_eq!(mirror(&agent, "octo/kept")["state"], "ok");
    assert!(agent.log().contains("mirror deleted"));

    // Starred again: mirrored afresh.
    standin.set_own_starred(&["octo/made", "octo/kept"]);
    stdout(&agent.cli(&["mirror", "sources", "poll", &id, "--wait"]));
    wait_for(&agent, "octo/made", "the new mirror", |m| {
        m["state"] == "ok"
    });
    assert_eq!(
        refs(&agent.repo_path("octo/made")),
        refs(&upstream.path("octo/made"))
    );

    // `@me` names the token's own stars; it is nobody's organization.
    let err = stderr(&agent.cli(&["mirror", "sync-org", "github:@me"]));
    assert!(err.contains("expected github:ORG"), "{err}");
}

#[test]
fn org_and_group_sync_follow_pagination() {
    let agent = agent();
    let upstream = Upstream::http(None);
    let standin = ForgeStandin::start(FORGE_TOKEN);
    upstream_repos(&upstream, &standin, &["acme/one", "acme/two", "acme/three"]);
    upstream_repos(
        &upstream,
        &standin,
        &["grp/sub/four", "grp/five", "grp/six"],
    );
    standin.set_org("acme", &["acme/one", "acme/two", "acme/three"]);
    standin.set_group("grp", &["grp/sub/four", "grp/five", "grp/six"]);
    standin.set_page_size(2);
    add_forge(&agent, &standin, "github");
    add_forge(&agent, &standin, "gitlab");

    let org: Value = serde_json::from_str(&stdout(&agent.cli(&[
        "mirror",
        "sync-org",
        "github:acme",
        "--wait",
        "--json",
    ])))
    .unwrap();
    assert_eq!(org["repo_count"], 3, "{org}");
    let group: Value = serde_json::from_str(&stdout(&agent.cli(&[
        "mirror",
        "sync-org",
        "gitlab:grp",
        "--wait",
        "--json",
    ])))
    .unwrap();
    assert_eq!(group["repo_count"], 3, "{group}");
    let paths: Vec<String> = standin
        .list_requests()
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("/orgs/acme/repos?") && p.ends_with("&page=2")),
        "{paths:?}"
    );
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("/gitlab/api/v4/groups/grp/projects?") && p.ends_with("&page=2")),
        "{paths:?}"
    );
    for (local, remote) in [
        ("acme/one", "acme/one"),
        ("acme/two", "acme/two"),
        ("acme/three", "acme/three"),
        ("sub/four", "grp/sub/four"),
        ("grp/five", "grp/five"),
        ("grp/six", "grp/six"),
    ] {
        wait_for(&agent, local, "the first clone", |m| m["state"] == "ok");
        assert_eq!(refs(&agent.repo_path(local)), refs(&upstream.path(remote)));
    }

    // A bad name says what is expected and creates nothing.
    let err = stderr(&agent.cli(&["mirror", "sync-org", "github:a/b"]));
    assert!(err.contains("github:ORG"), "{err}");
    let (_, sources) = agent.api("GET", "/api/v1/mirror-sources", None);
    assert_eq!(sources["items"].as_array().unwrap().len(), 2, "{sources}");
}

#[test]
fn a_push_webhook_fetches_a_plain_pull_mirror_at_once() {
    let agent = agent();
    let upstream = Upstream::http(None);
    let standin = ForgeStandin::start(FORGE_TOKEN);
    add_forge(&agent, &standin, "github");
    let work = work_repo(&[("a.txt", b"a")]);
    upstream.bare("octo/plain", Some(work.path()));
    stdout(&agent.cli(&[
        "mirror",
        "add",
        &upstream.url("octo/plain"),
        "--as",
        "acme/plain",
        "--interval",
        "1h",
        "--allow-http",
        "--wait",
    ]));
    commit_file(work.path(), "b.txt", b"b");
    git(
        work.path(),
        &[
            "push",
            "-q",
            upstream.path("octo/plain").to_str().unwrap(),
            "main",
        ],
    );
    let after = git(work.path(), &["rev-parse", "HEAD"]).trim().to_owned();
    // Matched by the clone URL the payload names (the local name differs).
    let mut body = forge_standin::github_push("octo/plain", "refs/heads/main", &after, &after);
    body["repository"]["clone_url"] = upstream.url("octo/plain").into();
    let (status, _) = agent.deliver(
        "github",
        &forge_standin::github_delivery("push", "d-plain", HOOK_SECRET, &body),
    );
    assert_eq!(status, 202);
    wait_for(&agent, "acme/plain", "the webhook's fetch", |_| {
        refs(&agent.repo_path("acme/plain")) == refs(&upstream.path("octo/plain"))
    });
    let (_, deliveries) = agent.api("GET", "/api/v1/deliveries", None);
    let result = deliveries["items"][0]["result"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(result.contains("acme/plain"), "{deliveries}");
}
