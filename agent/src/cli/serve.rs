//! `hangar serve`: run the agent in the foreground until SIGINT or SIGTERM.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use hangar_core::config::Settings;
use hangar_core::data_dir::DataDir;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address for HTTP (API, git, UI) [default: 0.0.0.0:7070, or `http` in config.toml].
    #[arg(long, value_name = "ADDR:PORT")]
    http: Option<String>,
    /// Address for git over SSH [default: 0.0.0.0:2222, or `ssh` in config.toml].
    #[arg(long, value_name = "ADDR:PORT", conflicts_with = "no_ssh")]
    ssh: Option<String>,
    /// Do not serve git over SSH.
    #[arg(long)]
    no_ssh: bool,
    /// Allow mirrors of loopback, link-local and private (LAN) addresses.
    #[arg(long)]
    allow_local_mirrors: bool,
    /// The URL the internet reaches this agent at; forge webhooks are
    /// registered to URL/hooks/github and URL/hooks/gitlab.
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Receive webhooks through this smee.io-style relay channel.
    #[arg(long, value_name = "URL", conflicts_with = "tunnel_ssh")]
    relay_url: Option<String>,
    /// Receive webhooks through an SSH reverse tunnel to this server.
    #[arg(long, value_name = "USER@HOST[:PORT]")]
    tunnel_ssh: Option<String>,
    /// The port the tunnel's server listens on [default: 8080].
    #[arg(long, value_name = "PORT")]
    tunnel_remote_port: Option<String>,
    /// The address the tunnel's server listens on [default: localhost].
    #[arg(long, value_name = "ADDR")]
    tunnel_remote_bind: Option<String>,
    /// The tunnel server's host key: SHA256:... or its public key line.
    #[arg(long, value_name = "KEY")]
    tunnel_host_key: Option<String>,
}

pub async fn run(data_dir: Option<PathBuf>, args: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HANGAR_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let data_dir = super::data_dir(data_dir)?;
    let mut settings = Settings::load(&DataDir::new(&data_dir).config_file(), std::env::vars())?;
    if let Some(http) = &args.http {
        settings.set("http", http)?;
    }
    if let Some(ssh) = &args.ssh {
        settings.set("ssh", ssh)?;
    }
    if args.no_ssh {
        settings.no_ssh = true;
    }
    if args.allow_local_mirrors {
        settings.allow_local_mirrors = true;
    }
    if let Some(url) = &args.public_url {
        settings.set("public_url", url)?;
    }
    for (key, value) in [
        ("relay_url", &args.relay_url),
        ("tunnel_ssh", &args.tunnel_ssh),
        ("tunnel_remote_port", &args.tunnel_remote_port),
        ("tunnel_remote_bind", &args.tunnel_remote_bind),
        ("tunnel_host_key", &args.tunnel_host_key),
    ] {
        if let Some(value) = value {
            settings.set(key, value)?;
        }
    }
    let running = crate::agent::start(crate::agent::Config {
        data_dir: data_dir.clone(),
        settings,
    })
    .await?;

    if let Some(token) = &running.first_run_token {
        println!(
            "First run: created the admin user. Its token (shown once, also saved in agent.json):\n\n    {token}\n"
        );
    }
    let port = running.http_addr.port();
    tracing::info!(data_dir = %data_dir.display(), "agent started");
    tracing::info!("API and dashboard: {}", running.agent.url);
    if running.http_addr.ip().is_unspecified() {
        tracing::info!(
            "clone on the LAN: git clone http://{}:{port}/OWNER/NAME.git",
            hostname()
        );
    }
    if let Some(ssh) = &running.agent.ssh {
        tracing::info!(
            "git over SSH on {}: git clone ssh://git@{}:{}/OWNER/NAME.git (host key {})",
            ssh.addr,
            hostname(),
            ssh.addr.port(),
            ssh.fingerprint
        );
    }
    println!(
        "Hangar is serving on {} (data in {})",
        running.agent.url,
        data_dir.display()
    );

    wait_for_signal().await?;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

/// The host's name as the LAN sees it (macOS answers `NAME.local` over Bonjour).
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let name = if ok {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "localhost".to_owned()
    };
    if cfg!(target_os = "macos") && !name.contains('.') {
        format!("{name}.local")
    } else {
        name
    }
}
