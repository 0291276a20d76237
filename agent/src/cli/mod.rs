//! The `hangar` command line: `serve` runs the agent; every other command is
//! a client of its REST API.

mod builds;
mod cache;
mod client;
mod commands;
mod forge;
mod mirror;
mod secret;
mod serve;
mod service;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Hangar: a build host for your Mac. Serves git on the LAN, runs workflows,
/// mirrors repositories.
#[derive(Debug, Parser)]
#[command(name = "hangar", version, propagate_version = true)]
pub struct Cli {
    /// Data dir of the agent (default: ~/Library/Application Support/Hangar on
    /// macOS, $XDG_DATA_HOME/hangar elsewhere). Clients read agent.json there.
    #[arg(long, global = true, env = "HANGAR_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// URL of a running agent, instead of the data dir's agent.json.
    #[arg(long, global = true, env = "HANGAR_URL", value_name = "URL")]
    pub url: Option<String>,
    /// API token, instead of the one in agent.json.
    #[arg(
        long,
        global = true,
        env = "HANGAR_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent in the foreground.
    Serve(serve::ServeArgs),
    /// Show the agent's status.
    Status(commands::JsonFlag),
    /// Create, list, show and delete repositories.
    #[command(subcommand)]
    Repo(commands::RepoCommand),
    /// Create, list and revoke API tokens.
    #[command(subcommand)]
    Token(commands::TokenCommand),
    /// Add, list and remove SSH public keys for git over SSH.
    #[command(subcommand)]
    Key(commands::KeyCommand),
    /// Create and list users (admin).
    #[command(subcommand)]
    User(commands::UserCommand),
    /// List, show, follow, cancel, re-run and start builds.
    #[command(subcommand)]
    Build(builds::BuildCommand),
    /// List and delete `actions/cache` entries.
    #[command(subcommand)]
    Cache(cache::CacheCommand),
    /// Pull and push mirrors, their health, and their credentials.
    #[command(subcommand)]
    Mirror(mirror::MirrorCommand),
    /// Workflow secrets for `${{ secrets.NAME }}`: set, list, remove.
    #[command(subcommand)]
    Secret(secret::SecretCommand),
    /// GitHub and GitLab accounts (tokens in the SecretStore).
    #[command(subcommand)]
    Forge(forge::ForgeCommand),
    /// Webhook deliveries: list, show, replay.
    #[command(subcommand)]
    Delivery(forge::DeliveryCommand),
    /// Pull requests of hosted repos.
    #[command(subcommand)]
    Pr(forge::PrCommand),
    /// The webhook tunnel (SSH reverse tunnel or relay channel): state and SSH key.
    #[command(subcommand)]
    Tunnel(forge::TunnelCommand),
    /// Show, pause and resume the build queue.
    #[command(subcommand)]
    Queue(commands::QueueCommand),
    /// Run the agent at login (macOS LaunchAgent, systemd user unit).
    #[command(subcommand)]
    Service(service::ServiceCommand),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(cli.data_dir, args).await,
            Command::Service(command) => service::run(cli.data_dir, command),
            command => {
                let client = client::Client::locate(cli.data_dir, cli.url, cli.token)?;
                commands::run(&client, command).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The data dir from the flag or the platform default.
pub fn data_dir(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    flag.or_else(hangar_core::data_dir::default_dir)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "cannot find a data dir: set --data-dir or HANGAR_DATA_DIR (HOME is not set)"
            )
        })
}
