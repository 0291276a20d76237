//! The client commands: status, repo, token, key, user (and the dispatch to the others).

use anyhow::Context as _;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use super::Command;
use super::client::Client;
use super::table;

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Create an empty repository.
    Create {
        /// OWNER/NAME
        name: String,
        /// Anyone on the LAN may clone it without a token.
        #[arg(long)]
        public: bool,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long)]
        json: bool,
    },
    /// Mirror and build a repository hosted on GitHub or GitLab
    /// (read-only here; fetched on each webhook and polled as a safety net).
    Add {
        /// github:OWNER/NAME or gitlab:GROUP/NAME
        spec: String,
        /// The forge account, when several serve the provider (see `hangar forge list`).
        #[arg(long)]
        forge: Option<String>,
        /// The local OWNER/NAME [default: the last two parts of the path].
        #[arg(long = "as", value_name = "OWNER/NAME")]
        name: Option<String>,
        /// Anyone on the LAN may clone it without a token.
        #[arg(long)]
        public: bool,
        #[arg(long)]
        json: bool,
    },
    /// List repositories.
    List(JsonFlag),
    /// Show a repository with its branches.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a repository and its history on this host.
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; its secret is printed once.
    Create {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// List your tokens.
    List(JsonFlag),
    /// Revoke a token by id.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Add a public key (an OpenSSH `.pub` file, or `-` for stdin).
    Add {
        /// The public key file [default: ~/.ssh/id_ed25519.pub, id_ecdsa.pub or id_rsa.pub].
        file: Option<String>,
        /// A label for the key [default: the key's comment].
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List your keys.
    List(JsonFlag),
    /// Remove a key by id.
    Remove { id: String },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (admin, member or reader) with a first token.
    Create {
        name: String,
        #[arg(long, default_value = "member", value_parser = ["admin", "member", "reader"])]
        role: String,
        #[arg(long)]
        json: bool,
    },
    /// List users.
    List(JsonFlag),
}

pub async fn run(client: &Client, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(_) => unreachable!("serve is not a client command"),
        Command::Status(f) => status(client, f.json).await,
        Command::Repo(c) => repo(client, c).await,
        Command::Token(c) => token(client, c).await,
        Command::Key(c) => key(client, c).await,
        Command::User(c) => user(client, c).await,
        Command::Build(c) => super::builds::run(client, c).await,
        Command::Cache(c) => super::cache::run(client, c).await,
        Command::Mirror(c) => super::mirror::run(client, c).await,
        Command::Secret(c) => super::secret::run(client, c).await,
        Command::Forge(c) => super::forge::forge(client, c).await,
        Command::Delivery(c) => super::forge::delivery(client, c).await,
        Command::Pr(c) => super::forge::pr(client, c).await,
        Command::Tunnel(c) => super::forge::tunnel(client, c).await,
        Command::Queue(c) => queue(client, c).await,
        Command::Service(_) => unreachable!("service is not a client command"),
    }
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Whether the queue is paused, and how many jobs wait and run.
    Show(JsonFlag),
    /// Start no more jobs (running ones finish; pushes still queue builds).
    Pause,
    /// Start queued jobs again.
    Resume,
}

async fn queue(client: &Client, command: QueueCommand) -> anyhow::Result<()> {
    let (v, json) = match command {
        QueueCommand::Show(f) => (client.get("/queue").await?, f.json),
        QueueCommand::Pause => (
            client.call(Method::POST, "/queue/pause", None).await?,
            false,
        ),
        QueueCommand::Resume => (
            client.call(Method::POST, "/queue/resume", None).await?,
            false,
        ),
    };
    if json {
        return print_json(&v);
    }
    let paused = v["paused"].as_bool().unwrap_or(false);
    println!(
        "queue {}: {} job(s) queued, {} running",
        if paused { "paused" } else { "running" },
        s(&v["queued"]),
        s(&v["running"])
    );
    if paused {
        println!("resume it with `hangar queue resume`");
    }
    Ok(())
}

pub fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn s(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// `OWNER/NAME` as the API's path segments, checked before use.
pub fn repo_path(name: &str) -> anyhow::Result<String> {
    let name = hangar_core::repo_name::RepoName::parse(name)?;
    Ok(format!("/repos/{}/{}", name.owner(), name.name()))
}

async fn status(client: &Client, json: bool) -> anyhow::Result<()> {
    let v = client.get("/status").await?;
    if json {
        return print_json(&v);
    }
    println!("Hangar {} at {}", s(&v["version"]), s(&v["url"]));
    println!("  up for     {}s", s(&v["uptime_secs"]));
    println!("  data dir   {}", s(&v["data_dir"]));
    println!("  repos      {}", s(&v["repos"]));
    println!("  users      {}", s(&v["users"]));
    match v["ssh_url"].as_str() {
        Some(url) => {
            println!("  ssh        {url}");
            println!("  host key   {}", s(&v["ssh_host_key_fingerprint"]));
        }
        None => println!("  ssh        off"),
    }
    println!(
        "  signed in  {} ({})",
        s(&v["you"]["name"]),
        s(&v["you"]["role"])
    );
    Ok(())
}

async fn repo(client: &Client, command: RepoCommand) -> anyhow::Result<()> {
    match command {
        RepoCommand::Create {
            name,
            public,
            description,
            json,
        } => {
            let v = client
                .call(
                    Method::POST,
                    "/repos",
                    Some(json!({ "name": name, "public": public, "description": description })),
                )
                .await?;
            if json {
                return print_json(&v);
            }
            println!(
                "Created {} ({})",
                s(&v["full_name"]),
                if public { "public" } else { "private" }
            );
            println!("  git remote add origin {}", s(&v["clone_url"]));
        }
        RepoCommand::Add {
            spec,
            forge,
            name,
            public,
            json,
        } => super::forge::add_repo(client, spec, forge, name, public, json).await?,
        RepoCommand::List(f) => {
            let mut items = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let path = match &after {
                    Some(a) => format!("/repos?limit=100&after={a}"),
                    None => "/repos?limit=100".to_owned(),
                };
                let page = client.get(&path).await?;
                items.extend(page["items"].as_array().cloned().unwrap_or_default());
                match page["next"].as_str() {
                    Some(next) => after = Some(next.to_owned()),
                    None => break,
                }
            }
            if f.json {
                return print_json(&Value::Array(items));
            }
            if items.is_empty() {
                println!("No repositories yet. Create one with `hangar repo create OWNER/NAME`.");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|r| {
                    let visibility = if r["public"].as_bool() == Some(true) {
                        "public"
                    } else {
                        "private"
                    };
                    vec![
                        s(&r["full_name"]),
                        visibility.to_owned(),
                        s(&r["clone_url"]),
                    ]
                })
                .collect();
            table::print(&["NAME", "VISIBILITY", "CLONE URL"], &rows);
        }
        RepoCommand::Show { name, json } => {
            let path = repo_path(&name)?;
            let mut v = client.get(&path).await?;
            let branches = client.get(&format!("{path}/branches")).await?;
            v["branches"] = branches["items"].clone();
            if json {
                return print_json(&v);
            }
            println!(
                "{}  ({})",
                s(&v["full_name"]),
                if v["public"].as_bool() == Some(true) {
                    "public"
                } else {
                    "private"
                }
            );
            println!("  clone    {}", s(&v["clone_url"]));
            println!("  created  {}", s(&v["created_at"]));
            let rows: Vec<Vec<String>> = v["branches"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| {
                    let id = s(&b["target"]);
                    vec![
                        s(&b["name"]),
                        id.chars().take(10).collect(),
                        s(&b["commit"]["summary"]),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("\nNo branches yet: push one with `git push origin main`.");
            } else {
                println!();
                table::print(&["BRANCH", "COMMIT", "SUMMARY"], &rows);
            }
        }
        RepoCommand::Delete { name } => {
            client
                .call(Method::DELETE, &repo_path(&name)?, None)
                .await?;
            println!("Deleted {name}");
        }
    }
    Ok(())
}

async fn token(client: &Client, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { name, json } => {
            let v = client
                .call(Method::POST, "/tokens", Some(json!({ "name": name })))
                .await?;
            if json {
                return print_json(&v);
            }
            println!(
                "Token {} created. Copy it now, it is not shown again:\n\n    {}",
                s(&v["name"]),
                s(&v["token"])
            );
        }
        TokenCommand::List(f) => {
            let v = client.get("/tokens").await?;
            if f.json {
                return print_json(&v["items"]);
            }
            let rows: Vec<Vec<String>> = v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    let state = if t["revoked"].as_bool() == Some(true) {
                        "revoked"
                    } else {
                        "active"
                    };
                    vec![
                        s(&t["id"]),
                        s(&t["name"]),
                        state.to_owned(),
                        s(&t["created_at"]),
                        s(&t["last_used_at"]),
                    ]
                })
                .collect();
            table::print(&["ID", "NAME", "STATE", "CREATED", "LAST USED"], &rows);
        }
        TokenCommand::Revoke { id } => {
            let id: hangar_core::ids::TokenId = id
                .parse()
                .context("see `hangar token list` for token ids")?;
            client
                .call(Method::DELETE, &format!("/tokens/{id}"), None)
                .await?;
            println!("Revoked {id}");
        }
    }
    Ok(())
}

/// The public key text from `file`, stdin (`-`), or the usual files in ~/.ssh.
fn read_public_key(file: Option<&str>) -> anyhow::Result<String> {
    use std::io::Read as _;
    let limit = hangar_core::store::ssh_keys::MAX_KEY_TEXT as u64 + 1;
    let path = match file {
        Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .take(limit)
                .read_to_string(&mut text)
                .context("cannot read the key from stdin")?;
            return Ok(text);
        }
        Some(path) => std::path::PathBuf::from(path),
        None => {
            let home = std::env::var_os("HOME").context("HOME is not set; name the key file")?;
            let ssh = std::path::Path::new(&home).join(".ssh");
            ["id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"]
                .iter()
                .map(|name| ssh.join(name))
                .find(|p| p.exists())
                .with_context(|| {
                    format!(
                        "no public key in {}; make one with `ssh-keygen -t ed25519` or name the file",
                        ssh.display()
                    )
                })?
        }
    };
    let mut text = String::new();
    std::fs::File::open(&path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .take(limit)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text)
}

async fn key(client: &Client, command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Add { file, name, json } => {
            let text = read_public_key(file.as_deref())?;
            let v = client
                .call(
                    Method::POST,
                    "/keys",
                    Some(json!({ "key": text, "name": name })),
                )
                .await?;
            if json {
                return print_json(&v);
            }
            println!(
                "Added {} key {} ({}) as {}",
                s(&v["algorithm"]),
                s(&v["name"]),
                s(&v["fingerprint"]),
                s(&v["id"])
            );
        }
        KeyCommand::List(f) => {
            let v = client.get("/keys").await?;
            if f.json {
                return print_json(&v["items"]);
            }
            let rows: Vec<Vec<String>> = v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|k| {
                    vec![
                        s(&k["id"]),
                        s(&k["name"]),
                        s(&k["algorithm"]),
                        s(&k["fingerprint"]),
                        s(&k["last_used_at"]),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("No SSH keys yet. Add one with `hangar key add ~/.ssh/id_ed25519.pub`.");
                return Ok(());
            }
            table::print(&["ID", "NAME", "TYPE", "FINGERPRINT", "LAST USED"], &rows);
        }
        KeyCommand::Remove { id } => {
            let id: hangar_core::ids::SshKeyId =
                id.parse().context("see `hangar key list` for key ids")?;
            client
                .call(Method::DELETE, &format!("/keys/{id}"), None)
                .await?;
            println!("Removed {id}");
        }
    }
    Ok(())
}

async fn user(client: &Client, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Create { name, role, json } => {
            let v = client
                .call(
                    Method::POST,
                    "/users",
                    Some(json!({ "name": name, "role": role })),
                )
                .await?;
            if json {
                return print_json(&v);
            }
            println!(
                "User {} ({}) created. Their first token, shown once:\n\n    {}",
                s(&v["name"]),
                s(&v["role"]),
                s(&v["token"])
            );
        }
        UserCommand::List(f) => {
            let v = client.get("/users").await?;
            if f.json {
                return print_json(&v["items"]);
            }
            let rows: Vec<Vec<String>> = v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|u| vec![s(&u["name"]), s(&u["role"]), s(&u["created_at"])])
                .collect();
            table::print(&["NAME", "ROLE", "CREATED"], &rows);
        }
    }
    Ok(())
}
