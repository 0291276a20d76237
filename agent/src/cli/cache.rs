//! `hangar cache ...`: the `actions/cache` entries kept for repositories.

use clap::Subcommand;
use reqwest::Method;

use super::client::Client;
use super::commands::{print_json, s};
use super::table;
use crate::build::artifacts::human_size;

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Cache entries, most recently used first (all repositories: admin).
    List {
        /// Only this repository (OWNER/NAME).
        #[arg(long)]
        repo: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Delete a repository's cache entries (all, or one key).
    Rm {
        /// OWNER/NAME
        repo: String,
        /// Only entries with this key.
        #[arg(long)]
        key: Option<String>,
    },
}

pub async fn run(client: &Client, command: CacheCommand) -> anyhow::Result<()> {
    match command {
        CacheCommand::List { repo, json } => {
            let path = match &repo {
                Some(repo) => {
                    hangar_core::repo_name::RepoName::parse(repo)?;
                    format!("/caches?repo={repo}")
                }
                None => "/caches".to_owned(),
            };
            let v = client.get(&path).await?;
            if json {
                return print_json(&v["items"]);
            }
            let rows: Vec<Vec<String>> = v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    vec![
                        s(&e["key"]),
                        human_size(e["size"].as_u64().unwrap_or(0)),
                        s(&e["last_used_at"]),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("No cache entries (workflows save them with actions/cache).");
                return Ok(());
            }
            table::print(&["KEY", "SIZE", "LAST USED"], &rows);
        }
        CacheCommand::Rm { repo, key } => {
            hangar_core::repo_name::RepoName::parse(&repo)?;
            let mut url = reqwest::Url::parse("http://x/caches")?;
            url.query_pairs_mut().append_pair("repo", &repo);
            if let Some(key) = &key {
                url.query_pairs_mut().append_pair("key", key);
            }
            let path = format!("/caches?{}", url.query().unwrap_or_default());
            let v = client.call(Method::DELETE, &path, None).await?;
            println!("Deleted {} cache entries of {repo}", s(&v["deleted"]));
        }
    }
    Ok(())
}
