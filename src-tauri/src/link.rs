//! The app's link to its agent: attach to the one already serving this data
//! dir (its `agent.json` and `/healthz`), or start one inside the app.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use hangar_agent::agent::{AgentFile, read_agent_file};
use hangar_core::config::Settings;
use hangar_core::data_dir::DataDir;
use serde::de::DeserializeOwned;

use crate::status::{Build, Mirror, Snapshot};

struct Clients {
    api: reqwest::Client,
    stream: reqwest::Client,
}

/// How the app reaches the agent's API.
pub struct Link {
    pub url: String,
    token: String,
    pub data_dir: PathBuf,
    http: reqwest::Client,
    /// For the event stream: no overall timeout (the stream is endless);
    /// the tray times out reads instead.
    stream: reqwest::Client,
    /// Whether this app started the agent (quitting the app then stops it).
    pub owns_agent: bool,
    owned: tokio::sync::Mutex<Option<hangar_agent::Running>>,
}

impl Link {
    /// Attaches to a healthy agent of `data_dir`, or starts one in-process.
    pub async fn connect(data_dir: PathBuf) -> anyhow::Result<Link> {
        let http = Clients {
            api: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
            stream: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()?,
        };
        let data = DataDir::new(&data_dir);
        if let Some(file) = read_agent_file(&data)
            && healthy(&http.api, &file.url).await
        {
            tracing::info!(url = %file.url, "attached to the running agent");
            return Ok(Self::new(file, data_dir, http, None));
        }
        let settings = Settings::load(&data.config_file(), std::env::vars())?;
        let running = hangar_agent::start(hangar_agent::Config {
            data_dir: data_dir.clone(),
            settings,
        })
        .await
        .context("cannot start the agent inside the app")?;
        let file = read_agent_file(&data).with_context(|| {
            format!(
                "the agent started but {} is unreadable",
                data.agent_file().display()
            )
        })?;
        tracing::info!(url = %file.url, "started the agent in the app");
        Ok(Self::new(file, data_dir, http, Some(running)))
    }

    fn new(
        file: AgentFile,
        data_dir: PathBuf,
        http: Clients,
        owned: Option<hangar_agent::Running>,
    ) -> Link {
        Link {
            url: file.url,
            token: file.token,
            data_dir,
            http: http.api,
            stream: http.stream,
            owns_agent: owned.is_some(),
            owned: tokio::sync::Mutex::new(owned),
        }
    }

    /// The token the window signs in with. Never logged, never in a URL.
    pub fn token(&self) -> &str {
        &self.token
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status();
        anyhow::ensure!(status.is_success(), "GET {path}: HTTP {status}");
        Ok(response.json().await?)
    }

    pub async fn post(&self, path: &str) -> anyhow::Result<()> {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        anyhow::ensure!(status.is_success(), "POST {path}: HTTP {status}");
        Ok(())
    }

    /// Opens the agent's event stream (`GET /api/v1/events`).
    pub async fn events(&self) -> anyhow::Result<reqwest::Response> {
        let path = "/api/v1/events";
        let response = self
            .stream
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status();
        anyhow::ensure!(status.is_success(), "GET {path}: HTTP {status}");
        Ok(response)
    }

    /// One look at the agent for the tray.
    pub async fn snapshot(&self) -> anyhow::Result<Snapshot> {
        #[derive(serde::Deserialize)]
        struct Items<T> {
            items: Vec<T>,
        }
        #[derive(serde::Deserialize)]
        struct Queue {
            paused: bool,
        }
        let (builds, mirrors, queue) = tokio::try_join!(
            self.get::<Items<Build>>("/api/v1/builds?limit=30"),
            self.get::<Items<Mirror>>("/api/v1/mirrors"),
            self.get::<Queue>("/api/v1/queue"),
        )?;
        Ok(Snapshot {
            paused: queue.paused,
            builds: builds.items,
            mirrors: mirrors.items,
        })
    }

    /// Clone URLs of the first repositories, as (name, URL).
    pub async fn clone_urls(&self) -> anyhow::Result<Vec<(String, String)>> {
        #[derive(serde::Deserialize)]
        struct Repo {
            full_name: String,
            clone_url: String,
        }
        #[derive(serde::Deserialize)]
        struct Items {
            items: Vec<Repo>,
        }
        let repos: Items = self.get("/api/v1/repos?limit=10").await?;
        Ok(repos
            .items
            .into_iter()
            .map(|r| (r.full_name, r.clone_url))
            .collect())
    }

    /// Stops the agent this app started, if any.
    pub async fn stop_owned(&self) {
        if let Some(running) = self.owned.lock().await.take() {
            tracing::info!("stopping the agent");
            running.shutdown().await;
        }
    }
}

async fn healthy(http: &reqwest::Client, url: &str) -> bool {
    http.get(format!("{url}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// The data dir: `HANGAR_DATA_DIR` or the platform default.
pub fn data_dir() -> anyhow::Result<PathBuf> {
    hangar_agent::cli::data_dir(std::env::var_os("HANGAR_DATA_DIR").map(PathBuf::from))
}

/// The script the window runs before the dashboard's own scripts: it hands
/// the dashboard its token (only on the agent's origin), so the window is
/// signed in without the token ever being in a URL or on disk in the webview.
pub fn sign_in_script(url: &str, token: &str) -> String {
    let origin = serde_json::Value::from(url.trim_end_matches('/')).to_string();
    let token = serde_json::Value::from(token).to_string();
    format!(
        "if (window.location.origin === {origin}) {{ Object.defineProperty(window, '__HANGAR_DESKTOP__', {{ value: Object.freeze({{ token: {token} }}) }}); }}"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn sign_in_script_checks_the_origin_and_escapes() {
        let script = super::sign_in_script("http://127.0.0.1:7070/", "hgr_a\"b");
        assert!(script.starts_with("if (window.location.origin === \"http://127.0.0.1:7070\")"));
        assert!(script.contains(r#"token: "hgr_a\"b""#));
    }
}
