//! `hangar mirror ...`: pull and push mirrors, their health, and credentials.

use std::io::Read as _;
use std::time::Duration;

use anyhow::Context as _;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use super::client::Client;
use super::commands::{print_json, s};
use super::table;

#[derive(Debug, Subcommand)]
pub enum MirrorCommand {
    /// Mirror a remote repository here (read-only on the LAN); the initial
    /// clone runs in the background.
    Add {
        /// https://, ssh://, git:// or git@host:path (http:// with --allow-http)
        #[arg(id = "remote_url", value_name = "URL")]
        url: String,
        /// Local OWNER/NAME [default: the URL's last two path segments]
        #[arg(long = "as", value_name = "OWNER/NAME")]
        name: Option<String>,
        /// How often to fetch: 90s, 10m, 2h, 1d [default: mirror_interval_secs]
        #[arg(long)]
        interval: Option<String>,
        /// Anyone on the LAN may clone it without a token.
        #[arg(long)]
        public: bool,
        /// Accept a plain http:// URL (unencrypted).
        #[arg(long)]
        allow_http: bool,
        /// Wait for the initial clone, showing its progress.
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        json: bool,
    },
    /// Forward every push to OWNER/NAME to another remote.
    Push {
        /// The local repository, OWNER/NAME
        name: String,
        /// Where pushes are forwarded (same URL rules as `mirror add`)
        #[arg(id = "remote_url", value_name = "URL")]
        url: String,
        /// Only these branches: names or patterns with one `*`, comma-separated
        /// [default: all branches and tags]
        #[arg(long, value_name = "PATTERN")]
        branches: Option<String>,
        /// Catch-up interval besides forwarding each push [default: mirror_interval_secs]
        #[arg(long)]
        interval: Option<String>,
        #[arg(long)]
        allow_http: bool,
        #[arg(long)]
        json: bool,
    },
    /// Mirrors with their state, last success and last error.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One mirror in detail.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Sync a mirror now.
    Sync {
        name: String,
        /// Wait for the sync to finish and report it.
        #[arg(long)]
        wait: bool,
    },
    /// Stop syncing a mirror until resumed.
    Pause { name: String },
    /// Sync a paused (or archived) mirror again, starting now.
    Resume { name: String },
    /// Stop mirroring; the repository stays (a pull mirror becomes writable).
    Remove { name: String },
    /// Credentials per host for mirrors and forge APIs (admin).
    #[command(subcommand)]
    Credential(CredentialCommand),
    /// Mirror every repository a forge user has starred, and follow the list
    /// (polled with ETags; repos that leave it are archived, or deleted with
    /// --delete-missing) (admin).
    SyncStarred(SyncArgs),
    /// Mirror every repository of a GitHub organization or GitLab group
    /// (with subgroups), and follow the list (admin).
    SyncOrg(SyncArgs),
    /// Sync sources with their last poll, repo count and last error (admin).
    Sources {
        #[command(subcommand)]
        command: Option<SourcesCommand>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// github:USER / github:ORG, gitlab:USER / gitlab:GROUP[/SUBGROUP];
    /// github:@me: the stars of the forge token's own user (private ones too)
    #[arg(value_name = "PROVIDER:NAME")]
    spec: String,
    /// The forge account to use, when several serve the provider (see `hangar forge list`)
    #[arg(long, value_name = "N")]
    forge: Option<String>,
    /// How often to poll the list: 90s, 10m, 2h, 1d [default: mirror_source_interval_secs]
    #[arg(long)]
    interval: Option<String>,
    /// Mirrors it creates may be cloned on the LAN without a token.
    #[arg(long)]
    public: bool,
    /// When a repository leaves the list, delete the mirror this source made
    /// for it (repository included) instead of archiving it. Mirrors it did
    /// not create (adopted from `hangar mirror add`) are only archived.
    #[arg(long)]
    delete_missing: bool,
    /// Wait for the first poll and report it.
    #[arg(long)]
    wait: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub enum SourcesCommand {
    /// Poll a source now.
    Poll {
        id: String,
        /// Wait for the poll and report it.
        #[arg(long)]
        wait: bool,
    },
    /// Stop following a source; the mirrors it made stay.
    Remove { id: String },
}

#[derive(Debug, Subcommand)]
pub enum CredentialCommand {
    /// Store an HTTPS token (read from stdin) or an SSH private key for HOST[:PORT].
    Set {
        host: String,
        /// Read the token from standard input (never from the command line).
        #[arg(long, conflicts_with = "ssh_key", required_unless_present = "ssh_key")]
        token_stdin: bool,
        /// User name sent with the token (GitHub: any; GitLab: any; Bitbucket: yours).
        #[arg(long, default_value = "x-access-token", requires = "token_stdin")]
        username: String,
        /// A private key file for ssh:// and git@host: URLs.
        #[arg(long, value_name = "FILE")]
        ssh_key: Option<std::path::PathBuf>,
    },
    /// Hosts with a credential (never the values).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Forget the credential of HOST.
    Remove { host: String },
}

fn mirror_path(name: &str) -> anyhow::Result<String> {
    let name = hangar_core::repo_name::RepoName::parse(name)?;
    Ok(format!("/mirrors/{}/{}", name.owner(), name.name()))
}

fn interval_secs(text: Option<&str>) -> anyhow::Result<Option<u64>> {
    text.map(|t| hangar_core::mirror::parse_interval(t).map(|d| d.as_secs()))
        .transpose()
        .map_err(anyhow::Error::msg)
}

/// `12s ago`, `5m ago`, `3h ago`, `2d ago`, or `never`.
fn age(secs: &Value) -> String {
    let Some(secs) = secs.as_i64() else {
        return "never".to_owned();
    };
    let (n, unit) = match secs {
        s if s < 120 => (s, "s"),
        s if s < 7200 => (s / 60, "m"),
        s if s < 172_800 => (s / 3600, "h"),
        s => (s / 86400, "d"),
    };
    format!("{n}{unit} ago")
}

fn one_line(text: &Value) -> String {
    let text = s(text);
    let line = text.lines().last().unwrap_or("-");
    line.chars().take(80).collect()
}

pub async fn run(client: &Client, command: MirrorCommand) -> anyhow::Result<()> {
    match command {
        MirrorCommand::Add {
            url,
            name,
            interval,
            public,
            allow_http,
            wait,
            json,
        } => {
            let v = client
                .call(
                    Method::POST,
                    "/mirrors",
                    Some(json!({ "url": url, "name": name, "public": public,
                        "allow_http": allow_http, "interval_secs": interval_secs(interval.as_deref())? })),
                )
                .await?;
            let repo = s(&v["repo"]);
            if wait {
                let done = wait_for_sync(client, &repo, None, !json).await?;
                return report(&done, json);
            }
            if json {
                return print_json(&v);
            }
            println!(
                "Mirroring {} as {repo}; the initial clone runs in the background.",
                s(&v["url"])
            );
            println!(
                "  follow it with `hangar mirror show {repo}`; clone with {}",
                s(&v["clone_url"])
            );
        }
        MirrorCommand::Push {
            name,
            url,
            branches,
            interval,
            allow_http,
            json,
        } => {
            let v = client
                .call(
                    Method::POST,
                    "/mirrors/push",
                    Some(json!({ "repo": name, "url": url, "branches": branches,
                        "allow_http": allow_http, "interval_secs": interval_secs(interval.as_deref())? })),
                )
                .await?;
            if json {
                return print_json(&v);
            }
            println!(
                "Pushes to {} are forwarded to {}.",
                s(&v["repo"]),
                s(&v["url"])
            );
        }
        MirrorCommand::List { json } => {
            let v = client.get("/mirrors").await?;
            if json {
                return print_json(&v["items"]);
            }
            let items = v["items"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                println!("No mirrors yet. Add one with `hangar mirror add URL`.");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|m| {
                    vec![
                        s(&m["repo"]),
                        s(&m["kind"]),
                        s(&m["state"]),
                        age(&m["last_success_age_secs"]),
                        s(&m["url"]),
                        one_line(&m["last_error"]),
                    ]
                })
                .collect();
            table::print(
                &["NAME", "KIND", "STATE", "LAST SUCCESS", "URL", "LAST ERROR"],
                &rows,
            );
        }
        MirrorCommand::Show { name, json } => {
            let v = client.get(&mirror_path(&name)?).await?;
            report(&v, json)?;
        }
        MirrorCommand::Sync { name, wait } => {
            let path = mirror_path(&name)?;
            let before = client.get(&path).await?;
            client
                .call(Method::POST, &format!("{path}/sync"), None)
                .await?;
            if wait {
                let done =
                    wait_for_sync(client, &name, Some(&before["last_attempt"]), true).await?;
                return report(&done, false);
            }
            println!("Sync of {name} requested; see `hangar mirror show {name}`.");
        }
        MirrorCommand::Pause { name } => {
            client
                .call(
                    Method::POST,
                    &format!("{}/pause", mirror_path(&name)?),
                    None,
                )
                .await?;
            println!("Paused {name}.");
        }
        MirrorCommand::Resume { name } => {
            client
                .call(
                    Method::POST,
                    &format!("{}/resume", mirror_path(&name)?),
                    None,
                )
                .await?;
            println!("Resumed {name}; it syncs now.");
        }
        MirrorCommand::Remove { name } => {
            client
                .call(Method::DELETE, &mirror_path(&name)?, None)
                .await?;
            println!(
                "{name} is no longer a mirror; the repository stays (delete it with `hangar repo delete {name}`)."
            );
        }
        MirrorCommand::Credential(command) => credential(client, command).await?,
        MirrorCommand::SyncStarred(args) => sync_source(client, "starred", args).await?,
        MirrorCommand::SyncOrg(args) => sync_source(client, "org", args).await?,
        MirrorCommand::Sources { command, json } => sources(client, command, json).await?,
    }
    Ok(())
}

async fn sync_source(client: &Client, kind: &str, args: SyncArgs) -> anyhow::Result<()> {
    let v = client
        .call(
            Method::POST,
            "/mirror-sources",
            Some(
                json!({ "kind": kind, "spec": args.spec, "forge": args.forge, "public": args.public,
                "delete_missing": args.delete_missing,
                "interval_secs": interval_secs(args.interval.as_deref())? }),
            ),
        )
        .await?;
    let id = s(&v["id"]);
    let v = if args.wait {
        wait_for_poll(client, &id, &Value::Null).await?
    } else {
        v
    };
    if args.json {
        return print_json(&v);
    }
    if args.wait {
        return report_source(&v);
    }
    println!(
        "Syncing {} ({}) every {}s; the first poll runs now.",
        s(&v["spec"]),
        s(&v["kind"]),
        s(&v["interval_secs"])
    );
    println!(
        "  follow it with `hangar mirror sources`; stop with `hangar mirror sources remove {id}`"
    );
    Ok(())
}

async fn sources(
    client: &Client,
    command: Option<SourcesCommand>,
    json: bool,
) -> anyhow::Result<()> {
    match command {
        None => {
            let v = client.get("/mirror-sources").await?;
            if json {
                return print_json(&v["items"]);
            }
            let items = v["items"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                println!(
                    "No sync sources yet. Add one with `hangar mirror sync-starred github:USER` or `hangar mirror sync-org github:ORG`."
                );
                return Ok(());
            }
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|v| {
                    vec![
                        s(&v["id"]),
                        s(&v["kind"]),
                        s(&v["spec"]),
                        s(&v["forge"]),
                        s(&v["repo_count"]),
                        if v["delete_missing"] == true {
                            "delete"
                        } else {
                            "archive"
                        }
                        .to_owned(),
                        s(&v["last_poll"]),
                        one_line(&v["last_error"]),
                    ]
                })
                .collect();
            table::print(
                &[
                    "ID",
                    "KIND",
                    "SOURCE",
                    "FORGE",
                    "REPOS",
                    "WHEN GONE",
                    "LAST POLL",
                    "LAST ERROR",
                ],
                &rows,
            );
        }
        Some(SourcesCommand::Poll { id, wait }) => {
            let path = source_path(&id)?;
            let before = client.get(&path).await?;
            client
                .call(Method::POST, &format!("{path}/poll"), None)
                .await?;
            if wait {
                let done = wait_for_poll(client, &id, &before["last_poll"]).await?;
                return if json {
                    print_json(&done)
                } else {
                    report_source(&done)
                };
            }
            println!(
                "Poll of {} requested; see `hangar mirror sources`.",
                s(&before["spec"])
            );
        }
        Some(SourcesCommand::Remove { id }) => {
            client
                .call(Method::DELETE, &source_path(&id)?, None)
                .await?;
            println!(
                "Stopped syncing source {id}; the mirrors it made stay (remove them with `hangar mirror remove NAME`)."
            );
        }
    }
    Ok(())
}

/// A source id as one URL path segment (checked again by the agent).
fn source_path(id: &str) -> anyhow::Result<String> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        anyhow::bail!("{id:?} is not a source id (see `hangar mirror sources`)");
    }
    Ok(format!("/mirror-sources/{id}"))
}

/// Polls until the source's `last_poll` differs from `before`.
async fn wait_for_poll(client: &Client, id: &str, before: &Value) -> anyhow::Result<Value> {
    let path = source_path(id)?;
    loop {
        let v = client.get(&path).await?;
        if !v["last_poll"].is_null() && v["last_poll"] != *before {
            return Ok(v);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn report_source(v: &Value) -> anyhow::Result<()> {
    println!(
        "{}  ({} via {})",
        s(&v["spec"]),
        s(&v["kind"]),
        s(&v["forge"])
    );
    println!("  id            {}", s(&v["id"]));
    println!("  repositories  {}", s(&v["repo_count"]));
    println!(
        "  when gone     {}",
        if v["delete_missing"] == true {
            "delete the mirrors it made"
        } else {
            "archive"
        }
    );
    println!("  last poll     {}", s(&v["last_poll"]));
    println!("  next poll     {}", s(&v["next_poll"]));
    if !v["last_error"].is_null() {
        println!(
            "  last error    {}",
            s(&v["last_error"]).replace('\n', "\n                ")
        );
    }
    Ok(())
}

/// Polls until a sync that started after `after` (or the first one) ends,
/// printing git's progress lines as they change.
async fn wait_for_sync(
    client: &Client,
    name: &str,
    after: Option<&Value>,
    show_progress: bool,
) -> anyhow::Result<Value> {
    let path = mirror_path(name)?;
    let mut last_progress = String::new();
    loop {
        let v = client.get(&path).await?;
        let state = v["state"].as_str().unwrap_or_default();
        let progress = s(&v["progress"]);
        if show_progress && progress != "-" && progress != last_progress {
            eprintln!("  {progress}");
            last_progress = progress;
        }
        let new_attempt = after.is_none_or(|a| *a != v["last_attempt"]);
        if new_attempt && !matches!(state, "new" | "syncing") {
            return Ok(v);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn report(v: &Value, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(v);
    }
    println!(
        "{}  ({} mirror, {})",
        s(&v["repo"]),
        s(&v["kind"]),
        s(&v["state"])
    );
    println!("  url           {}", s(&v["url"]));
    println!("  clone         {}", s(&v["clone_url"]));
    println!("  interval      {}s", s(&v["interval_secs"]));
    if !v["branches"].is_null() {
        println!("  branches      {}", s(&v["branches"]));
    }
    println!(
        "  last success  {} ({})",
        age(&v["last_success_age_secs"]),
        s(&v["last_success"])
    );
    println!("  last attempt  {}", s(&v["last_attempt"]));
    println!("  next attempt  {}", s(&v["next_attempt"]));
    println!(
        "  last sync     {} refs changed, {} bytes",
        s(&v["last_refs"]),
        s(&v["last_bytes"])
    );
    if !v["progress"].is_null() {
        println!("  progress      {}", s(&v["progress"]));
    }
    if !v["last_error"].is_null() {
        println!("  failures      {} in a row", s(&v["failures"]));
        println!(
            "  last error    {}",
            s(&v["last_error"]).replace('\n', "\n                ")
        );
    }
    Ok(())
}

async fn credential(client: &Client, command: CredentialCommand) -> anyhow::Result<()> {
    match command {
        CredentialCommand::Set {
            host,
            token_stdin,
            username,
            ssh_key,
        } => {
            let path = format!("/mirror-credentials/{}", host_segment(&host)?);
            let body = if token_stdin {
                let mut token = String::new();
                std::io::stdin()
                    .read_to_string(&mut token)
                    .context("cannot read the token from stdin")?;
                json!({ "token": token.trim(), "username": username })
            } else {
                let file = ssh_key.context("pass --token-stdin or --ssh-key FILE")?;
                let key = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                json!({ "ssh_key": key })
            };
            let v = client.call(Method::PUT, &path, Some(body)).await?;
            println!(
                "Stored the {} for {}.",
                s(&v["kind"]).replace('_', " "),
                s(&v["host"])
            );
        }
        CredentialCommand::List { json } => {
            let v = client.get("/mirror-credentials").await?;
            if json {
                return print_json(&v["items"]);
            }
            let rows: Vec<Vec<String>> = v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| vec![s(&c["host"]), s(&c["kind"])])
                .collect();
            table::print(&["HOST", "KIND"], &rows);
        }
        CredentialCommand::Remove { host } => {
            let path = format!("/mirror-credentials/{}", host_segment(&host)?);
            client.call(Method::DELETE, &path, None).await?;
            println!("Removed the credential for {host}.");
        }
    }
    Ok(())
}

/// A host as one URL path segment (checked again by the agent).
fn host_segment(host: &str) -> anyhow::Result<&str> {
    if host.is_empty() || host.contains(['/', '?', '#', '%']) {
        anyhow::bail!("{host:?} is not a host name (use HOST or HOST:PORT)");
    }
    Ok(host)
}
