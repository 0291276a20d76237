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
                "NewToken": { "type": "object", "required": ["name"], "additionalProperties": false, "properties": { "name": { "type": "string", "maxLength": 100 } } },
                "NewUser": { "type": "object", "required": ["name"], "additionalProperties": false, "properties": {
                    "name": { "type": "string", "maxLength": 64 }, "role": { "type": "string", "enum": ["admin", "member", "reader"] } } }
            }
        },
        "security": [{ "token": [] }],
        "paths": {
            "/api/v1/status": { "get": op("Agent status: version, URL, SSH address and host key fingerprint, uptime, counts", "agent") },
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
