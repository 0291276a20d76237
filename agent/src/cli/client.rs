//! The API client the CLI commands use.

use std::path::PathBuf;

use anyhow::Context as _;
use hangar_core::data_dir::DataDir;
use reqwest::Method;
use serde_json::Value;

pub struct Client {
    url: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// `--url`/`--token` when given, else the data dir's `agent.json`.
    pub fn locate(
        data_dir: Option<PathBuf>,
        url: Option<String>,
        token: Option<String>,
    ) -> anyhow::Result<Self> {
        let file = match &url {
            Some(_) => None,
            None => {
                let dir = super::data_dir(data_dir)?;
                let found = crate::agent::read_agent_file(&DataDir::new(&dir));
                Some(found.with_context(|| {
                    format!(
                        "no agent found: {} has no agent.json. Start one with `hangar serve`, or pass --url and --token",
                        dir.display()
                    )
                })?)
            }
        };
        let url = url
            .or_else(|| file.as_ref().map(|f| f.url.clone()))
            .unwrap_or_default();
        let token = token.or_else(|| file.map(|f| f.token));
        let http = reqwest::Client::builder()
            .user_agent(concat!("hangar-cli/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            token,
            http,
        })
    }

    /// Sends a request to `/api/v1{path}` and returns the JSON answer
    /// (`Null` for empty answers); API errors become their message.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.url));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| {
            format!(
                "cannot reach the agent at {}; is `hangar serve` running?",
                self.url
            )
        })?;
        let status = response.status();
        let text = response.text().await?;
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if !status.is_success() {
            let message = value["error"]["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string());
            anyhow::bail!("{message} (HTTP {})", status.as_u16());
        }
        Ok(value)
    }

    /// A plain-text answer (logs).
    pub async fn text(&self, path: &str) -> anyhow::Result<String> {
        let response = self.send_raw(path).await?;
        Ok(response.text().await?)
    }

    /// A streamed answer (live logs over SSE).
    pub async fn stream(
        &self,
        path: &str,
    ) -> anyhow::Result<impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + use<>>
    {
        Ok(self.send_raw(path).await?.bytes_stream())
    }

    async fn send_raw(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        let mut request = self.http.get(format!("{}/api/v1{path}", self.url));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the agent at {}", self.url))?;
        if !response.status().is_success() {
            let status = response.status().as_u16();
            let value: Value = response.json().await.unwrap_or_default();
            let message = value["error"]["message"]
                .as_str()
                .unwrap_or("request failed")
                .to_owned();
            anyhow::bail!("{message} (HTTP {status})");
        }
        Ok(response)
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, path, None).await
    }
}
