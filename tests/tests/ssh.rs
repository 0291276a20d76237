//! Git over SSH against a real agent with the real OpenSSH client and git.

use std::path::Path;

use hangar_tests::{Agent, SshClient, commit_file, git, work_repo};

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// An agent with `acme/app` holding one commit, and the admin's SSH client.
fn agent_with_repo() -> (Agent, SshClient) {
    let agent = Agent::start();
    agent.create_repo("acme/app", false);
    let ssh = agent.ssh_client(&agent.token);
    let work = work_repo(&[("README.md", b"hello\n")]);
    ssh.git(
        work.path(),
        &["push", "-q", &agent.ssh_url("acme/app"), "main"],
    );
    (agent, ssh)
}

#[test]
fn clone_push_fetch_over_v2_and_v0_and_archive() {
    let agent = Agent::start();
    agent.create_repo("acme/app", false);
    let ssh = agent.ssh_client(&agent.token);
    let scratch = tempfile::tempdir().unwrap();

    ssh.git(
        scratch.path(),
        &["clone", "-q", &agent.ssh_url("acme/app"), "empty"],
    );
    let work = scratch.path().join("empty");
    commit_file(&work, "README.md", b"hello\n");
    ssh.git(&work, &["push", "-q", "origin", "main"]);

    // Both URL forms; the scp-like one takes its port from the ssh command.
    let urls = [
        ("2", agent.ssh_url("acme/app")),
        ("0", "git@127.0.0.1:acme/app".to_owned()),
    ];
    for (version, url) in urls {
        let name = format!("v{version}");
        let protocol = format!("protocol.version={version}");
        ssh.git(
            scratch.path(),
            &["-c", &protocol, "clone", "-q", &url, &name],
        );
        let cloned = scratch.path().join(&name);
        assert_eq!(std::fs::read(cloned.join("README.md")).unwrap(), b"hello\n");

        commit_file(&work, &format!("from-{version}.txt"), version.as_bytes());
        ssh.git(&work, &["push", "-q", "origin", "main"]);
        ssh.git(&cloned, &["-c", &protocol, "fetch", "-q", "origin"]);
        assert_eq!(
            git(&cloned, &["rev-parse", "origin/main"]),
            git(&work, &["rev-parse", "HEAD"])
        );
    }
    git(&agent.repo_path("acme/app"), &["fsck", "--no-progress"]);

    // Each accepted push was recorded, as over HTTP.
    let (_, events) = agent.api("GET", "/api/v1/repos/acme/app/events", None);
    let events = events["items"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(
        events[0]["payload"]["updates"][0]["new"].as_str().unwrap(),
        git(&work, &["rev-parse", "HEAD"])
    );

    // git archive --remote runs git-upload-archive.
    let tar = scratch.path().join("app.tar");
    ssh.git(
        scratch.path(),
        &[
            "archive",
            "--remote",
            &agent.ssh_url("acme/app"),
            "-o",
            tar.to_str().unwrap(),
            "main",
            "README.md",
        ],
    );
    let listing = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tar)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&listing.stdout).trim(), "README.md");
}

#[test]
fn unknown_key_no_key_and_passwords_are_denied() {
    let (agent, _) = agent_with_repo();
    let scratch = tempfile::tempdir().unwrap();
    let stranger = SshClient::new(agent.ssh_port);
    let out = stranger.git_output(scratch.path(), &["clone", &agent.ssh_url("acme/app"), "x"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("Permission denied (publickey)"),
        "{}",
        text(&out)
    );

    for extra in [
        ["-o", "PubkeyAuthentication=no"],
        [
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
        ],
    ] {
        let out = stranger.run(&extra, &["git-upload-pack 'acme/app.git'"], b"");
        assert_eq!(out.status.code(), Some(255), "{}", text(&out));
        assert!(
            text(&out).contains("Permission denied (publickey)"),
            "{}",
            text(&out)
        );
    }
    assert!(!scratch.path().join("x").exists());
}

#[test]
fn a_readers_push_is_denied_and_changes_nothing() {
    let (agent, _) = agent_with_repo();
    let reader_token = agent.create_user("rita", "reader");
    let reader = agent.ssh_client(&reader_token);
    let scratch = tempfile::tempdir().unwrap();
    reader.git(
        scratch.path(),
        &["clone", "-q", &agent.ssh_url("acme/app"), "w"],
    );
    let work = scratch.path().join("w");
    let before = git(&work, &["rev-parse", "HEAD"]);
    commit_file(&work, "evil.txt", b"x");
    let out = reader.git_output(&work, &["push", "origin", "main"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("read-only"), "{}", text(&out));
    assert_eq!(
        git(&agent.repo_path("acme/app"), &["rev-parse", "main"]),
        before
    );
}

#[test]
fn bare_ssh_gets_a_greeting_and_no_shell() {
    let (_agent, ssh) = agent_with_repo();
    let out = ssh.run(&[], &[], b"echo pwned\n");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("Hi admin! You've authenticated, but Hangar does not provide shell access."),
        "{said}"
    );
    assert!(!said.contains("pwned"), "{said}");

    // A terminal is refused (a forced one makes ssh give up).
    let out = ssh.run(&["-tt"], &[], b"");
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("PTY allocation request failed"),
        "{}",
        text(&out)
    );
}

#[test]
fn forwarding_subsystems_and_other_env_are_refused() {
    let (_agent, ssh) = agent_with_repo();
    // Port forwarding, both ways.
    let out = ssh.run(&["-W", "127.0.0.1:22"], &[], b"");
    assert_eq!(out.status.code(), Some(255), "{}", text(&out));
    assert!(text(&out).contains("forwarding failed"), "{}", text(&out));
    let out = ssh.run(
        &[
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-R",
            "0:127.0.0.1:22",
        ],
        &[],
        b"",
    );
    assert_eq!(out.status.code(), Some(255), "{}", text(&out));
    assert!(text(&out).contains("forwarding failed"), "{}", text(&out));
    // Subsystems (sftp).
    let out = ssh.run(&["-s"], &["sftp"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("subsystem sftp is not available"),
        "{}",
        text(&out)
    );
    // Any variable but GIT_PROTOCOL fails the command before git runs.
    let out = ssh.run(
        &["-o", "SetEnv=GIT_DIR=/etc"],
        &["git-upload-pack 'acme/app.git'"],
        b"",
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("GIT_DIR is not accepted"),
        "{}",
        text(&out)
    );
    // Agent forwarding and X11 requests are declined; the command still runs.
    let out = ssh.run(
        &["-A", "-X", "-o", "SetEnv=LANG=C"],
        &["git-upload-pack 'acme/app.git'"],
        b"0000",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("refs/heads/main"));
}

#[test]
fn command_injection_is_refused_before_anything_runs() {
    let (agent, ssh) = agent_with_repo();
    let marker = tempfile::tempdir().unwrap();
    let touched = marker.path().join("x");
    let t = touched.display().to_string();
    let repos_before = list_tree(&agent.data_dir().join("repos"));
    let attempts = [
        format!("git-upload-pack 'acme/app.git'; touch {t}"),
        format!("git-upload-pack 'acme/app.git' && touch {t}"),
        format!("git-upload-pack 'acme/app.git' | touch {t}"),
        format!("git-upload-pack `touch {t}`"),
        format!("git-upload-pack 'acme/`touch {t}`.git'"),
        format!("git-upload-pack $(touch {t})"),
        format!("git-upload-pack 'acme/$(touch {t}).git'"),
        format!("git-upload-pack --upload-pack='touch {t}' 'acme/app.git'"),
        format!("git-upload-pack '--upload-pack=touch {t}'"),
        "git-upload-pack '-acme/app.git'".to_owned(),
        "git-upload-pack 'acme/--help'".to_owned(),
        "git-upload-pack '../../../etc/passwd'".to_owned(),
        "git-upload-pack 'acme/../../../../tmp/evil.git'".to_owned(),
        "git-receive-pack '/acme/../evil.git'".to_owned(),
        "git-upload-pack 'acme/app.git".to_owned(),
        "git-upload-pack acme/app.git'".to_owned(),
        format!("git-upload-pack 'acme/app.git'\ntouch {t}"),
        format!("touch {t}"),
        format!("sh -c 'touch {t}'"),
        "git-upload-pack 'acme/new.git'".to_owned(),
    ];
    for attempt in &attempts {
        let out = ssh.run(&[], &[attempt], b"");
        assert_ne!(out.status.code(), Some(0), "{attempt:?}: {}", text(&out));
        assert!(
            text(&out).contains("hangar:"),
            "{attempt:?}: {}",
            text(&out)
        );
    }
    // A NUL cannot even be sent by ssh's command line; the parser's unit tests cover it.
    assert!(!touched.exists(), "a command ran");
    assert_eq!(list_tree(&agent.data_dir().join("repos")), repos_before);
    assert!(!Path::new("/tmp/evil.git").exists());
}

/// Owners and repositories under `repos/` (not their insides, which
/// background maintenance may be repacking).
fn list_tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for owner in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        out.push(owner.path().display().to_string());
        for repo in std::fs::read_dir(owner.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push(repo.path().display().to_string());
        }
    }
    out.sort();
    out
}

#[test]
fn a_truncated_push_changes_nothing() {
    let (agent, ssh) = agent_with_repo();
    let before = git(&agent.repo_path("acme/app"), &["rev-parse", "main"]);
    let zero = "0".repeat(40);
    let line = format!("{zero} {before} refs/heads/evil\0report-status\n");
    let mut input = format!("{:04x}{line}0000", line.len() + 4).into_bytes();
    // The pack's header and then nothing: the client went away mid-pack.
    input.extend_from_slice(b"PACK\0\0\0\x02\0\0\0\x05garbage");
    let out = ssh.run(&[], &["git-receive-pack 'acme/app.git'"], &input);
    // git reports the failure in its protocol (`ng`), as it would to a real client.
    assert!(text(&out).contains("ng refs/heads/evil"), "{}", text(&out));
    let refs = git(&agent.repo_path("acme/app"), &["for-each-ref"]);
    assert!(!refs.contains("evil"), "{refs}");
    let (_, events) = agent.api("GET", "/api/v1/repos/acme/app/events", None);
    assert_eq!(events["items"].as_array().unwrap().len(), 1);
}

#[test]
fn twenty_concurrent_clones_are_complete() {
    let (agent, ssh) = agent_with_repo();
    let scratch = tempfile::tempdir().unwrap();
    let url = agent.ssh_url("acme/app");
    std::thread::scope(|s| {
        let clones: Vec<_> = (0..20)
            .map(|i| {
                let (ssh, url, dir) = (&ssh, &url, scratch.path());
                s.spawn(move || {
                    let name = format!("c{i}");
                    ssh.git(dir, &["clone", "-q", url, &name]);
                    git(&dir.join(&name), &["fsck", "--no-progress"]);
                })
            })
            .collect();
        for clone in clones {
            clone.join().expect("clone thread");
        }
    });
}

#[test]
fn keys_through_the_cli_and_api() {
    let agent = Agent::start();
    let client = SshClient::new(agent.ssh_port);
    let key_file = client.key().with_extension("pub");
    let out = agent.cli(&["key", "add", key_file.to_str().unwrap(), "--name", "laptop"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("SHA256:"), "{}", text(&out));

    let out = agent.cli(&["key", "list", "--json"]);
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(keys[0]["name"], "laptop");
    let id = keys[0]["id"].as_str().unwrap().to_owned();

    // The same key twice, and keys that are not keys, are refused clearly.
    let out = agent.cli(&["key", "add", key_file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("already added"), "{}", text(&out));
    let (status, body) = agent.api(
        "POST",
        "/api/v1/keys",
        Some(serde_json::json!({ "key": "ssh-ed25519 AAAAnotbase64!" })),
    );
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not an OpenSSH public key")
    );
    let (status, body) = agent.api(
        "POST",
        "/api/v1/keys",
        Some(serde_json::json!({ "key": std::fs::read_to_string(client.key()).unwrap() })),
    );
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("PRIVATE")
    );

    // Another user cannot remove it; its owner can, and then it stops working.
    let member = agent.create_user("mo", "member");
    let (status, _) = agent.api_as(Some(&member), "DELETE", &format!("/api/v1/keys/{id}"), None);
    assert_eq!(status, 404);
    let (status, all) = agent.api("GET", "/api/v1/keys?all=true", None);
    assert_eq!((status, all["items"].as_array().unwrap().len()), (200, 1));
    let out = client.run(&[], &[], b"");
    assert!(text(&out).contains("Hi admin!"), "{}", text(&out));
    let out = agent.cli(&["key", "remove", &id]);
    assert!(out.status.success(), "{}", text(&out));
    let out = client.run(&[], &[], b"");
    assert!(text(&out).contains("Permission denied"), "{}", text(&out));
}

#[test]
fn restart_keeps_the_host_key() {
    let (mut agent, ssh) = agent_with_repo();
    let key_file = agent.data_dir().join("ssh_host_ed25519_key");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let (_, status) = agent.api("GET", "/api/v1/status", None);
    let fingerprint = status["ssh_host_key_fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    // What `ssh-keygen -l` says about the key file is what the API shows.
    let out = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&key_file)
        .output()
        .unwrap();
    assert!(
        text(&out).contains(&fingerprint),
        "{} vs {fingerprint}",
        text(&out)
    );
    let out = agent.cli(&["status"]);
    assert!(text(&out).contains(&fingerprint), "{}", text(&out));

    agent.restart();
    let (_, status) = agent.api("GET", "/api/v1/status", None);
    assert_eq!(status["ssh_host_key_fingerprint"], fingerprint.as_str());
    // The client's known_hosts entry (kept by alias, as the port changed)
    // still matches under strict checking.
    let ssh = SshClient {
        port: agent.ssh_port,
        ..ssh
    };
    assert!(ssh.command_line().contains("StrictHostKeyChecking=yes"));
    let scratch = tempfile::tempdir().unwrap();
    ssh.git(
        scratch.path(),
        &["clone", "-q", &agent.ssh_url("acme/app"), "again"],
    );
}
