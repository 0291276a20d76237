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
    forges(&mut doc);
    doc
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
            "/api/v1/status": { "get": op("Agent status: version, URL, SSH address and host key fingerprint, uptime, counts", "agent") },
            "/api/v1/host": { "get": op("The host: CPU, memory, the data dir's disk, load; queued jobs and executor slots", "agent") },
            "/api/v1/events": { "get": op("Server-sent events: `build`, `job`, `step`, `push`, `mirror` changes as JSON; `reload` when the listener fell behind", "agent") },
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
