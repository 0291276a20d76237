//! `GET /api/v1/host`: the machine the agent runs on (CPU, memory, the data
//! dir's disk, load) and the build queue against the executor slots.

use std::sync::Arc;

use hangar_core::store::builds;
use sysinfo::System;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::api::json_reply;
use super::auth::{Caller, caller};
use super::error::{ApiError, ApiResult};
use crate::agent::Agent;
use crate::host::{Disk, data_disk, system};

pub fn routes(agent: Arc<Agent>) -> warp::filters::BoxedFilter<(Response,)> {
    super::api_v1()
        .and(warp::path!("host"))
        .and(warp::get())
        .and(super::with_agent(agent.clone()))
        .and(caller(agent))
        .then(host)
        .map(|r: ApiResult| r.unwrap_or_else(ApiError::into_response))
        .boxed()
}

/// What `/api/v1/host` reports about the machine.
#[derive(Debug, serde::Serialize)]
struct Machine {
    hostname: Option<String>,
    os: Option<String>,
    cpus: usize,
    cpu_percent: f32,
    memory_total: u64,
    memory_used: u64,
    load: [f64; 3],
    uptime_secs: u64,
    disk: Option<Disk>,
}

fn measure(data_dir: &std::path::Path) -> Machine {
    let (cpus, cpu_percent, memory_total, memory_used) = {
        let mut guard = system().lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_mut() {
            Some(system) => {
                system.refresh_cpu_usage();
                system.refresh_memory();
                (
                    system.cpus().len(),
                    system.global_cpu_usage(),
                    system.total_memory(),
                    system.used_memory(),
                )
            }
            None => (0, 0.0, 0, 0),
        }
    };
    let load = System::load_average()
        .map(|l| [l.one, l.five, l.fifteen])
        .unwrap_or_default();
    let disk = data_disk(data_dir);
    Machine {
        hostname: System::host_name().ok(),
        os: System::long_os_version().ok(),
        cpus,
        cpu_percent,
        memory_total,
        memory_used,
        load,
        uptime_secs: System::uptime().unwrap_or_default(),
        disk,
    }
}

async fn host(agent: Arc<Agent>, caller: Caller) -> ApiResult {
    caller.require()?;
    let root = agent.data.root().to_owned();
    let machine = tokio::task::spawn_blocking(move || {
        let root = std::fs::canonicalize(&root).unwrap_or(root);
        measure(&root)
    })
    .await?;
    let queued = agent
        .db(|a| a.store.read(builds::queued_jobs).map_err(ApiError::from))
        .await?
        .len();
    json_reply(
        StatusCode::OK,
        &serde_json::json!({
            "machine": machine,
            "queued_jobs": queued,
            "executors": [{
                "name": "host",
                "slots": agent.settings.host_slots,
                "busy": agent.builds.busy("host"),
            }],
        }),
    )
}
