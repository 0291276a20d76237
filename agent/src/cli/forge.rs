//! `hangar forge`, `hangar repo add`, `hangar delivery` and `hangar pr`:
//! GitHub/GitLab accounts, hosted repos, webhook deliveries, pull requests.

use std::io::Read as _;

use anyhow::Context as _;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use super::client::Client;
use super::commands::{JsonFlag, print_json, s};
use super::table;

#[derive(Debug, Subcommand)]
pub enum ForgeCommand {
    /// Add a GitHub or GitLab account; its token is read from stdin.
    Add {
        #[arg(value_parser = ["github", "gitlab"])]
        provider: String,
        /// API base for GitHub Enterprise (https://HOST/api/v3) or a
        /// self-managed GitLab (https://HOST) [default: the public service].
        #[arg(long, value_name = "BASE")]
        url: Option<String>,
        /// A name for the account [default: the provider, or the URL's host].
        #[arg(long)]
        name: Option<String>,
        /// Read the token from standard input (never from the command line).
        #[arg(long, required = true)]
        token_stdin: bool,
        /// Allow a plain http:// base URL.
        #[arg(long)]
        allow_http: bool,
        #[arg(long)]
        json: bool,
    },
    /// List forge accounts (never their tokens).
    List(JsonFlag),
    /// Remove a forge account and its token.
    Rm { name: String },
}

#[derive(Debug, Subcommand)]
pub enum DeliveryCommand {
    /// Recent webhook deliveries, newest first.
    List {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// One delivery and what processing it did.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Process a delivery again (e.g. after fixing what made it fail).
    Replay { id: String },
}

#[derive(Debug, Subcommand)]
pub enum TunnelCommand {
    /// Whether webhooks can reach this agent: tunnel kind, public URL, connection.
    Status(JsonFlag),
    /// The SSH tunnel's client key (kept in the SecretStore).
    #[command(subcommand)]
    Key(TunnelKeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum TunnelKeyCommand {
    /// Make a new ed25519 key; prints the public key for the server's authorized_keys.
    Generate {
        /// Replace the existing key (the server must then get the new public key).
        #[arg(long)]
        replace: bool,
        #[arg(long)]
        json: bool,
    },
    /// Use an existing unencrypted OpenSSH private key from FILE.
    Import {
        file: std::path::PathBuf,
        /// Replace the existing key.
        #[arg(long)]
        replace: bool,
        #[arg(long)]
        json: bool,
    },
    /// Print the public key (for the server's authorized_keys).
    Show(JsonFlag),
}

#[derive(Debug, Subcommand)]
pub enum PrCommand {
    /// Pull requests (GitHub) and merge requests (GitLab) of hosted repos.
    List {
        /// open, closed or merged.
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

pub async fn forge(client: &Client, command: ForgeCommand) -> anyhow::Result<()> {
    match command {
        ForgeCommand::Add {
            provider,
            url,
            name,
            token_stdin: _,
            allow_http,
            json,
        } => {
            let mut token = String::new();
            std::io::stdin()
                .read_to_string(&mut token)
                .context("cannot read the token from stdin")?;
            let body = json!({ "provider": provider, "url": url, "name": name,
                               "token": token.trim(), "allow_http": allow_http });
            let v = client.call(Method::POST, "/forges", Some(body)).await?;
            if json {
                return print_json(&v);
            }
            println!(
                "Added {} ({} at {})",
                s(&v["name"]),
                s(&v["provider"]),
                s(&v["base_url"])
            );
            match v["webhook_url"].as_str() {
                Some(url) => println!("Webhooks of repos you add are registered to {url}."),
                None => println!(
                    "No public URL is set (`hangar serve --public-url URL`): register webhooks yourself,\n  payload URL  <your public URL>/hooks/{}\n  content type application/json",
                    s(&v["provider"])
                ),
            }
            println!("  secret       {}  (shown once)", s(&v["webhook_secret"]));
            println!("Next: hangar repo add {}:OWNER/NAME", s(&v["provider"]));
        }
        ForgeCommand::List(f) => {
            let v = client.get("/forges").await?;
            if f.json {
                return print_json(&v["items"]);
            }
            let rows: Vec<Vec<String>> = items(&v)
                .map(|f| vec![s(&f["name"]), s(&f["provider"]), s(&f["base_url"])])
                .collect();
            if rows.is_empty() {
                println!(
                    "No forge accounts. Add one with `hangar forge add github --token-stdin`."
                );
            } else {
                table::print(&["NAME", "PROVIDER", "URL"], &rows);
            }
        }
        ForgeCommand::Rm { name } => {
            client
                .call(
                    Method::DELETE,
                    &format!("/forges/{}", segment(&name)?),
                    None,
                )
                .await?;
            println!("Removed {name} and its token.");
        }
    }
    Ok(())
}

/// `hangar repo add github:OWNER/NAME`.
pub async fn add_repo(
    client: &Client,
    spec: String,
    forge: Option<String>,
    name: Option<String>,
    public: bool,
    json: bool,
) -> anyhow::Result<()> {
    let body = json!({ "repo": spec, "forge": forge, "name": name, "public": public });
    let v = client
        .call(Method::POST, "/hosted-repos", Some(body))
        .await?;
    if json {
        return print_json(&v);
    }
    println!(
        "Added {} as {} (read-only mirror; the first fetch runs now)",
        s(&v["remote"]),
        s(&v["repo"])
    );
    println!("  clone    {}", s(&v["clone_url"]));
    match (v["hook_url"].as_str(), v["webhook_error"].as_str()) {
        (_, Some(error)) => println!("  webhook  not registered: {error}"),
        (Some(url), None) => println!("  webhook  {url}"),
        (None, None) => {
            println!("  webhook  none (no public URL; pushes are picked up by polling)")
        }
    }
    Ok(())
}

pub async fn delivery(client: &Client, command: DeliveryCommand) -> anyhow::Result<()> {
    match command {
        DeliveryCommand::List { limit, json } => {
            let v = client.get(&format!("/deliveries?limit={limit}")).await?;
            if json {
                return print_json(&v["items"]);
            }
            let rows: Vec<Vec<String>> = items(&v)
                .map(|d| {
                    vec![
                        s(&d["id"]),
                        s(&d["provider"]),
                        s(&d["event"]),
                        s(&d["state"]),
                        s(&d["received_at"]),
                        s(&d["result"]).chars().take(60).collect(),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("No webhook deliveries yet.");
            } else {
                table::print(
                    &["ID", "FORGE", "EVENT", "STATE", "RECEIVED", "RESULT"],
                    &rows,
                );
            }
        }
        DeliveryCommand::Show { id, json } => {
            let v = client
                .get(&format!("/deliveries/{}", segment(&id)?))
                .await?;
            if json {
                return print_json(&v);
            }
            for key in [
                "id",
                "provider",
                "event",
                "delivery_id",
                "hook_id",
                "state",
                "attempts",
                "received_at",
                "processed_at",
                "size",
                "result",
            ] {
                println!("  {key:<13}{}", s(&v[key]));
            }
        }
        DeliveryCommand::Replay { id } => {
            let v = client
                .call(
                    Method::POST,
                    &format!("/deliveries/{}/replay", segment(&id)?),
                    None,
                )
                .await?;
            println!(
                "Delivery {} ({}) queued again.",
                s(&v["id"]),
                s(&v["event"])
            );
        }
    }
    Ok(())
}

pub async fn pr(client: &Client, command: PrCommand) -> anyhow::Result<()> {
    let PrCommand::List { state, json } = command;
    let path = match &state {
        Some(state) => format!("/pulls?state={}", segment(state)?),
        None => "/pulls".to_owned(),
    };
    let v = client.get(&path).await?;
    if json {
        return print_json(&v["items"]);
    }
    let rows: Vec<Vec<String>> = items(&v)
        .map(|p| {
            vec![
                s(&p["repo"]),
                format!("#{}", s(&p["number"])),
                s(&p["state"]),
                s(&p["author"]),
                format!("{} → {}", s(&p["head_ref"]), s(&p["base_ref"])),
                s(&p["title"]).chars().take(50).collect(),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("No pull requests.");
    } else {
        table::print(
            &["REPO", "PR", "STATE", "AUTHOR", "BRANCHES", "TITLE"],
            &rows,
        );
    }
    Ok(())
}

fn items(v: &Value) -> impl Iterator<Item = &Value> {
    v["items"].as_array().into_iter().flatten()
}

/// A name or id used as one URL path segment, checked first.
fn segment(text: &str) -> anyhow::Result<&str> {
    if text.is_empty()
        || text.len() > 100
        || !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        || text.starts_with('.')
    {
        anyhow::bail!("{text:?} is not a valid name or id");
    }
    Ok(text)
}

pub async fn tunnel(client: &Client, command: TunnelCommand) -> anyhow::Result<()> {
    let f = match command {
        TunnelCommand::Status(f) => f,
        TunnelCommand::Key(command) => return tunnel_key(client, command).await,
    };
    let v = client.get("/tunnel").await?;
    if f.json {
        return print_json(&v);
    }
    if v["kind"] == "none" {
        println!(
            "No tunnel: set `tunnel_ssh` or `relay_url` (or `public_url` if the internet reaches this host)."
        );
        return Ok(());
    }
    println!("{} tunnel", s(&v["kind"]));
    if v["kind"] == "ssh" {
        println!("  server         {}", s(&v["server"]));
        println!(
            "  listening on   {} (on the server)",
            s(&v["remote_listen"])
        );
    }
    match v["public_url"].as_str() {
        Some(url) => println!("  public URL     {url}"),
        None => println!("  public URL     - (set public_url to the URL that reaches the tunnel)"),
    }
    println!("  connected      {}", s(&v["connected"]));
    if v["kind"] == "ssh" {
        println!("  last connected {}", s(&v["last_connected"]));
    }
    println!("  deliveries     {}", s(&v["deliveries"]));
    println!("  last delivery  {}", s(&v["last_delivery"]));
    if let Some(error) = v["last_error"].as_str() {
        println!("  last error     {error}");
    }
    Ok(())
}

async fn tunnel_key(client: &Client, command: TunnelKeyCommand) -> anyhow::Result<()> {
    let (v, json) = match command {
        TunnelKeyCommand::Show(f) => (client.get("/tunnel/key").await?, f.json),
        TunnelKeyCommand::Generate { replace, json } => {
            let body = json!({ "replace": replace });
            (
                client.call(Method::POST, "/tunnel/key", Some(body)).await?,
                json,
            )
        }
        TunnelKeyCommand::Import {
            file,
            replace,
            json,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let body = json!({ "private_key": text, "replace": replace });
            (
                client.call(Method::POST, "/tunnel/key", Some(body)).await?,
                json,
            )
        }
    };
    if json {
        return print_json(&v);
    }
    println!("{}", s(&v["public_key"]));
    eprintln!(
        "({}) Put this line in ~USER/.ssh/authorized_keys on the tunnel server (USER of tunnel_ssh).",
        s(&v["fingerprint"])
    );
    Ok(())
}
