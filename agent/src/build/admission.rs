//! Admission control: a queued job starts only while the host has the free
//! memory, and the data dir's disk the free space, that the settings ask for
//! (`min_free_memory_mb`, `min_free_disk_mb`). Otherwise it stays queued and
//! says why, and starts once there is room again.

use std::path::Path;

use hangar_core::config::Settings;

const MIB: u64 = 1 << 20;

/// Free memory and free space on the data dir's disk, in bytes (None where
/// the OS does not say: then that check is skipped).
#[derive(Debug, Clone, Copy)]
pub struct Free {
    pub memory: Option<u64>,
    pub disk: Option<u64>,
}

/// Reads both (blocking: a few small files under /proc, or host calls).
pub fn measure(data_dir: &Path) -> Free {
    let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    Free {
        memory: crate::host::available_memory(),
        disk: crate::host::data_disk(&dir).map(|d| d.available),
    }
}

/// Why jobs must wait, if they must.
pub fn hold_reason(free: &Free, settings: &Settings) -> Option<String> {
    if let Some(memory) = free.memory
        && memory < settings.min_free_memory_mb.saturating_mul(MIB)
    {
        return Some(format!(
            "waiting for memory: {} MiB free, min_free_memory_mb is {}",
            memory / MIB,
            settings.min_free_memory_mb
        ));
    }
    if let Some(disk) = free.disk
        && disk < settings.min_free_disk_mb.saturating_mul(MIB)
    {
        return Some(format!(
            "waiting for disk space: {} MiB free for the data dir, min_free_disk_mb is {}",
            disk / MIB,
            settings.min_free_disk_mb
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_below_the_thresholds_and_says_which() {
        let settings = Settings {
            min_free_memory_mb: 512,
            min_free_disk_mb: 2048,
            ..Settings::default()
        };
        let free = |memory: Option<u64>, disk: Option<u64>| Free {
            memory: memory.map(|m| m * MIB),
            disk: disk.map(|d| d * MIB),
        };
        assert_eq!(
            hold_reason(&free(Some(4096), Some(10_000)), &settings),
            None
        );
        let memory = hold_reason(&free(Some(100), Some(10_000)), &settings).unwrap();
        assert!(
            memory.contains("100 MiB free, min_free_memory_mb is 512"),
            "{memory}"
        );
        let disk = hold_reason(&free(Some(4096), Some(10)), &settings).unwrap();
        assert!(disk.contains("10 MiB free for the data dir"), "{disk}");
        // Unknown figures never hold jobs back.
        assert_eq!(hold_reason(&free(None, None), &settings), None);
        // Zero turns a check off.
        let off = Settings {
            min_free_memory_mb: 0,
            min_free_disk_mb: 0,
            ..settings
        };
        assert_eq!(hold_reason(&free(Some(0), Some(0)), &off), None);
    }

    #[test]
    fn measures_this_machine() {
        let free = measure(Path::new("."));
        assert!(free.memory.is_some_and(|m| m > 0));
        assert!(free.disk.is_some_and(|d| d > 0));
    }
}
