//! Starting and stopping the agent, and the state its parts share.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hangar_core::config::Settings;
use hangar_core::data_dir::DataDir;
use hangar_core::store::{Store, tokens, users};
use tokio::sync::watch;

use crate::git::maintenance::Maintenance;

/// What `start` needs: where the data lives and the settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub settings: Settings,
}

/// State shared by every request handler and background task.
pub struct Agent {
    pub data: DataDir,
    pub store: Store,
    pub settings: Settings,
    pub maintenance: Maintenance,
    pub builds: crate::build::Builds,
    pub mirrors: crate::mirror::Mirrors,
    /// Status changes for `/api/v1/events`.
    pub changes: crate::changes::Changes,
    /// Webhook secrets and the delivery worker's wake-up.
    pub hooks: crate::hooks::Hooks,
    pub tunnel: crate::tunnel::Tunnel,
    /// Mirror credentials (Keychain on macOS, encrypted file elsewhere).
    pub secrets: Box<dyn hangar_core::secrets::SecretStore>,
    pub started: Instant,
    /// The URL local clients use (what `agent.json` holds).
    pub url: String,
    /// The SSH server, unless turned off with `no_ssh`.
    pub ssh: Option<SshEndpoint>,
}

/// Where git over SSH is served and the host key clients should see.
#[derive(Debug, Clone)]
pub struct SshEndpoint {
    pub addr: SocketAddr,
    /// `SHA256:...` of the host key.
    pub fingerprint: String,
}

impl SshEndpoint {
    /// `ssh://git@HOST:PORT`, the prefix of SSH clone URLs, for local clients.
    pub fn url(&self) -> String {
        local_url("ssh://git@", self.addr)
    }
}

impl Agent {
    /// Runs a blocking store operation off the async threads.
    pub async fn db<T, E>(
        self: &Arc<Self>,
        f: impl FnOnce(&Agent) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: Send + 'static + From<tokio::task::JoinError>,
    {
        let agent = self.clone();
        tokio::task::spawn_blocking(move || f(&agent)).await?
    }
}

/// A running agent.
pub struct Running {
    pub agent: Arc<Agent>,
    pub http_addr: SocketAddr,
    pub ssh_addr: Option<SocketAddr>,
    /// The admin token, when this start created it (first run).
    pub first_run_token: Option<String>,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    scheduler: tokio::task::JoinHandle<()>,
    ssh_server: Option<tokio::task::JoinHandle<()>>,
    /// The webhook worker and the commit-status sender.
    forge_tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish within the grace period,
    /// then returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        // Event streams never end on their own: close them so the server can.
        self.agent.changes.closed.cancel();
        let grace = Duration::from_secs(self.agent.settings.shutdown_grace_secs);
        if tokio::time::timeout(grace, self.server).await.is_err() {
            tracing::warn!("requests still running after {grace:?}; cutting them off");
        }
        // Running jobs are killed; their rows stay `running` and the next
        // start queues them again (see `builds::recover`).
        self.agent.builds.stop.cancel();
        let _ = self.scheduler.await;
        for task in self.forge_tasks {
            // Work cut off here is still pending in SQLite for the next start.
            task.abort();
            let _ = task.await;
        }
        self.agent.builds.wait_idle(Duration::from_secs(5)).await;
        if let Some(ssh) = self.ssh_server {
            // The SSH server applies the same grace to its sessions itself.
            let _ = ssh.await;
        }
        self.agent.mirrors.shutdown().await;
        self.agent.maintenance.shutdown().await;
    }
}

/// Opens the data dir and the database, creates the first admin on first run,
/// and starts serving.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    anyhow::ensure!(
        config.settings.relay_url.is_none() || config.settings.tunnel_ssh.is_none(),
        "both relay_url and tunnel_ssh are set: webhooks come through one tunnel; unset one of them"
    );
    let data = DataDir::new(&config.data_dir);
    create_private_dir(data.root())?;
    create_private_dir(&data.repos())?;
    let store = Store::open(&data.database())?;

    let listener = bind(config.settings.http).with_context(|| {
        format!(
            "cannot listen on {} (is another agent running? use --http to pick another address)",
            config.settings.http
        )
    })?;
    let http_addr = listener.local_addr()?;
    let url = local_url("http://", http_addr);
    let ssh = if config.settings.no_ssh {
        None
    } else {
        let listener = bind(config.settings.ssh).with_context(|| {
            format!(
                "cannot listen for SSH on {} (use --ssh to pick another address, or --no-ssh)",
                config.settings.ssh
            )
        })?;
        let host_key = crate::ssh::host_key(&data.root().join("ssh_host_ed25519_key"))?;
        let endpoint = SshEndpoint {
            addr: listener.local_addr()?,
            fingerprint: crate::ssh::fingerprint(&host_key),
        };
        Some((listener, host_key, endpoint))
    };
    let ssh_addr = ssh.as_ref().map(|(_, _, e)| e.addr.to_string());
    let first_run_token = bootstrap(&store, &data, &url, ssh_addr.as_deref())?;

    let secrets = hangar_core::secrets::platform_store(data.root())?;
    let agent = Arc::new(Agent {
        maintenance: Maintenance::start(config.settings.maintenance),
        builds: crate::build::Builds::load(data.root()),
        mirrors: crate::mirror::Mirrors::new(config.settings.mirror_concurrency),
        changes: crate::changes::Changes::default(),
        hooks: crate::hooks::Hooks::default(),
        tunnel: crate::tunnel::Tunnel::default(),
        secrets,
        data,
        store,
        settings: config.settings,
        started: Instant::now(),
        url,
        ssh: ssh.as_ref().map(|(_, _, e)| e.clone()),
    });

    let scheduler = crate::build::scheduler::start(agent.clone());
    tokio::spawn(crate::build::artifacts::clean_expired(agent.clone()));
    crate::mirror::Mirrors::start(&agent).await?;
    agent
        .hooks
        .secrets
        .reload(&agent)
        .context("cannot load the forges' webhook secrets")?;
    let mut forge_tasks = vec![
        crate::hooks::worker::start(agent.clone()),
        crate::forges::statuses::start(agent.clone()),
        tokio::spawn(crate::forges::hosted::register_all(agent.clone())),
    ];
    if let Some(channel) = agent.settings.relay_url.clone() {
        forge_tasks.push(crate::tunnel::relay::start(agent.clone(), channel));
    }
    if let Some(target) = agent.settings.tunnel_ssh.clone() {
        // The tunnel dials the HTTP listener on loopback, whatever it binds.
        let mut local = http_addr;
        if local.ip().is_unspecified() {
            local.set_ip(if local.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        forge_tasks.push(crate::tunnel::ssh::start(agent.clone(), target, local));
    }

    let (stop, mut stopped) = watch::channel(false);
    let routes = crate::http::routes(agent.clone());
    let server = warp::serve(routes).incoming(listener).graceful(async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    });
    let server = tokio::spawn(server.run());
    let ssh_server = ssh.map(|(listener, host_key, _)| {
        tokio::spawn(crate::ssh::serve(
            agent.clone(),
            listener,
            host_key,
            stop.subscribe(),
        ))
    });
    Ok(Running {
        ssh_addr: agent.ssh.as_ref().map(|e| e.addr),
        agent,
        http_addr,
        first_run_token,
        stop,
        server,
        scheduler,
        ssh_server,
        forge_tasks,
    })
}

/// Binds with TCP_NODELAY on the listener: Linux and macOS copy it to accepted
/// sockets, so small pkt-line writes are not held back by Nagle's algorithm.
fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// `scheme` + the address local clients use: loopback for wildcard addresses.
fn local_url(scheme: &str, addr: SocketAddr) -> String {
    let ip = if addr.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        addr.ip().to_string()
    };
    if addr.is_ipv6() && !addr.ip().is_unspecified() {
        format!("{scheme}[{ip}]:{}", addr.port())
    } else {
        format!("{scheme}{ip}:{}", addr.port())
    }
}

fn create_private_dir(path: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// On first run: an admin user and token. Whenever `agent.json` is missing (or
/// names another address): a fresh local token for it, so the CLI and the
/// desktop app can find the agent.
fn bootstrap(
    store: &Store,
    data: &DataDir,
    url: &str,
    ssh: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let existing = read_agent_file(data);
    if let Some(file) = &existing
        && store
            .read(|c| tokens::authenticate(c, &file.token))?
            .is_some()
    {
        if file.url != url || file.ssh.as_deref() != ssh {
            write_agent_file(data, url, ssh, &file.token)?;
        }
        return Ok(None);
    }
    let (first_run, secret) = store.write(|tx| {
        let first_run = users::count(tx)? == 0;
        let admin = match users::list(tx)?
            .into_iter()
            .find(|u| u.role == users::Role::Admin)
        {
            Some(admin) => admin,
            None => users::create(tx, "admin", users::Role::Admin)?,
        };
        let (_, secret) = tokens::create(tx, admin.id, "local (agent.json)")?;
        Ok::<_, hangar_core::store::StoreError>((first_run, secret))
    })?;
    write_agent_file(data, url, ssh, &secret)?;
    Ok(first_run.then_some(secret))
}

/// What `agent.json` holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AgentFile {
    pub url: String,
    pub token: String,
    /// The SSH server's `ADDRESS:PORT`, when it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<String>,
}

pub fn read_agent_file(data: &DataDir) -> Option<AgentFile> {
    let text = std::fs::read_to_string(data.agent_file()).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_agent_file(
    data: &DataDir,
    url: &str,
    ssh: Option<&str>,
    token: &str,
) -> anyhow::Result<()> {
    let path = data.agent_file();
    let body = serde_json::to_string_pretty(&AgentFile {
        url: url.to_owned(),
        token: token.to_owned(),
        ssh: ssh.map(str::to_owned),
    })?;
    write_private(&path, body.as_bytes())
}

/// Writes a 0600 file atomically (a temp file, synced, then renamed).
pub(crate) fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn local_url_uses_loopback_for_wildcards() {
        assert_eq!(
            super::local_url("http://", "0.0.0.0:7070".parse().unwrap()),
            "http://127.0.0.1:7070"
        );
        assert_eq!(
            super::local_url("http://", "[::1]:80".parse().unwrap()),
            "http://[::1]:80"
        );
    }
}
