//! Tunnels that make `/hooks/*` reachable from the internet when the Mac has
//! no public address. Today: the [`relay`] client for smee.io-style channels.
//! Whatever arrives is re-posted to this agent's own receivers, so it is
//! verified and stored exactly like a direct delivery.

pub mod relay;

use std::sync::Mutex;

use serde::Serialize;

/// What `hangar tunnel status` shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TunnelStatus {
    /// `relay`, or `none` when no tunnel is configured.
    pub kind: &'static str,
    /// The URL forges post to (the relay channel).
    pub public_url: Option<String>,
    pub connected: bool,
    /// Events re-posted since the agent started.
    pub deliveries: u64,
    pub last_delivery: Option<String>,
    pub last_error: Option<String>,
}

/// The tunnel's live state.
#[derive(Default)]
pub struct Tunnel {
    status: Mutex<TunnelStatus>,
}

impl Tunnel {
    pub fn status(&self) -> TunnelStatus {
        let status = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if status.kind.is_empty() {
            return TunnelStatus {
                kind: "none",
                ..status
            };
        }
        status
    }

    fn update(&self, f: impl FnOnce(&mut TunnelStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }
}
