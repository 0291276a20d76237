//! Sends the commit-status outbox to the forges: oldest first, per job in
//! order (a job's `success` never overtakes its `pending`), each failure
//! retried with exponential backoff (or after the forge's rate-limit reset).
//! Builds never wait for this loop.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use hangar_core::ids::ForgeId;
use hangar_core::store::commit_statuses::{self, Outgoing};
use hangar_core::store::{forges, now_ms};

use super::{CommitStatus, Forge};
use crate::agent::Agent;

/// Longest wait between two attempts of one status.
const MAX_BACKOFF_SECS: u64 = 600;

/// Runs until the agent stops.
pub fn start(agent: Arc<Agent>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut clients: HashMap<ForgeId, Arc<dyn Forge>> = HashMap::new();
        loop {
            if let Err(e) = pass(&agent, &mut clients).await {
                tracing::warn!("commit statuses: {e:#}");
            }
            tokio::select! {
                _ = agent.builds.stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    })
}

/// The delay before attempt `attempts + 1`: 2 s, 4 s, ... up to 10 minutes.
pub fn backoff(attempts: i64) -> Duration {
    let exp = attempts.clamp(0, 20) as u32;
    Duration::from_secs((2u64 << exp.min(16)).min(MAX_BACKOFF_SECS))
}

fn describe(state: &str) -> &'static str {
    match state {
        "pending" => "Waiting or running on Hangar",
        "success" => "Succeeded on Hangar",
        "failure" => "Failed on Hangar",
        _ => "Cancelled or could not run on Hangar",
    }
}

async fn pass(
    agent: &Arc<Agent>,
    clients: &mut HashMap<ForgeId, Arc<dyn Forge>>,
) -> anyhow::Result<()> {
    let rows = agent
        .db(|a| {
            a.store
                .read(|c| commit_statuses::unsent(c, 200))
                .map_err(anyhow::Error::from)
        })
        .await?;
    let mut blocked = HashSet::new();
    let base = agent
        .settings
        .public_url
        .clone()
        .unwrap_or_else(|| agent.url.clone());
    for row in rows {
        if blocked.contains(&row.job_id) {
            continue;
        }
        if row.next_attempt > now_ms() {
            blocked.insert(row.job_id);
            continue;
        }
        let result = send(agent, clients, &row, base.trim_end_matches('/')).await;
        let id = row.id;
        match result {
            Ok(()) => {
                agent
                    .db(move |a| {
                        a.store
                            .write(|tx| commit_statuses::sent(tx, id))
                            .map_err(anyhow::Error::from)
                    })
                    .await?;
            }
            Err((error, retry_after)) => {
                blocked.insert(row.job_id);
                let wait = backoff(row.attempts).max(Duration::from_secs(retry_after));
                tracing::info!(job = %row.job_id, state = %row.state, retry_in = ?wait, "cannot report the commit status: {error}");
                let at = now_ms() + wait.as_millis() as i64;
                agent
                    .db(move |a| {
                        a.store
                            .write(|tx| commit_statuses::failed(tx, id, &error, at))
                            .map_err(anyhow::Error::from)
                    })
                    .await?;
            }
        }
    }
    Ok(())
}

async fn send(
    agent: &Arc<Agent>,
    clients: &mut HashMap<ForgeId, Arc<dyn Forge>>,
    row: &Outgoing,
    base: &str,
) -> Result<(), (String, u64)> {
    let client = match clients.get(&row.forge_id) {
        Some(client) => client.clone(),
        None => {
            let id = row.forge_id;
            let forge = agent
                .db(move |a| {
                    a.store
                        .read(|c| forges::get(c, id))
                        .map_err(anyhow::Error::from)
                })
                .await
                .map_err(|e| (e.to_string(), 0))?
                .ok_or_else(|| ("the forge was removed".to_owned(), 0))?;
            let client =
                super::client(agent.secrets.as_ref(), &forge).map_err(|e| (e.to_string(), 0))?;
            clients.insert(row.forge_id, client.clone());
            client
        }
    };
    let status = CommitStatus {
        state: row.state.clone(),
        context: super::context(&row.workflow, &row.job),
        description: describe(&row.state).to_owned(),
        target_url: format!("{base}/api/v1/builds/{}", row.build_id),
    };
    client
        .set_status(&row.remote, &row.sha, &status)
        .await
        .map_err(|e| (e.to_string(), e.retry_after().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(super::backoff(0).as_secs(), 2);
        assert_eq!(super::backoff(1).as_secs(), 4);
        assert_eq!(super::backoff(30).as_secs(), 600);
    }
}
