//! Where the agent keeps its data, per platform.

use std::path::{Path, PathBuf};

/// The default data dir: `~/Library/Application Support/Hangar` on macOS,
/// `$XDG_DATA_HOME/hangar` (or `~/.local/share/hangar`) elsewhere.
pub fn default_dir() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from);
    if cfg!(target_os = "macos") {
        return home.map(|h| h.join("Library/Application Support/Hangar"));
    }
    match std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir).join("hangar")),
        None => home.map(|h| h.join(".local/share/hangar")),
    }
}

/// The layout inside a data dir.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn database(&self) -> PathBuf {
        self.root.join("hangar.db")
    }

    pub fn repos(&self) -> PathBuf {
        self.root.join("repos")
    }

    pub fn config_file(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// `{"url", "token"}` for local clients (CLI, desktop app), mode 0600.
    pub fn agent_file(&self) -> PathBuf {
        self.root.join("agent.json")
    }
}
