//! The machine the agent runs on, through `sysinfo`: shared by the
//! dashboard's `/api/v1/host` and the scheduler's admission control.

use std::path::Path;
use std::sync::{Mutex, OnceLock};

use sysinfo::{Disks, System};

/// One `System` for the process (none where the OS refuses to report):
/// CPU usage is measured between two refreshes, so each request reports the
/// usage since the one before.
pub fn system() -> &'static Mutex<Option<System>> {
    static SYSTEM: OnceLock<Mutex<Option<System>>> = OnceLock::new();
    SYSTEM.get_or_init(|| {
        let system = System::new().ok().map(|mut s| {
            s.refresh_cpu_usage();
            s
        });
        Mutex::new(system)
    })
}

/// The disk that holds a directory.
#[derive(Debug, serde::Serialize)]
pub struct Disk {
    pub mount_point: String,
    pub total: u64,
    pub available: u64,
}

/// The disk holding `dir` (canonical): the longest mount point above it.
pub fn data_disk(dir: &Path) -> Option<Disk> {
    let disks = Disks::new_with_refreshed_list().ok()?;
    disks
        .iter()
        .filter(|d| dir.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .map(|d| Disk {
            mount_point: d.mount_point().display().to_string(),
            total: d.total_space(),
            available: d.available_space(),
        })
}

/// Memory available to new processes, in bytes (None where the OS will not say).
pub fn available_memory() -> Option<u64> {
    let mut guard = system().lock().unwrap_or_else(|p| p.into_inner());
    let system = guard.as_mut()?;
    system.refresh_memory();
    Some(system.available_memory())
}
