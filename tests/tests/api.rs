//! The REST API: repos, refs, commits, tokens, users, errors, OpenAPI.

use hangar_tests::{Agent, commit_file, git, work_repo};
use serde_json::json;

#[test]
fn repos_crud_and_pagination() {
    let agent = Agent::start();
    for i in 0..5 {
        agent.create_repo(&format!("acme/r{i}"), i % 2 == 0);
    }
    let (status, body) = agent.api("POST", "/api/v1/repos", Some(json!({ "name": "acme/r1" })));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("conflict"))
    );

    let (_, page) = agent.api("GET", "/api/v1/repos?limit=2", None);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["next"], "acme/r1");
    let (_, page2) = agent.api("GET", "/api/v1/repos?limit=2&after=acme/r1", None);
    assert_eq!(page2["items"][0]["full_name"], "acme/r2");

    // Anonymous callers see public repos only; private ones are 404 like missing ones.
    let (_, anon) = agent.api_as(None, "GET", "/api/v1/repos?limit=100", None);
    let names: Vec<_> = anon["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["full_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme/r0", "acme/r2", "acme/r4"]);
    let (private, a) = agent.api_as(None, "GET", "/api/v1/repos/acme/r1", None);
    let (missing, b) = agent.api_as(None, "GET", "/api/v1/repos/acme/nope", None);
    assert_eq!((private, missing), (404, 404));
    assert_eq!(a["error"]["code"], b["error"]["code"]);

    let (status, _) = agent.api("DELETE", "/api/v1/repos/acme/r3", None);
    assert_eq!(status, 204);
    assert!(!agent.repo_path("acme/r3").exists());
    let (status, _) = agent.api("GET", "/api/v1/repos/acme/r3", None);
    assert_eq!(status, 404);
}

#[test]
fn branches_tags_and_commits_are_read_from_the_repository() {
    let agent = Agent::start();
    agent.create_repo("acme/app", false);
    let (_, empty) = agent.api("GET", "/api/v1/repos/acme/app/commits", None);
    assert_eq!(empty["items"], json!([]));

    let work = work_repo(&[]);
    for i in 0..45 {
        commit_file(work.path(), &format!("f{i}.txt"), i.to_string().as_bytes());
    }
    git(work.path(), &["tag", "v1.0"]);
    git(work.path(), &["branch", "feature"]);
    git(
        work.path(),
        &[
            "push",
            "-q",
            &agent.git_url("acme/app"),
            "main",
            "feature",
            "v1.0",
        ],
    );

    let (_, branches) = agent.api("GET", "/api/v1/repos/acme/app/branches", None);
    let names: Vec<_> = branches["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["feature", "main"]);
    assert_eq!(branches["items"][1]["commit"]["summary"], "add f44.txt");
    let (_, tags) = agent.api("GET", "/api/v1/repos/acme/app/tags", None);
    assert_eq!(tags["items"][0]["name"], "v1.0");

    let (_, page1) = agent.api(
        "GET",
        "/api/v1/repos/acme/app/commits?ref=main&limit=30",
        None,
    );
    assert_eq!(page1["items"].as_array().unwrap().len(), 30);
    assert_eq!(page1["items"][0]["summary"], "add f44.txt");
    assert_eq!(page1["items"][0]["author"], "Test");
    let (_, page2) = agent.api(
        "GET",
        "/api/v1/repos/acme/app/commits?ref=main&limit=30&offset=30",
        None,
    );
    assert_eq!(page2["items"].as_array().unwrap().len(), 15);
    assert_eq!(page2["next_offset"], json!(null));

    let (status, body) = agent.api("GET", "/api/v1/repos/acme/app/commits?ref=nope", None);
    assert_eq!(status, 404, "{body}");
    let (status, _) = agent.api("GET", "/api/v1/repos/acme/app/commits?ref=--all", None);
    assert_eq!(status, 400);
}

#[test]
fn tokens_and_users() {
    let agent = Agent::start();
    let (status, created) = agent.api("POST", "/api/v1/tokens", Some(json!({ "name": "ci" })));
    assert_eq!(status, 201);
    let secret = created["token"].as_str().unwrap().to_owned();
    let (status, _) = agent.api_as(Some(&secret), "GET", "/api/v1/status", None);
    assert_eq!(status, 200);

    let (_, list) = agent.api("GET", "/api/v1/tokens", None);
    let text = list.to_string();
    assert!(
        text.contains("\"ci\"") && !text.contains(&secret),
        "secrets are never listed"
    );

    let id = created["id"].as_str().unwrap();
    let (status, _) = agent.api("DELETE", &format!("/api/v1/tokens/{id}"), None);
    assert_eq!(status, 204);
    let (status, body) = agent.api_as(Some(&secret), "GET", "/api/v1/status", None);
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );

    // Members cannot manage users; admins can.
    let member = agent.create_user("mia", "member");
    let (status, _) = agent.api_as(
        Some(&member),
        "POST",
        "/api/v1/users",
        Some(json!({ "name": "x" })),
    );
    assert_eq!(status, 403);
    let (status, body) = agent.api("POST", "/api/v1/users", Some(json!({ "name": "mia" })));
    assert_eq!(status, 409, "{body}");
    let (status, _) = agent.api("POST", "/api/v1/users", Some(json!({ "name": "../x" })));
    assert_eq!(status, 400);
    let (_, users) = agent.api("GET", "/api/v1/users", None);
    assert_eq!(users["items"].as_array().unwrap().len(), 2);
}

#[test]
fn errors_are_json_with_the_right_status() {
    let agent = Agent::start();
    let (status, body) = agent.api_as(None, "GET", "/api/v1/status", None);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, body) = agent.api("GET", "/api/v1/nothing-here", None);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, body) = agent.api("POST", "/api/v1/repos", Some(json!({ "nam": "acme/x" })));
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("nam"));
    let (status, _) = agent.api("DELETE", "/api/v1/tokens/not-an-id", None);
    assert_eq!(status, 400);

    let response = reqwest::blocking::get(format!("{}/healthz", agent.url)).unwrap();
    assert_eq!(response.status(), 200);
}

#[test]
fn openapi_document_lists_every_route() {
    let agent = Agent::start();
    let (status, doc) = agent.api_as(None, "GET", "/api/v1/openapi.json", None);
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/v1/repos",
        "/api/v1/repos/{owner}/{name}/commits",
        "/api/v1/tokens/{id}",
        "/api/v1/users",
        "/api/v1/status",
        "/api/v1/tunnel/key",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
}
