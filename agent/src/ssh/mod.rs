//! Git over SSH: a russh server that authenticates users by their stored
//! public keys and runs `git-upload-pack`, `git-receive-pack` and
//! `git-upload-archive` only. It never offers a shell, a terminal,
//! environment variables besides GIT_PROTOCOL, or any kind of forwarding.

mod command;
mod exec;
mod session;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{Algorithm, PrivateKey};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::agent::Agent;
use session::Connection;

/// Time a client gets from connecting to being authenticated.
const LOGIN_GRACE: Duration = Duration::from_secs(30);
/// A connection with no traffic for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Authentication attempts per connection (OpenSSH's MaxAuthTries).
const MAX_AUTH_ATTEMPTS: usize = 6;

/// The ed25519 host key in the data dir, created (0600) on first run.
pub fn host_key(path: &Path) -> anyhow::Result<PrivateKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let key = PrivateKey::from_openssh(text.as_bytes())
                .with_context(|| format!("{} is not an OpenSSH private key", path.display()))?;
            anyhow::ensure!(
                key.algorithm() == Algorithm::Ed25519,
                "{} is not an ed25519 key; remove it to have a new one made",
                path.display()
            );
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = PrivateKey::from(Ed25519Keypair::from_seed(&rand::random()));
            crate::agent::write_private(path, key.to_openssh(LineEnding::LF)?.as_bytes())?;
            tracing::info!(path = %path.display(), "created the SSH host key");
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The `SHA256:...` fingerprint users compare when ssh first asks about the host.
pub fn fingerprint(key: &PrivateKey) -> String {
    hangar_core::store::ssh_keys::fingerprint(key.public_key())
}

fn config(host_key: PrivateKey) -> russh::server::Config {
    russh::server::Config {
        server_id: russh::SshId::Standard(
            concat!("SSH-2.0-Hangar_", env!("CARGO_PKG_VERSION")).into(),
        ),
        methods: Connection::methods(),
        // Unknown keys are refused after a short constant delay; OpenSSH's
        // first "none" probe is answered at once so logins stay fast.
        auth_rejection_time: Duration::from_millis(100),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![host_key],
        max_auth_attempts: MAX_AUTH_ATTEMPTS,
        inactivity_timeout: Some(IDLE_TIMEOUT),
        nodelay: true,
        ..Default::default()
    }
}

/// Serves SSH on `listener` until `stop`, then gives open sessions `grace` to
/// finish before disconnecting them.
pub async fn serve(
    agent: Arc<Agent>,
    listener: TcpListener,
    host_key: PrivateKey,
    mut stop: watch::Receiver<bool>,
) {
    let config = Arc::new(config(host_key));
    let sessions = Arc::new(Semaphore::new(agent.settings.ssh_max_sessions));
    let (force, forced) = watch::channel(false);
    let mut running = JoinSet::new();
    loop {
        tokio::select! {
            _ = async { stop.wait_for(|stop| *stop).await.is_ok() } => break,
            Some(_) = running.join_next(), if !running.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!("ssh accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(permit) = sessions.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "refusing an SSH connection: ssh_max_sessions ({}) reached", agent.settings.ssh_max_sessions);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (authenticated, login) = watch::channel(false);
                let handler = Connection::new(agent.clone(), Some(peer), authenticated);
                let config = config.clone();
                let forced = forced.clone();
                running.spawn(async move {
                    connection(config, stream, handler, login, forced).await;
                    drop(permit);
                });
            }
        }
    }
    let grace = Duration::from_secs(agent.settings.shutdown_grace_secs);
    let drained = tokio::time::timeout(grace, async {
        while running.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("ssh sessions still running after {grace:?}; disconnecting them");
        let _ = force.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while running.join_next().await.is_some() {}
        })
        .await;
    }
}

/// One connection, from the SSH banner to the end; cut off when it does not
/// authenticate within [`LOGIN_GRACE`] or when the agent stops.
async fn connection(
    config: Arc<russh::server::Config>,
    stream: tokio::net::TcpStream,
    handler: Connection,
    mut login: watch::Receiver<bool>,
    mut forced: watch::Receiver<bool>,
) {
    let session = match tokio::time::timeout(
        LOGIN_GRACE,
        russh::server::run_stream(config, stream, handler),
    )
    .await
    {
        Ok(Ok(session)) => session,
        Ok(Err(e)) => {
            tracing::debug!("ssh handshake failed: {e}");
            return;
        }
        Err(_) => return,
    };
    let handle = session.handle();
    tokio::pin!(session);
    let disconnect = |why: &'static str| {
        let handle = handle.clone();
        async move {
            let _ = handle
                .disconnect(russh::Disconnect::ByApplication, why.into(), "en".into())
                .await;
        }
    };
    tokio::select! {
        _ = &mut session => return,
        logged_in = tokio::time::timeout(LOGIN_GRACE, async { login.wait_for(|ok| *ok).await.is_ok() }) => {
            if logged_in.is_err() {
                disconnect("authentication took too long").await;
            }
        }
    }
    tokio::select! {
        _ = &mut session => {}
        _ = async { forced.wait_for(|f| *f).await.is_ok() } => disconnect("the agent is shutting down").await,
    }
}
