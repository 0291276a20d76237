//! Posts signed GitHub `push` deliveries to an agent's `/hooks/github`, each
//! with its own `X-GitHub-Delivery` (so each is stored), either as fast as
//! the agent answers over `--connections` keep-alive connections, or open
//! loop at `--rate` per second (each delivery is due at its slot whether or
//! not earlier ones were answered, and its latency counts from that slot, so
//! queueing shows). Prints one JSON object: sent, accepted (202), elapsed
//! seconds and latency percentiles in ms. `bench/webhooks.py` drives it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Parser)]
#[command(about = "Signed webhook load for bench/webhooks.py")]
struct Args {
    /// The agent's base URL, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    url: String,
    /// The forge account's webhook secret.
    #[arg(long)]
    secret: String,
    /// Prefix of the delivery ids: distinct per run, so every delivery is new.
    #[arg(long)]
    tag: String,
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Keep-alive connections (flood mode: one sender each).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Deliveries per second, open loop. Without it: as fast as answered.
    #[arg(long)]
    rate: Option<f64>,
}

struct Load {
    client: reqwest::Client,
    endpoint: String,
    secret: Vec<u8>,
    tag: String,
}

impl Load {
    /// Sends delivery `i`; whether the agent answered 202 Accepted.
    async fn post(&self, i: u64) -> bool {
        let body = serde_json::json!({
            "ref": "refs/heads/main", "before": "0".repeat(40), "after": format!("{:040x}", i + 1),
            "repository": {"full_name": "bench/none"}, "pusher": {"name": "bench"},
        })
        .to_string();
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.secret) else {
            return false;
        };
        mac.update(body.as_bytes());
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let answer = self
            .client
            .post(&self.endpoint)
            .header("content-type", "application/json")
            .header("x-github-event", "push")
            .header("x-github-delivery", format!("{}-{i}", self.tag))
            .header("x-github-hook-id", "1")
            .header("x-hub-signature-256", signature)
            .body(body)
            .send()
            .await;
        matches!(answer, Ok(r) if r.status() == reqwest::StatusCode::ACCEPTED)
    }
}

/// Each connection sends its next delivery when the last one is answered.
async fn flood(load: Arc<Load>, seconds: f64, connections: usize) -> Vec<(bool, Duration)> {
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let senders: Vec<_> = (0..connections as u64)
        .map(|c| {
            let load = load.clone();
            tokio::spawn(async move {
                let mut results = Vec::new();
                let mut i = c;
                while Instant::now() < end {
                    let sent = Instant::now();
                    results.push((load.post(i).await, sent.elapsed()));
                    i += connections as u64;
                }
                results
            })
        })
        .collect();
    let mut all = Vec::new();
    for sender in senders {
        all.extend(sender.await.unwrap_or_default());
    }
    all
}

/// Delivery `k` is due at `start + k / rate`, sent then on its own task.
async fn paced(load: Arc<Load>, seconds: f64, rate: f64) -> Vec<(bool, Duration)> {
    let start = tokio::time::Instant::now() + Duration::from_millis(200);
    let total = (rate * seconds) as u64;
    let mut sent = Vec::with_capacity(total as usize);
    for k in 0..total {
        let due = start + Duration::from_secs_f64(k as f64 / rate);
        tokio::time::sleep_until(due).await;
        let load = load.clone();
        sent.push(tokio::spawn(
            async move { (load.post(k).await, due.elapsed()) },
        ));
    }
    let mut all = Vec::with_capacity(sent.len());
    for delivery in sent {
        all.extend(delivery.await.ok());
    }
    all
}

fn percentile_ms(sorted: &[Duration], q: f64) -> f64 {
    let index = ((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(index).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections.max(1))
        .build()
        .context("cannot build the HTTP client")?;
    let load = Arc::new(Load {
        client,
        endpoint: format!("{}/hooks/github", args.url.trim_end_matches('/')),
        secret: args.secret.into_bytes(),
        tag: args.tag,
    });
    let began = Instant::now();
    let results = match args.rate {
        Some(rate) if rate > 0.0 => paced(load, args.seconds, rate).await,
        Some(rate) => anyhow::bail!("--rate must be above 0, not {rate}"),
        None => flood(load, args.seconds, args.connections.max(1)).await,
    };
    let elapsed = began.elapsed().as_secs_f64();
    let mut latencies: Vec<Duration> = results.iter().map(|(_, d)| *d).collect();
    latencies.sort();
    let summary = serde_json::json!({
        "sent": results.len(),
        "accepted": results.iter().filter(|(ok, _)| *ok).count(),
        "elapsed_s": elapsed,
        "latency_ms": {
            "p50": percentile_ms(&latencies, 0.50),
            "p99": percentile_ms(&latencies, 0.99),
            "max": percentile_ms(&latencies, 1.0),
        },
    });
    println!("{summary}");
    Ok(())
}
