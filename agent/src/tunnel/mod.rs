//! Tunnels that make `/hooks/*` reachable from the internet when the Mac has
//! no public address: the [`ssh`] reverse tunnel to a server the user owns,
//! or the [`relay`] client for smee.io-style channels. Whatever arrives goes
//! to this agent's own receivers, so it is verified and stored exactly like
//! a direct delivery.

pub mod relay;
pub mod ssh;

use std::sync::Mutex;

use serde::Serialize;

/// What `hangar tunnel status` shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TunnelStatus {
    /// `ssh`, `relay`, or `none` when no tunnel is configured.
    pub kind: &'static str,
    /// The URL forges post to (the relay channel; for `ssh`, `public_url`).
    pub public_url: Option<String>,
    pub connected: bool,
    /// Deliveries carried since the agent started.
    pub deliveries: u64,
    pub last_delivery: Option<String>,
    /// Why the tunnel is down, or went down last, in plain words.
    pub last_error: Option<String>,
    /// `ssh`: the server, `user@host:port`.
    pub server: Option<String>,
    /// `ssh`: where the server listens for webhooks, `address:port`.
    pub remote_listen: Option<String>,
    /// `ssh`: when the current (or last) session started.
    pub last_connected: Option<String>,
}

/// The tunnel's live state.
#[derive(Default)]
pub struct Tunnel {
    status: Mutex<TunnelStatus>,
    /// Wakes a waiting tunnel to retry now (a new SSH client key).
    wake: tokio::sync::Notify,
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

    /// Records that the tunnel is down, and why.
    fn down(&self, why: String) {
        self.update(|s| {
            s.connected = false;
            s.last_error = Some(why);
        });
    }

    fn update(&self, f: impl FnOnce(&mut TunnelStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }
}
