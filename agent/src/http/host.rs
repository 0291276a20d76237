//! `GET /api/v1/host`: the machine the agent runs on (CPU, memory, the data
//! dir's disk, load) and the build queue against the executor slots.

use std::sync::{Arc, Mutex, OnceLock};

use hangar_core::store::builds;
use sysinfo::{Disks, System};
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::api::json_reply;
use super::auth::{Caller, caller};
use super::error::{ApiError, ApiResult};
use crate::agent::Agent;

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

/// One `System` for the process (none where the OS refuses to report):
/// CPU usage is measured between two refreshes, so each request reports the
/// usage since the one before.
fn system() -> &'static Mutex<Option<System>> {
    static SYSTEM: OnceLock<Mutex<Option<System>>> = OnceLock::new();
    SYSTEM.get_or_init(|| {
        let system = System::new().ok().map(|mut s| {
            s.refresh_cpu_usage();
            s
        });
        Mutex::new(system)
    })
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

#[derive(Debug, serde::Serialize)]
struct Disk {
    mount_point: String,
    total: u64,
    available: u64,
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
    // The disk that holds the data dir: the longest mount point above it.
    let disks = Disks::new_with_refreshed_list().ok();
    let disk = disks
        .iter()
        .flat_map(|d| d.iter())
        .filter(|d| data_dir.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .map(|d| Disk {
            mount_point: d.mount_point().display().to_string(),
            total: d.total_space(),
            available: d.available_space(),
        });
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
