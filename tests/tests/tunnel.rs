//! The SSH reverse tunnel against a real OpenSSH `sshd` on loopback: a
//! delivery posted to the server's forwarded port reaches `/hooks/github`
//! and is stored; a wrong host key stops the tunnel before it logs in.
//! GitHub itself cannot be reached from here: the account and the signed
//! deliveries come from the stand-in in tests/src/forge_standin.rs.

use hangar_tests::forge_standin::{ForgeStandin, github_delivery, post_delivery};
use hangar_tests::sshd::{self, Sshd};
use hangar_tests::{Agent, SshClient, wait_until};
use serde_json::{Value, json};

const SECRET: &str = "tunnel webhook secret";

/// An agent whose tunnel points at `sshd`, listening on `remote_port` there.
fn agent_for(sshd: &Sshd, remote_port: u16, host_key: Option<&str>) -> Agent {
    let target = format!("{}@127.0.0.1:{}", sshd::user(), sshd.port);
    let port = remote_port.to_string();
    let mut env = vec![
        ("HANGAR_ALLOW_LOCAL_MIRRORS", "true"),
        ("HANGAR_TUNNEL_SSH", target.as_str()),
        ("HANGAR_TUNNEL_REMOTE_PORT", port.as_str()),
        ("HANGAR_PUBLIC_URL", "https://hooks.example.com"),
    ];
    if let Some(key) = host_key {
        env.push(("HANGAR_TUNNEL_HOST_KEY", key));
    }
    Agent::start_with_env(&env)
}

fn tunnel_status(agent: &Agent) -> Value {
    let out = agent.cli(&["tunnel", "status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

fn wait_for_error(agent: &Agent, text: &str) -> Value {
    wait_until(agent, &format!("a tunnel error with {text:?}"), || {
        tunnel_status(agent)["last_error"]
            .as_str()
            .is_some_and(|e| e.contains(text))
    });
    tunnel_status(agent)
}

#[test]
fn webhooks_reach_the_agent_through_an_ssh_tunnel() {
    if !sshd::available() {
        return;
    }
    let mut sshd = Sshd::start();
    let remote_port = sshd::free_port();
    let agent = agent_for(&sshd, remote_port, Some(&sshd.host_fingerprint()));
    let standin = ForgeStandin::start("ghp_token");
    let (status, forge) = agent.api(
        "POST",
        "/api/v1/forges",
        Some(
            json!({ "provider": "github", "url": standin.github_url(), "token": "ghp_token",
                     "webhook_secret": SECRET, "allow_http": true }),
        ),
    );
    assert_eq!(status, 201, "{forge}");

    // No key yet: the status says what to do.
    let status = wait_for_error(&agent, "no tunnel key yet");
    assert_eq!(status["kind"], "ssh");
    assert_eq!(status["connected"], false);
    assert_eq!(status["public_url"], "https://hooks.example.com");

    let out = agent.cli(&["tunnel", "key", "generate"]);
    assert!(out.status.success(), "{out:?}");
    let public_key = String::from_utf8(out.stdout).expect("utf-8");
    assert!(public_key.starts_with("ssh-ed25519 "), "{public_key}");
    // Asking again would lock the server out: refused without --replace.
    let again = agent.cli(&["tunnel", "key", "generate"]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("exists already"),
        "{again:?}"
    );
    let shown = agent.cli(&["tunnel", "key", "show"]);
    assert_eq!(String::from_utf8_lossy(&shown.stdout), public_key);
    // The private half stays in the SecretStore, out of SQLite.
    let db = std::fs::read(agent.data_dir().join("hangar.db")).expect("database");
    assert!(!String::from_utf8_lossy(&db).contains("OPENSSH PRIVATE KEY"));

    // The server refuses the key until it is authorized.
    wait_for_error(&agent, "refused the tunnel key");
    sshd.authorize(&public_key);
    wait_until(&agent, "the tunnel to connect", || {
        tunnel_status(&agent)["connected"] == true
    });
    let status = tunnel_status(&agent);
    assert_eq!(
        status["remote_listen"],
        format!("localhost:{remote_port}").as_str()
    );
    assert!(status["last_error"].is_null(), "{status}");

    // A signed delivery posted to the server's port is stored; a forged one is not.
    let http = reqwest::blocking::Client::new();
    let hook = format!("http://127.0.0.1:{remote_port}/hooks/github");
    let ping = json!({ "zen": "Keep it logically awesome.", "hook_id": 1 });
    let (status, answer) =
        post_delivery(&http, &hook, &github_delivery("ping", "t-1", SECRET, &ping));
    assert_eq!(status, 202, "{answer}");
    let (status, _) = post_delivery(
        &http,
        &hook,
        &github_delivery("ping", "t-forged", "wrong secret", &ping),
    );
    assert_eq!(status, 401);
    let (_, list) = agent.api("GET", "/api/v1/deliveries", None);
    let ids: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|d| d["delivery_id"].as_str())
        .collect();
    assert_eq!(ids, ["t-1"], "{list}");

    // Nothing but the receivers is reachable through the tunnel.
    let api = http
        .get(format!("http://127.0.0.1:{remote_port}/api/v1/status"))
        .bearer_auth(&agent.token)
        .send()
        .expect("answer");
    assert_eq!(api.status().as_u16(), 404);
    let status = tunnel_status(&agent);
    assert_eq!(status["deliveries"], 2, "{status}");
    assert!(status["last_delivery"].is_string());

    // The server goes away and comes back: the tunnel reconnects by itself.
    let first = status["last_connected"].clone();
    sshd.restart();
    wait_until(&agent, "the tunnel to reconnect", || {
        let s = tunnel_status(&agent);
        s["connected"] == true && s["last_connected"] != first
    });
    let (status, answer) =
        post_delivery(&http, &hook, &github_delivery("ping", "t-2", SECRET, &ping));
    assert_eq!(status, 202, "{answer}\n{}", sshd.log());
}

#[test]
fn a_wrong_or_unpinned_host_key_stops_the_tunnel_before_login() {
    if !sshd::available() {
        return;
    }
    let sshd = Sshd::start();
    // The client key comes from a file this time, and the server knows it.
    let client = SshClient::new(sshd.port);
    let key_file = client.key();
    sshd.authorize(&client.public_key());
    let other = Sshd::start();

    let remote_port = sshd::free_port();
    let agent = agent_for(&sshd, remote_port, Some(&other.host_fingerprint()));
    let out = agent.cli(&[
        "tunnel",
        "key",
        "import",
        key_file.to_str().expect("utf-8"),
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let status = wait_for_error(&agent, "host key mismatch");
    let error = status["last_error"].as_str().expect("error");
    assert!(error.contains(&sshd.host_fingerprint()), "{error}");
    assert!(error.contains(&other.host_fingerprint()), "{error}");
    assert_eq!(status["connected"], false);
    // No login happened and nothing listens on the remote port.
    assert!(!sshd.log().contains("Accepted publickey"), "{}", sshd.log());
    assert!(std::net::TcpStream::connect(("127.0.0.1", remote_port)).is_err());

    // Without a pin the tunnel does not connect either, and it shows the
    // key the server offered so the user can check and pin it.
    let unpinned = agent_for(&sshd, remote_port, None);
    let out = unpinned.cli(&["tunnel", "key", "import", key_file.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{out:?}");
    let status = wait_for_error(&unpinned, "not pinned");
    let error = status["last_error"].as_str().expect("error");
    assert!(error.contains(&sshd.host_fingerprint()), "{error}");
    assert!(error.contains(&sshd.host_public_key()[..60]), "{error}");
    assert!(!sshd.log().contains("Accepted publickey"), "{}", sshd.log());
}
