//! The OpenAPI 3.1 description of `/api/v1`, served at `/api/v1/openapi.json`.

use serde_json::{Value, json};

fn op(summary: &str, tag: &str) -> Value {
    json!({ "summary": summary, "tags": [tag], "responses": {
        "200": { "description": "OK" },
        "default": { "description": "Error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
    }})
}

fn with_body(mut value: Value, schema: &str, created: bool) -> Value {
    value["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } });
    if created {
        value["responses"]["201"] = json!({ "description": "Created" });
    }
    value
}

fn params(mut value: Value, names: &[(&str, &str)]) -> Value {
    value["parameters"] = names
        .iter()
        .map(|(name, place)| json!({ "name": name, "in": place, "required": *place == "path", "schema": { "type": if name.ends_with("limit") || name.ends_with("offset") { "integer" } else { "string" } } }))
        .collect();
    value
}

pub fn document() -> Value {
    let mut doc = core_document();
    builds(&mut doc);
    mirrors(&mut doc);
    forges(&mut doc);
    doc
}

/// Builds, their logs and artifacts, and the `actions/cache` entries.
fn builds(doc: &mut Value) {
    let id = [("id", "path")];
    doc["components"]["schemas"]["RunBuild"] = json!({ "type": "object", "additionalProperties": false, "properties": {
        "ref": { "type": "string", "description": "Branch, tag or commit [default: main]" },
        "workflow": { "type": "string", "description": "Workflow file or name [default: every workflow with a `workflow_dispatch` trigger]" },
        "inputs": { "type": "object", "additionalProperties": { "type": "string" }, "description": "`workflow_dispatch` inputs" } } });
    let paths = &mut doc["paths"];
    paths["/api/v1/builds"] = json!({ "get": params(op("Builds, newest first; `next` is the `before` of the next page", "builds"),
        &[("repo", "query"), ("status", "query"), ("before", "query"), ("limit", "query")]) });
    paths["/api/v1/builds/{id}"] = json!({ "get": params(op("One build with its jobs, steps and annotations", "builds"), &id) });
    paths["/api/v1/builds/{id}/jobs/{job}/log"] = json!({ "get": params(op("A job's log as text; `follow=1`: server-sent events, one per line (`id` = line number, resumes after `Last-Event-ID`), `end` when the job ends; `timestamps=1` keeps each line's time", "builds"),
        &[("id", "path"), ("job", "path"), ("follow", "query"), ("timestamps", "query")]) });
    paths["/api/v1/builds/{id}/cancel"] = json!({ "post": params(op("Cancel a queued or running build (write access); 409 when it already ended", "builds"), &id) });
    paths["/api/v1/builds/{id}/rerun"] = json!({ "post": params(op("Run a finished build again as a new build (write access); `failed=1`: only the jobs that did not succeed, the others copied as they were", "builds"), &[("id", "path"), ("failed", "query")]) });
    paths["/api/v1/repos/{owner}/{name}/builds"] = json!({ "post": params(with_body(op("Run the `workflow_dispatch` workflows at a ref now (write access)", "builds"), "RunBuild", true), &[("owner", "path"), ("name", "path")]) });
    paths["/api/v1/builds/{id}/artifacts"] = json!({ "get": params(op("A build's artifacts: name, job, files, size (bytes), created and expiry times", "builds"), &id) });
    paths["/api/v1/builds/{id}/artifacts/{artifact}"] = json!({ "get": params(op("Download one artifact as a tar (`application/x-tar`); percent-encode the name", "builds"), &[("id", "path"), ("artifact", "path")]) });
    paths["/api/v1/caches"] = json!({
        "get": params(op("`actions/cache` entries of a repository (`repo=OWNER/NAME`), or of all (admin)", "builds"), &[("repo", "query")]),
        "delete": params(op("Delete a repository's cache entries, or one `key` (write access)", "builds"), &[("repo", "query"), ("key", "query")])
    });
}

/// Pull and push mirrors and the credentials they use.
fn mirrors(doc: &mut Value) {
    let mirror = [("owner", "path"), ("name", "path")];
    let schemas = &mut doc["components"]["schemas"];
    schemas["NewMirror"] = json!({ "type": "object", "required": ["url"], "additionalProperties": false, "properties": {
        "url": { "type": "string", "description": "https://, ssh:// or git:// URL of the repository to mirror" },
        "name": { "type": "string", "description": "Local OWNER/NAME [default: from the URL]" },
        "interval_secs": { "type": "integer" }, "public": { "type": "boolean" }, "allow_http": { "type": "boolean" } } });
    schemas["NewPushMirror"] = json!({ "type": "object", "required": ["repo", "url"], "additionalProperties": false, "properties": {
        "repo": { "type": "string", "description": "Local OWNER/NAME whose pushes are forwarded" },
        "url": { "type": "string" }, "branches": { "type": "string", "description": "Branch pattern" },
        "interval_secs": { "type": "integer" }, "allow_http": { "type": "boolean" } } });
    schemas["NewMirrorCredential"] = json!({ "type": "object", "additionalProperties": false, "properties": {
        "token": { "type": "string", "maxLength": 4096 }, "username": { "type": "string", "description": "With `token` [default: x-access-token]" },
        "ssh_key": { "type": "string", "description": "An OpenSSH private key (instead of `token`)" } } });
    let paths = &mut doc["paths"];
    paths["/api/v1/mirrors"] = json!({
        "get": op("Mirrors: state, last success (age), last error, refs and bytes of the last sync", "mirrors"),
        "post": with_body(op("Mirror a remote repository here, read-only (write access); the first clone runs in the background", "mirrors"), "NewMirror", true)
    });
    paths["/api/v1/mirrors/push"] = json!({ "post": with_body(op("Forward every push of a local repository to a remote (write access)", "mirrors"), "NewPushMirror", true) });
    paths["/api/v1/mirrors/{owner}/{name}"] = json!({
        "get": params(op("One mirror", "mirrors"), &mirror),
        "delete": params(op("Stop mirroring; the repository stays (write access)", "mirrors"), &mirror)
    });
    for (action, summary) in [
        ("sync", "Sync now (write access)"),
        ("pause", "Pause syncing (write access)"),
        ("resume", "Resume syncing (write access)"),
    ] {
        paths[format!("/api/v1/mirrors/{{owner}}/{{name}}/{action}")] =
            json!({ "post": params(op(summary, "mirrors"), &mirror) });
    }
    paths["/api/v1/mirror-credentials"] = json!({ "get": op("Hosts with mirror credentials and their kind, never the values (admin)", "mirrors") });
    paths["/api/v1/mirror-credentials/{host}"] = json!({
        "put": params(with_body(op("Store a token or SSH key for a host (admin)", "mirrors"), "NewMirrorCredential", true), &[("host", "path")]),
        "delete": params(op("Forget a host's credential (admin)", "mirrors"), &[("host", "path")])
    });
}

/// Forge accounts, hosted repos, webhook deliveries and pull requests.
fn forges(doc: &mut Value) {
    let schemas = &mut doc["components"]["schemas"];
    schemas["NewForge"] = json!({ "type": "object", "required": ["provider", "token"], "additionalProperties": false, "properties": {
        "provider": { "type": "string", "enum": ["github", "gitlab"] },
        "url": { "type": "string", "description": "API base: GitHub Enterprise https://HOST/api/v3, self-managed GitLab https://HOST" },
        "name": { "type": "string", "maxLength": 64 },
        "token": { "type": "string", "description": "Personal access token; stored in the SecretStore, never shown again" },
        "webhook_secret": { "type": "string", "description": "Secret webhooks are signed with; generated when absent and returned once" },
        "allow_http": { "type": "boolean" } } });
    schemas["NewHostedRepo"] = json!({ "type": "object", "required": ["repo"], "additionalProperties": false, "properties": {
        "repo": { "type": "string", "description": "github:OWNER/NAME or gitlab:GROUP/NAME" },
        "forge": { "type": "string", "description": "Forge account name, when several serve the provider" },
        "name": { "type": "string", "description": "Local OWNER/NAME" },
        "public": { "type": "boolean" } } });
    schemas["NewTunnelKey"] = json!({ "type": "object", "additionalProperties": false, "properties": {
        "private_key": { "type": "string", "description": "An unencrypted OpenSSH private key to import; without it a new ed25519 key is made. Stored in the SecretStore, never shown" },
        "replace": { "type": "boolean", "description": "Replace an existing key (409 otherwise)" } } });
    let paths = &mut doc["paths"];
    paths["/api/v1/forges"] = json!({
        "get": op("Forge accounts (never their tokens)", "forges"),
        "post": with_body(op("Add a GitHub or GitLab account (admin); the webhook secret is returned once", "forges"), "NewForge", true)
    });
    paths["/api/v1/forges/{name}"] = json!({ "delete": params(op("Remove a forge account and its secrets (admin)", "forges"), &[("name", "path")]) });
    paths["/api/v1/hosted-repos"] = json!({
        "get": op("Repositories hosted on a forge and mirrored here", "forges"),
        "post": with_body(op("Mirror and build a hosted repository; registers its webhook when a public URL is set", "forges"), "NewHostedRepo", true)
    });
    paths["/api/v1/deliveries"] = json!({ "get": params(op("Webhook deliveries, newest first (admin)", "webhooks"), &[("limit", "query")]) });
    paths["/api/v1/deliveries/{id}"] = json!({ "get": params(op("One webhook delivery and its processing result (admin)", "webhooks"), &[("id", "path")]) });
    paths["/api/v1/deliveries/{id}/replay"] = json!({ "post": params(op("Process a delivery again (admin); answers 202", "webhooks"), &[("id", "path")]) });
    paths["/api/v1/tunnel"] = json!({ "get": op("The webhook tunnel: kind, public URL, connected, deliveries carried, last error", "webhooks") });
    paths["/api/v1/tunnel/key"] = json!({
        "get": op("The SSH tunnel's public key and fingerprint (admin)", "webhooks"),
        "post": with_body(op("Make or import the SSH tunnel's client key (admin); answers with its public key", "webhooks"), "NewTunnelKey", true)
    });
    doc["components"]["schemas"]["NewMirrorSource"] = json!({ "type": "object", "required": ["kind", "spec"], "additionalProperties": false, "properties": {
        "kind": { "type": "string", "enum": ["starred", "org"] },
        "spec": { "type": "string", "description": "github:USER, github:@me (the token's own stars, private ones included), github:ORG, gitlab:USER or gitlab:GROUP[/SUBGROUP]" },
        "forge": { "type": "string", "description": "Forge account name, when several serve the provider" },
        "interval_secs": { "type": "integer", "description": "Poll interval [default: mirror_source_interval_secs]" },
        "public": { "type": "boolean", "description": "Mirrors it creates are public on the LAN" },
        "delete_missing": { "type": "boolean", "description": "Delete (instead of archive) the mirrors this source created when their repository leaves the list; adopted mirrors are only archived" } } });
    let paths = &mut doc["paths"];
    paths["/api/v1/mirror-sources"] = json!({
        "get": op("Sync sources (starred repos, organizations) with last poll, repo count and last error (admin)", "mirrors"),
        "post": with_body(op("Follow a forge list: mirror each repository in it, archive (or with delete_missing delete) those that leave (admin)", "mirrors"), "NewMirrorSource", true)
    });
    paths["/api/v1/mirror-sources/{id}"] = json!({
        "get": params(op("One sync source (admin)", "mirrors"), &[("id", "path")]),
        "delete": params(op("Stop following a source; its mirrors stay (admin)", "mirrors"), &[("id", "path")])
    });
    paths["/api/v1/mirror-sources/{id}/poll"] =
        json!({ "post": params(op("Poll a source now (admin)", "mirrors"), &[("id", "path")]) });
    paths["/api/v1/pulls"] = json!({ "get": params(op("Pull and merge requests of hosted repos, recently updated first", "forges"), &[("state", "query"), ("limit", "query")]) });
}

fn core_document() -> Value {
    let repo = [("owner", "path"), ("name", "path")];
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Hangar agent API", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Authenticate with `Authorization: Bearer TOKEN`. Errors are `{\"error\": {\"code\", \"message\"}}`." },
        "components": {
            "securitySchemes": { "token": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "object",
                    "required": ["code", "message"], "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } } },
                "NewRepo": { "type": "object", "required": ["name"], "additionalProperties": false, "properties": {
                    "name": { "type": "string", "description": "OWNER/NAME", "pattern": "^[A-Za-z0-9_][A-Za-z0-9._-]*/[A-Za-z0-9_][A-Za-z0-9._-]*$" },
                    "public": { "type": "boolean" }, "description": { "type": "string", "maxLength": 1000 } } },
                "NewKey": { "type": "object", "required": ["key"], "additionalProperties": false, "properties": {
                    "key": { "type": "string", "maxLength": 16384, "description": "OpenSSH public key line: ed25519, ECDSA or RSA (2048+ bits)" },
                    "name": { "type": "string", "maxLength": 100, "description": "Label; defaults to the key's comment" } } },
                "NewSecret": { "type": "object", "required": ["value"], "additionalProperties": false, "properties": {
                    "value": { "type": "string", "minLength": 1, "maxLength": 49152, "description": "Never returned by any endpoint; masked in build logs" } } },
                "NewToken": { "type": "object", "required": ["name"], "additionalProperties": false, "properties": { "name": { "type": "string", "maxLength": 100 } } },
                "SignIn": { "type": "object", "required": ["token"], "additionalProperties": false, "properties": { "token": { "type": "string", "maxLength": 256 } } },
                "NewUser": { "type": "object", "required": ["name"], "additionalProperties": false, "properties": {
                    "name": { "type": "string", "maxLength": 64 }, "role": { "type": "string", "enum": ["admin", "member", "reader"] } } }
            }
        },
        "security": [{ "token": [] }],
        "paths": {
            "/api/v1/openapi.json": { "get": op("This document (no sign-in needed)", "agent") },
            "/api/v1/status": { "get": op("Agent status: version, URL, SSH address and host key fingerprint, uptime, counts", "agent") },
            "/api/v1/host": { "get": op("The host: CPU, memory, the data dir's disk, load; queued jobs and executor slots", "agent") },
            "/api/v1/events": { "get": op("Server-sent events: `build`, `job`, `step`, `push`, `mirror`, `queue` changes as JSON; `reload` when the listener fell behind", "agent") },
            "/api/v1/session": {
                "post": with_body(op("Sign a browser in: sets the HttpOnly `hangar_session` cookie. With the cookie, requests that change something must send the `x-hangar-ui` header", "agent"), "SignIn", false),
                "delete": op("Sign the browser out (clears the cookie)", "agent")
            },
            "/api/v1/repos": {
                "get": params(op("List repositories (paged by name)", "repos"), &[("limit", "query"), ("after", "query")]),
                "post": with_body(op("Create a repository", "repos"), "NewRepo", true)
            },
            "/api/v1/repos/{owner}/{name}": {
                "get": params(op("Show a repository", "repos"), &repo),
                "delete": params(op("Delete a repository (admin)", "repos"), &repo)
            },
            "/api/v1/repos/{owner}/{name}/branches": { "get": params(op("Branches with their head commits", "repos"), &repo) },
            "/api/v1/repos/{owner}/{name}/tags": { "get": params(op("Tags with their commits", "repos"), &repo) },
            "/api/v1/repos/{owner}/{name}/commits": { "get": params(op("Recent commits, newest first (paged by offset)", "repos"),
                &[("owner", "path"), ("name", "path"), ("ref", "query"), ("limit", "query"), ("offset", "query")]) },
            "/api/v1/repos/{owner}/{name}/workflows": { "get": params(op("Workflow files at HEAD: name, triggers, jobs, or their errors", "repos"), &repo) },
            "/api/v1/repos/{owner}/{name}/events": { "get": params(op("Recent events (pushes)", "repos"), &[("owner", "path"), ("name", "path"), ("limit", "query")]) },
            "/api/v1/tokens": {
                "get": op("Your tokens (never their secrets)", "tokens"),
                "post": with_body(op("Create a token; the secret is shown once", "tokens"), "NewToken", true)
            },
            "/api/v1/tokens/{id}": { "delete": params(op("Revoke a token", "tokens"), &[("id", "path")]) },
            "/api/v1/keys": {
                "get": params(op("Your SSH public keys (`all=true`: everyone's, admin)", "keys"), &[("all", "query")]),
                "post": with_body(op("Add an SSH public key for git over SSH", "keys"), "NewKey", true)
            },
            "/api/v1/keys/{id}": { "delete": params(op("Remove an SSH key (yours, or any as admin)", "keys"), &[("id", "path")]) },
            "/api/v1/secrets": { "get": op("Global workflow secrets: names only (admin)", "secrets") },
            "/api/v1/secrets/{secret}": {
                "put": params(with_body(op("Create or replace a global workflow secret (admin)", "secrets"), "NewSecret", true), &[("secret", "path")]),
                "delete": params(op("Remove a global workflow secret (admin)", "secrets"), &[("secret", "path")])
            },
            "/api/v1/repos/{owner}/{name}/secrets": { "get": params(op("A repository's workflow secrets and the global ones its jobs see: names and scopes only (write access)", "secrets"), &repo) },
            "/api/v1/repos/{owner}/{name}/secrets/{secret}": {
                "put": params(with_body(op("Create or replace a repository secret; it overrides a global one of the same name (write access)", "secrets"), "NewSecret", true),
                    &[("owner", "path"), ("name", "path"), ("secret", "path")]),
                "delete": params(op("Remove a repository secret (write access)", "secrets"), &[("owner", "path"), ("name", "path"), ("secret", "path")])
            },
            "/api/v1/queue": { "get": op("The build queue: `paused`, `queued` and `running` jobs", "builds") },
            "/api/v1/queue/pause": { "post": op("Pause the queue (admin): builds are still planned, no job starts; kept across restarts", "builds") },
            "/api/v1/queue/resume": { "post": op("Resume the queue (admin)", "builds") },
            "/api/v1/users": {
                "get": op("List users (admin)", "users"),
                "post": with_body(op("Create a user and a first token (admin)", "users"), "NewUser", true)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::document;

    /// One route as served: path segments (`None` for a `String` parameter)
    /// and the method.
    type Route = (Vec<Option<String>>, String);

    /// Every `/api/v1` route the router serves, read from the route tables
    /// in `src/http/*.rs`: warp filters cannot be listed at run time, and
    /// each table is written `api_v1()` (or `base()`) then
    /// `.and(warp::path!(..))` then `.and(warp::METHOD())`.
    fn served() -> Vec<Route> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
        let mut routes = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("src/http") {
            let path = entry.expect("entry").path();
            if path.ends_with("openapi.rs") {
                continue; // this test's own text
            }
            let text = std::fs::read_to_string(path).expect("source");
            let mut rest = text.as_str();
            while let Some(at) = rest.find("warp::path!(") {
                let statement = &rest[..at];
                let statement = &statement[statement.rfind("let ").unwrap_or(0)..];
                let after = &rest[at + "warp::path!(".len()..];
                let (args, tail) = after.split_once(')').expect("path! closes");
                rest = tail;
                if !(statement.contains("api_v1()") || statement.contains("base()")) {
                    continue;
                }
                let segments = args
                    .split('/')
                    .map(|s| {
                        let s = s.trim();
                        (s != "String").then(|| s.trim_matches('"').to_owned())
                    })
                    .collect();
                let method = tail
                    .trim_start_matches(')')
                    .trim_start()
                    .strip_prefix(".and(warp::")
                    .and_then(|m| m.split_once("()"))
                    .map(|(m, _)| m.to_owned())
                    .expect("a method filter after each path");
                routes.push((segments, method));
            }
        }
        assert!(routes.len() > 50, "the route tables were not found");
        routes
    }

    /// Whether a documented path (`/api/v1/builds/{id}/cancel`) and method
    /// serve a route: a parameter matches a `{name}` or any literal.
    fn matches(route: &Route, path: &str, method: &str) -> bool {
        let documented: Vec<&str> = path.trim_start_matches("/api/v1/").split('/').collect();
        route.1 == method
            && route.0.len() == documented.len()
            && route
                .0
                .iter()
                .zip(&documented)
                .all(|(served, doc)| match served {
                    Some(literal) => literal == doc,
                    None => true,
                })
    }

    fn documented() -> Vec<(String, String)> {
        let doc = document();
        let paths = doc["paths"].as_object().expect("paths");
        paths
            .iter()
            .flat_map(|(path, ops)| {
                let ops = ops.as_object().expect("operations");
                ops.keys()
                    .map(|m| (path.clone(), m.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn every_served_route_is_documented_and_every_documented_one_served() {
        let served = served();
        let documented = documented();
        let undocumented: Vec<String> = served
            .iter()
            .filter(|r| !documented.iter().any(|(p, m)| matches(r, p, m)))
            .map(|(segments, method)| {
                let path: Vec<&str> = segments
                    .iter()
                    .map(|s| s.as_deref().unwrap_or("{param}"))
                    .collect();
                format!("{method} /api/v1/{}", path.join("/"))
            })
            .collect();
        assert!(
            undocumented.is_empty(),
            "served but not in the OpenAPI document: {undocumented:#?}"
        );
        let stale: Vec<String> = documented
            .iter()
            .filter(|(p, m)| !served.iter().any(|r| matches(r, p, m)))
            .map(|(p, m)| format!("{m} {p}"))
            .collect();
        assert!(stale.is_empty(), "documented but not served: {stale:#?}");
    }
}
