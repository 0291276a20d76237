//! `hangar secret ...`: workflow secrets, global (admin) or per repository.
//! Values are read from stdin and never printed.

use std::io::{IsTerminal as _, Read as _};

use anyhow::Context as _;
use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use super::client::Client;
use super::commands::{print_json, repo_path, s};
use super::table;

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Store a secret for `${{ secrets.NAME }}`; the value is read from stdin
    /// (typed without echo on a terminal; one trailing newline is dropped).
    Set {
        /// Letters, digits and `_` (stored upper-case, as on GitHub).
        name: String,
        /// OWNER/NAME: only this repository's jobs see it (write access);
        /// without it, every repository's jobs do (admin).
        #[arg(long, value_name = "OWNER/NAME")]
        repo: Option<String>,
    },
    /// List secret names and their scope (never values).
    List {
        /// The repository's secrets and the global ones its jobs see.
        #[arg(long, value_name = "OWNER/NAME")]
        repo: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove a secret.
    #[command(visible_alias = "remove")]
    Rm {
        name: String,
        #[arg(long, value_name = "OWNER/NAME")]
        repo: Option<String>,
    },
}

fn base(repo: Option<&str>) -> anyhow::Result<String> {
    Ok(match repo {
        Some(r) => format!("{}/secrets", repo_path(r)?),
        None => "/secrets".to_owned(),
    })
}

/// A name as one URL path segment (checked again by the agent).
fn segment(name: &str) -> anyhow::Result<&str> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        anyhow::bail!(
            "{name:?} is not a secret name: use letters, digits and `_` (e.g. API_TOKEN)"
        );
    }
    Ok(name)
}

pub async fn run(client: &Client, command: SecretCommand) -> anyhow::Result<()> {
    match command {
        SecretCommand::Set { name, repo } => {
            let path = format!("{}/{}", base(repo.as_deref())?, segment(&name)?);
            let value = read_value()?;
            let v = client
                .call(Method::PUT, &path, Some(json!({ "value": value })))
                .await?;
            match repo {
                Some(r) => println!("Stored secret {} for {r}.", s(&v["name"])),
                None => println!("Stored global secret {}.", s(&v["name"])),
            }
        }
        SecretCommand::List { repo, json } => {
            let v = client.get(&base(repo.as_deref())?).await?;
            if json {
                return print_json(&v["items"]);
            }
            let rows: Vec<Vec<String>> = v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| {
                    let note = if i["overridden"].as_bool() == Some(true) {
                        "overridden by the repo's own"
                    } else {
                        ""
                    };
                    vec![s(&i["name"]), s(&i["scope"]), note.to_owned()]
                })
                .collect();
            if rows.is_empty() {
                println!("No secrets.");
            } else {
                table::print(&["NAME", "SCOPE", ""], &rows);
            }
        }
        SecretCommand::Rm { name, repo } => {
            let path = format!("{}/{}", base(repo.as_deref())?, segment(&name)?);
            client.call(Method::DELETE, &path, None).await?;
            println!("Removed secret {}.", name.to_ascii_uppercase());
        }
    }
    Ok(())
}

/// The value from stdin: without echo when it is a terminal; one trailing
/// newline (as `echo` or Enter adds) is dropped.
fn read_value() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let mut value = String::new();
    if stdin.is_terminal() {
        eprint!("Value (input hidden): ");
        let _echo = EchoOff::new();
        stdin
            .read_line(&mut value)
            .context("cannot read the secret from the terminal")?;
        eprintln!();
    } else {
        stdin
            .lock()
            .read_to_string(&mut value)
            .context("cannot read the secret from stdin")?;
    }
    let value = value
        .strip_suffix("\r\n")
        .or_else(|| value.strip_suffix('\n'))
        .unwrap_or(&value);
    if value.is_empty() {
        anyhow::bail!(
            "the secret's value is empty; pipe it in, e.g. `printf %s \"$TOKEN\" | hangar secret set NAME`"
        );
    }
    Ok(value.to_owned())
}

/// Turns the terminal's echo off until dropped.
struct EchoOff(Option<libc::termios>);

impl EchoOff {
    fn new() -> Self {
        // SAFETY: tcgetattr/tcsetattr only read and write the termios struct
        // passed, for the stdin descriptor, which is open.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut saved) != 0 {
                return Self(None);
            }
            let mut quiet = saved;
            quiet.c_lflag &= !libc::ECHO;
            quiet.c_lflag |= libc::ECHONL;
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &quiet);
            Self(Some(saved))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            // SAFETY: restores the settings read in `new` on the same descriptor.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, saved);
            }
        }
    }
}
