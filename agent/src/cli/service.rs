//! `hangar service ...`: run the agent at login (a LaunchAgent on macOS, a
//! systemd user unit elsewhere). Local: needs no running agent.

use std::path::PathBuf;

use clap::Subcommand;

use crate::service::{self, Kind, Spec};

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Install the login service for this binary and data dir, and start it.
    Install {
        /// Only install: the agent starts at the next login.
        #[arg(long)]
        no_start: bool,
    },
    /// Stop and remove the login service.
    Uninstall,
    /// Whether the service is installed and running.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Print the service file `install` would write, without installing.
    File {
        /// launchd (macOS) or systemd (Linux) [default: this platform's].
        #[arg(long, value_parser = ["launchd", "systemd"])]
        kind: Option<String>,
    },
}

pub fn run(data_dir: Option<PathBuf>, command: ServiceCommand) -> anyhow::Result<()> {
    let spec = || -> anyhow::Result<Spec> {
        Ok(Spec::new(
            std::env::current_exe()?,
            super::data_dir(data_dir.clone())?,
        ))
    };
    match command {
        ServiceCommand::Install { no_start } => {
            let spec = spec()?;
            let path = service::install(&spec, !no_start)?;
            println!("Installed {}", path.display());
            println!(
                "The agent {} with your login, data in {}, output in {}.",
                if no_start {
                    "will start"
                } else {
                    "runs now and starts"
                },
                spec.data_dir.display(),
                if cfg!(target_os = "macos") {
                    spec.log_file().display().to_string()
                } else {
                    format!("`journalctl --user -u {}`", service::SYSTEMD_UNIT)
                }
            );
        }
        ServiceCommand::Uninstall => {
            if service::uninstall()? {
                println!("Removed the login service; the agent no longer starts at login.");
            } else {
                println!("The login service is not installed.");
            }
        }
        ServiceCommand::Status { json } => {
            let status = service::status()?;
            if json {
                return super::commands::print_json(&serde_json::to_value(&status)?);
            }
            if status.installed {
                println!("installed  {}", status.file);
                println!("state      {}", status.state.as_deref().unwrap_or("-"));
            } else {
                println!("not installed (would be {})", status.file);
                println!("install it with `hangar service install`");
            }
        }
        ServiceCommand::File { kind } => {
            let kind = match kind.as_deref() {
                Some("launchd") => Kind::Launchd,
                Some("systemd") => Kind::Systemd,
                _ => Kind::native(),
            };
            let body = kind.render(&spec()?)?;
            print!("{}", String::from_utf8_lossy(&body));
        }
    }
    Ok(())
}
