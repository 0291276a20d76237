//! `hangar build ...`: list, show, logs (with -f to follow), artifacts,
//! download, cancel, rerun, run.

use clap::Subcommand;
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use super::client::Client;
use super::commands::{print_json, s};
use super::table;

#[derive(Debug, Subcommand)]
pub enum BuildCommand {
    /// Recent builds, newest first.
    List {
        /// Only this repository (OWNER/NAME).
        #[arg(long)]
        repo: Option<String>,
        #[arg(long, default_value_t = 30)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// A build with its jobs, steps, durations and annotations.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// A job's log (the first job's unless --job is given).
    Logs {
        id: String,
        /// Job id or name.
        #[arg(long)]
        job: Option<String>,
        /// Keep printing as the job writes, until it ends.
        #[arg(short, long)]
        follow: bool,
    },
    /// Cancel a queued or running build.
    Cancel { id: String },
    /// Run a build again (only the jobs that did not succeed with --failed).
    Rerun {
        id: String,
        #[arg(long)]
        failed: bool,
    },
    /// The artifacts a build's jobs uploaded.
    Artifacts {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Download an artifact and unpack it into a directory.
    Download {
        id: String,
        /// The artifact's name (see `hangar build artifacts ID`).
        name: String,
        /// Where to unpack it [default: ./NAME].
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// Run the `workflow_dispatch` workflows of a repository now.
    Run {
        /// OWNER/NAME
        repo: String,
        /// Branch, tag or commit [default: main].
        #[arg(long = "ref")]
        git_ref: Option<String>,
        /// Only this workflow file (e.g. .github/workflows/ci.yml).
        #[arg(long)]
        workflow: Option<String>,
        /// Workflow inputs, KEY=VALUE (repeatable).
        #[arg(long = "input", value_name = "KEY=VALUE")]
        inputs: Vec<String>,
        #[arg(long)]
        json: bool,
    },
}

fn check_id(id: &str) -> anyhow::Result<hangar_core::ids::BuildId> {
    id.parse()
        .map_err(|e| anyhow::anyhow!("{e}; see `hangar build list` for build ids"))
}

pub async fn run(client: &Client, command: BuildCommand) -> anyhow::Result<()> {
    match command {
        BuildCommand::List { repo, limit, json } => {
            let mut path = format!("/builds?limit={}", limit.clamp(1, 100));
            if let Some(repo) = repo {
                hangar_core::repo_name::RepoName::parse(&repo)?;
                path.push_str(&format!("&repo={repo}"));
            }
            let v = client.get(&path).await?;
            if json {
                return print_json(&v["items"]);
            }
            let rows: Vec<Vec<String>> = v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| {
                    vec![
                        s(&b["id"]),
                        s(&b["status"]),
                        s(&b["repo"]),
                        format!("{} #{}", s(&b["workflow_name"]), s(&b["number"])),
                        s(&b["ref"]).trim_start_matches("refs/heads/").to_owned(),
                        s(&b["sha"]).chars().take(8).collect(),
                        duration(&b["duration_ms"]),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!(
                    "No builds yet. Push a repository with .github/workflows/*.yml to start one."
                );
                return Ok(());
            }
            table::print(
                &["ID", "STATUS", "REPO", "WORKFLOW", "REF", "COMMIT", "TIME"],
                &rows,
            );
        }
        BuildCommand::Show { id, json } => {
            let v = client.get(&format!("/builds/{}", check_id(&id)?)).await?;
            if json {
                return print_json(&v);
            }
            println!(
                "{} #{}  {}  ({})",
                s(&v["workflow_name"]),
                s(&v["number"]),
                s(&v["status"]),
                s(&v["id"])
            );
            println!(
                "  repo    {}  {} @ {}",
                s(&v["repo"]),
                s(&v["ref"]),
                s(&v["sha"])
            );
            println!("  file    {}", s(&v["workflow_file"]));
            if let Some(error) = v["error"].as_str() {
                println!("  error   {error}");
            }
            for job in v["jobs"].as_array().into_iter().flatten() {
                println!(
                    "\n  job {}  {}  {}  ({})",
                    s(&job["name"]),
                    s(&job["status"]),
                    duration(&job["duration_ms"]),
                    s(&job["id"])
                );
                if let Some(reason) = job["reason"].as_str() {
                    println!("    {reason}");
                }
                for step in job["steps"].as_array().into_iter().flatten() {
                    println!(
                        "    {:>2}. {:<40} {:<10} {}",
                        s(&step["number"]),
                        s(&step["name"]),
                        s(&step["status"]),
                        duration(&step["duration_ms"])
                    );
                }
                for a in job["annotations"].as_array().into_iter().flatten() {
                    let place = match (a["file"].as_str(), a["line"].as_i64()) {
                        (Some(f), Some(l)) => format!("{f}:{l}: "),
                        (Some(f), None) => format!("{f}: "),
                        _ => String::new(),
                    };
                    println!("    {}: {place}{}", s(&a["level"]), s(&a["message"]));
                }
            }
        }
        BuildCommand::Logs { id, job, follow } => {
            let build = client.get(&format!("/builds/{}", check_id(&id)?)).await?;
            let jobs = build["jobs"].as_array().cloned().unwrap_or_default();
            let chosen = match &job {
                Some(j) => jobs
                    .iter()
                    .find(|x| x["id"] == json!(j) || x["name"] == json!(j) || x["key"] == json!(j)),
                None => jobs.first(),
            };
            let Some(chosen) = chosen else {
                anyhow::bail!(
                    "no such job in build {id}; jobs: {}",
                    jobs.iter()
                        .map(|j| s(&j["name"]))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            };
            let path = format!("/builds/{}/jobs/{}/log", s(&build["id"]), s(&chosen["id"]));
            if !follow {
                print!("{}", client.text(&path).await?);
                return Ok(());
            }
            let mut stream = client.stream(&format!("{path}?follow=1")).await?;
            let mut buffer = String::new();
            while let Some(chunk) = stream.next().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk?));
                while let Some(end) = buffer.find("\n\n") {
                    let event: String = buffer.drain(..end + 2).collect();
                    if event.lines().any(|l| l == "event: end") {
                        return Ok(());
                    }
                    for line in event
                        .lines()
                        .filter_map(|l| l.strip_prefix("data: ").or(l.strip_prefix("data:")))
                    {
                        println!("{line}");
                    }
                }
            }
        }
        BuildCommand::Artifacts { id, json } => {
            let v = client
                .get(&format!("/builds/{}/artifacts", check_id(&id)?))
                .await?;
            if json {
                return print_json(&v["items"]);
            }
            let rows: Vec<Vec<String>> = v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    vec![
                        s(&a["name"]),
                        s(&a["files"]),
                        crate::build::artifacts::human_size(a["size"].as_u64().unwrap_or(0)),
                        s(&a["expires_at"]),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!(
                    "Build {id} has no artifacts (steps upload them with actions/upload-artifact)."
                );
                return Ok(());
            }
            table::print(&["NAME", "FILES", "SIZE", "EXPIRES"], &rows);
        }
        BuildCommand::Download { id, name, dir } => {
            crate::build::artifacts::check_name(&name).map_err(anyhow::Error::msg)?;
            let dir = dir.unwrap_or_else(|| std::path::PathBuf::from(&name));
            let path = format!("/builds/{}/artifacts/{name}", check_id(&id)?);
            let mut stream = client.stream(&path).await?;
            let mut archive = tempfile::NamedTempFile::new()?;
            while let Some(chunk) = stream.next().await {
                std::io::Write::write_all(&mut archive, &chunk?)?;
            }
            let target = dir.clone();
            let files =
                crate::build::archive::extract(archive.path(), |entry| Some(target.join(entry)))
                    .map_err(anyhow::Error::msg)?;
            println!("Unpacked {files} files of `{name}` into {}", dir.display());
        }
        BuildCommand::Cancel { id } => {
            client
                .call(
                    Method::POST,
                    &format!("/builds/{}/cancel", check_id(&id)?),
                    None,
                )
                .await?;
            println!("Cancelling build {id}");
        }
        BuildCommand::Rerun { id, failed } => {
            let v = client
                .call(
                    Method::POST,
                    &format!(
                        "/builds/{}/rerun?failed={}",
                        check_id(&id)?,
                        u8::from(failed)
                    ),
                    None,
                )
                .await?;
            println!(
                "Queued build {} ({} #{})",
                s(&v["id"]),
                s(&v["workflow_name"]),
                s(&v["number"])
            );
        }
        BuildCommand::Run {
            repo,
            git_ref,
            workflow,
            inputs,
            json,
        } => {
            let name = hangar_core::repo_name::RepoName::parse(&repo)?;
            let mut map = serde_json::Map::new();
            for input in inputs {
                let (k, v) = input
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--input {input:?} must be KEY=VALUE"))?;
                map.insert(k.to_owned(), Value::String(v.to_owned()));
            }
            let body = json!({ "ref": git_ref, "workflow": workflow, "inputs": map });
            let v = client
                .call(
                    Method::POST,
                    &format!("/repos/{}/{}/builds", name.owner(), name.name()),
                    Some(body),
                )
                .await?;
            if json {
                return print_json(&v["items"]);
            }
            for b in v["items"].as_array().into_iter().flatten() {
                println!(
                    "Queued build {} ({} #{})",
                    s(&b["id"]),
                    s(&b["workflow_name"]),
                    s(&b["number"])
                );
            }
        }
    }
    Ok(())
}

fn duration(ms: &Value) -> String {
    match ms.as_i64() {
        Some(ms) if ms >= 60_000 => format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000),
        Some(ms) => format!("{:.1}s", ms as f64 / 1000.0),
        None => "-".to_owned(),
    }
}
