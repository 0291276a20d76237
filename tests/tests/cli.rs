//! The `hangar` CLI as a user runs it, against a real agent.

use hangar_tests::Agent;

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn repo_token_and_status_commands() {
    let agent = Agent::start();
    let created = stdout(&agent.cli(&["repo", "create", "acme/app", "--public"]));
    assert!(created.contains("Created acme/app (public)"), "{created}");
    assert!(created.contains(&format!("{}/acme/app.git", agent.url)));

    let table = stdout(&agent.cli(&["repo", "list"]));
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("acme/app") && table.contains("public"));
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&agent.cli(&["repo", "list", "--json"]))).unwrap();
    assert_eq!(json[0]["full_name"], "acme/app");

    let shown = stdout(&agent.cli(&["repo", "show", "acme/app"]));
    assert!(shown.contains("No branches yet"), "{shown}");

    let token: serde_json::Value = serde_json::from_str(&stdout(
        &agent.cli(&["token", "create", "laptop", "--json"]),
    ))
    .unwrap();
    assert!(token["token"].as_str().unwrap().starts_with("hgr_"));
    let tokens = stdout(&agent.cli(&["token", "list"]));
    assert!(
        tokens.contains("laptop") && tokens.contains("active"),
        "{tokens}"
    );
    stdout(&agent.cli(&["token", "revoke", token["id"].as_str().unwrap()]));
    assert!(stdout(&agent.cli(&["token", "list"])).contains("revoked"));

    let status: serde_json::Value =
        serde_json::from_str(&stdout(&agent.cli(&["status", "--json"]))).unwrap();
    assert_eq!(status["repos"], 1);
    assert!(stdout(&agent.cli(&["status"])).contains(&agent.url));

    stdout(&agent.cli(&["repo", "delete", "acme/app"]));
    assert!(stdout(&agent.cli(&["repo", "list"])).contains("No repositories yet"));
}

#[test]
fn errors_name_the_fix() {
    let agent = Agent::start();
    for (name, hint) in [("acme", "OWNER/NAME"), ("../etc", "may not start with `.`")] {
        let out = agent.cli(&["repo", "create", name]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(hint), "{err}");
    }

    let empty = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(hangar_tests::hangar_bin())
        .args(["--data-dir"])
        .arg(empty.path())
        .args(["repo", "list"])
        .env_remove("HANGAR_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hangar serve"), "{err}");

    let out = agent.cli(&["--url", "http://127.0.0.1:1", "status"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the agent"));
}
