//! The SSH reverse tunnel: a russh client that logs in to a server the user
//! owns (`tunnel_ssh`), asks it to listen on `tunnel_remote_port`, and
//! carries each connection made there to this agent's own HTTP listener, so
//! webhooks are verified and stored exactly like direct deliveries.
//!
//! It never talks to a server whose host key is not the pinned one, and it
//! carries only `POST /hooks/github` and `POST /hooks/gitlab`: the API, the
//! UI and git stay off the internet. The client key lives in the SecretStore.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hangar_core::tunnel::{HostKeyPin, SshTarget};
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{
    Algorithm, PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate,
};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::Semaphore;

use crate::agent::Agent;

/// The SecretStore entry holding the client's private key (OpenSSH format).
const KEY_SECRET: &str = "tunnel/ssh-client-key";
/// Longest wait between reconnects.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Time to connect, exchange keys, log in and get the port.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);
/// A silent server is probed this often; three unanswered probes end the session.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// Forwarded connections carried at once; more are refused until one ends.
const MAX_CONNECTIONS: usize = 64;
/// Longest request head read before deciding where a connection may go.
const MAX_HEAD: usize = 16 * 1024;
/// A forwarded connection's whole life (GitHub gives up after 10 s anyway).
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(120);
/// The only paths carried through the tunnel.
const HOOK_PATHS: &[&str] = &["/hooks/github", "/hooks/gitlab"];

/// Runs the tunnel until the agent stops. `http` is the agent's own HTTP
/// listener, reached on loopback.
pub fn start(
    agent: Arc<Agent>,
    target: SshTarget,
    http: SocketAddr,
) -> tokio::task::JoinHandle<()> {
    let listen = format!(
        "{}:{}",
        agent.settings.tunnel_remote_bind, agent.settings.tunnel_remote_port
    );
    agent.tunnel.update(|s| {
        s.kind = "ssh";
        s.public_url = agent.settings.public_url.clone();
        s.server = Some(target.to_string());
        s.remote_listen = Some(listen);
    });
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut backoff = Duration::from_secs(1);
        loop {
            let error = match session(&agent, &target, http, &slots, &mut backoff).await {
                Ok(()) => "the server closed the connection".to_owned(),
                Err(e) => e,
            };
            // Jitter: many agents behind one server do not retry in step.
            let wait = backoff.mul_f64(0.5 + rand::random::<f64>() / 2.0);
            tracing::info!(retry_in = ?wait, "ssh tunnel: {error}");
            agent.tunnel.down(error);
            tokio::select! {
                _ = agent.builds.stop.cancelled() => return,
                // A new client key: try it at once.
                _ = agent.tunnel.wake.notified() => backoff = Duration::from_secs(1),
                _ = tokio::time::sleep(wait) => backoff = (backoff * 2).min(MAX_BACKOFF),
            }
        }
    })
}

/// One connection to the server, from login until it ends; `Err` says in
/// plain words why it could not start or why it broke.
async fn session(
    agent: &Arc<Agent>,
    target: &SshTarget,
    http: SocketAddr,
    slots: &Arc<Semaphore>,
    backoff: &mut Duration,
) -> Result<(), String> {
    let key = client_key(agent)?.ok_or_else(|| {
        format!(
            "no tunnel key yet: run `hangar tunnel key generate` and add the public key it prints to ~{}/.ssh/authorized_keys on {}",
            target.user, target.host
        )
    })?;
    let pin = agent.settings.tunnel_host_key.clone();
    let seen = Arc::new(Mutex::new(None));
    let handler = Client {
        agent: agent.clone(),
        pin: pin.clone(),
        seen: seen.clone(),
        http,
        slots: slots.clone(),
    };
    let config = Arc::new(russh::client::Config {
        keepalive_interval: Some(KEEPALIVE),
        keepalive_max: 3,
        nodelay: true,
        ..Default::default()
    });
    let address = target.address();
    let bind = agent.settings.tunnel_remote_bind.clone();
    let port = agent.settings.tunnel_remote_port;
    let login = async {
        let connected = russh::client::connect(config, address.as_str(), handler).await;
        let mut handle = connected.map_err(|e| {
            let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
            connect_error(target, pin.as_ref(), seen.as_ref(), &e)
        })?;
        let hash = handle
            .best_supported_rsa_hash()
            .await
            .ok()
            .flatten()
            .flatten();
        let public = key.public_key().clone();
        let auth = handle
            .authenticate_publickey(
                &target.user,
                PrivateKeyWithHashAlg::new(Arc::new(key), hash),
            )
            .await
            .map_err(|e| format!("logging in to {target} failed: {e}"))?;
        if !auth.success() {
            return Err(format!(
                "{} refused the tunnel key for user {} ({}): add `{}` to ~{}/.ssh/authorized_keys there",
                target.address(),
                target.user,
                hangar_core::store::ssh_keys::fingerprint(&public),
                public.to_openssh().unwrap_or_default(),
                target.user
            ));
        }
        handle.tcpip_forward(bind.as_str(), u32::from(port)).await.map_err(|e| match e {
            russh::Error::RequestDenied => format!(
                "{} refused to listen on {bind}:{port}: the port is in use there, or its sshd forbids forwarding (AllowTcpForwarding, or GatewayPorts for addresses other than localhost)",
                target.address()
            ),
            other => format!("asking {target} to listen on {bind}:{port} failed: {other}"),
        })?;
        Ok::<_, String>(handle)
    };
    let mut handle = tokio::time::timeout(LOGIN_TIMEOUT, login)
        .await
        .map_err(|_| format!("{target} did not complete the login within {LOGIN_TIMEOUT:?}"))??;
    tracing::info!(%target, "ssh tunnel: connected; the server listens on {bind}:{port}");
    *backoff = Duration::from_secs(1);
    agent.tunnel.update(|s| {
        s.connected = true;
        s.last_error = None;
        s.last_connected = Some(now());
    });
    (&mut handle)
        .await
        .map_err(|e| format!("the connection to {target} broke: {e}"))
}

/// Plain words for a failed connect: above all, a host key that is not the pinned one.
fn connect_error(
    target: &SshTarget,
    pin: Option<&HostKeyPin>,
    seen: Option<&PublicKey>,
    error: &russh::Error,
) -> String {
    if let Some(seen) = seen {
        let offered = hangar_core::store::ssh_keys::fingerprint(seen);
        match pin {
            None => {
                return format!(
                    "the tunnel server's host key is not pinned: {} offered {} ({offered}). Check it on the server (`ssh-keygen -lf /etc/ssh/ssh_host_{}_key.pub`), then set tunnel_host_key = \"{offered}\"",
                    target.address(),
                    seen.to_openssh().unwrap_or_default(),
                    key_file_kind(seen.algorithm()),
                );
            }
            Some(pin) if !pin.matches(seen) => {
                return format!(
                    "host key mismatch: {} offered {offered}, but tunnel_host_key pins {pin}. Nothing was sent. If the server's key changed on purpose, pin the new one; otherwise someone may be intercepting the connection",
                    target.address()
                );
            }
            Some(_) => {}
        }
    }
    match error {
        russh::Error::IO(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => format!(
            "cannot connect to {}: connection refused (is sshd running there, on that port?)",
            target.address()
        ),
        russh::Error::IO(e) => format!("cannot connect to {}: {e}", target.address()),
        other => format!(
            "the SSH handshake with {} failed: {other}",
            target.address()
        ),
    }
}

/// The word in OpenSSH's host key file names (`ssh_host_ed25519_key.pub`).
fn key_file_kind(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::Ecdsa { .. } => "ecdsa",
        Algorithm::Rsa { .. } => "rsa",
        _ => "ed25519",
    }
}

fn now() -> String {
    hangar_core::store::format_ms(hangar_core::store::now_ms())
}

/// The russh client side of one connection.
struct Client {
    agent: Arc<Agent>,
    pin: Option<HostKeyPin>,
    /// The host key the server offered, for the error message.
    seen: Arc<Mutex<Option<PublicKey>>>,
    http: SocketAddr,
    slots: Arc<Semaphore>,
}

impl russh::client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Ok(false);
        };
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(key.clone());
        Ok(self.pin.as_ref().is_some_and(|pin| pin.matches(key)))
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: russh::Channel<russh::client::Msg>,
        _connected_address: &str,
        _connected_port: u32,
        originator_address: &str,
        _originator_port: u32,
        reply: russh::client::ChannelOpenHandle,
        _session: &mut russh::client::Session,
    ) -> Result<(), Self::Error> {
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            tracing::warn!("ssh tunnel: {MAX_CONNECTIONS} connections open; refusing another");
            reply
                .reject(russh::ChannelOpenFailure::ResourceShortage)
                .await;
            return Ok(());
        };
        reply.accept().await;
        let (agent, http) = (self.agent.clone(), self.http);
        let from = originator_address.to_owned();
        tokio::spawn(async move {
            let carried =
                tokio::time::timeout(CONNECTION_TIMEOUT, carry(&agent, channel, http)).await;
            match carried {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::info!(%from, "ssh tunnel: a forwarded connection failed: {e}")
                }
                Err(_) => tracing::info!(%from, "ssh tunnel: a forwarded connection timed out"),
            }
            drop(permit);
        });
        Ok(())
    }
}

/// Carries one forwarded connection to the agent's receiver if it is a
/// webhook delivery; anything else gets a 404 from here.
async fn carry(
    agent: &Agent,
    channel: russh::Channel<russh::client::Msg>,
    http: SocketAddr,
) -> std::io::Result<()> {
    let mut remote = channel.into_stream();
    let (head, rest) = read_head(&mut remote).await?;
    let Some(head) = hook_request(&head) else {
        let message = "Only POST /hooks/github and /hooks/gitlab are served through this tunnel.\n";
        let answer = format!(
            "HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{message}",
            message.len()
        );
        remote.write_all(answer.as_bytes()).await?;
        return remote.shutdown().await;
    };
    agent.tunnel.update(|s| {
        s.deliveries += 1;
        s.last_delivery = Some(now());
    });
    let mut local = tokio::net::TcpStream::connect(http).await?;
    local.set_nodelay(true)?;
    local.write_all(&head).await?;
    local.write_all(&rest).await?;
    tokio::io::copy_bidirectional(&mut remote, &mut local).await?;
    Ok(())
}

/// Reads until the end of the request head; returns the head (through the
/// blank line) and whatever body bytes came with it.
async fn read_head(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((buf, rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(std::io::Error::other("request head too large"));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The head to send on when `head` is `POST /hooks/github` or
/// `/hooks/gitlab`: the same, but asking the agent to close the connection
/// after answering, so no second request can follow it to another path.
fn hook_request(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    // A bare LF or CR could smuggle a header past the filter below.
    if text
        .split("\r\n")
        .any(|l| l.bytes().any(|b| b.is_ascii_control() && b != b'\t'))
    {
        return None;
    }
    let mut lines = text.split("\r\n");
    let request_line = lines.next()?;
    let mut parts = request_line.split(' ');
    let (method, path, version) = (parts.next()?, parts.next()?, parts.next()?);
    if method != "POST"
        || !HOOK_PATHS.contains(&path)
        || !version.starts_with("HTTP/1.")
        || parts.next().is_some()
    {
        return None;
    }
    let mut out = format!("{request_line}\r\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or_default().trim();
        if !name.eq_ignore_ascii_case("connection") && !name.eq_ignore_ascii_case("keep-alive") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("connection: close\r\n\r\n");
    Some(out.into_bytes())
}

/// The client key from the SecretStore, if one was made or imported.
fn client_key(agent: &Agent) -> Result<Option<PrivateKey>, String> {
    let text = agent
        .secrets
        .get(KEY_SECRET)
        .map_err(|e| format!("cannot read the tunnel key from the secret store: {e}"))?;
    text.map(|t| {
        PrivateKey::from_openssh(t.as_bytes())
            .map_err(|e| format!("the stored tunnel key is not readable ({e}); make a new one with `hangar tunnel key generate --replace`"))
    })
    .transpose()
}

/// Why a tunnel key could not be set.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "a tunnel key exists already; replacing it locks the tunnel out until the new public key is on the server (`hangar tunnel key generate --replace`, or \"replace\": true)"
    )]
    Exists,
    #[error("{0}")]
    Invalid(String),
    #[error("the secret store failed: {0}")]
    Store(#[from] hangar_core::secrets::SecretError),
}

/// The tunnel's public key in OpenSSH's one-line form, if there is a key.
pub fn public_key(agent: &Agent) -> Result<Option<String>, String> {
    Ok(client_key(agent)?.and_then(|k| k.public_key().to_openssh().ok()))
}

/// Stores a new ed25519 client key, or `private_key` (an unencrypted
/// OpenSSH private key) when given; returns the public key line. The
/// tunnel retries at once with it.
pub fn set_key(
    agent: &Agent,
    private_key: Option<&str>,
    replace: bool,
) -> Result<String, KeyError> {
    if !replace && agent.secrets.get(KEY_SECRET)?.is_some() {
        return Err(KeyError::Exists);
    }
    let mut key = match private_key {
        None => PrivateKey::from(Ed25519Keypair::from_seed(&rand::random())),
        Some(text) => parse_private(text).map_err(KeyError::Invalid)?,
    };
    key.set_comment("hangar-tunnel");
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| KeyError::Invalid(e.to_string()))?;
    agent.secrets.set(KEY_SECRET, &text)?;
    agent.tunnel.wake.notify_one();
    key.public_key()
        .to_openssh()
        .map_err(|e| KeyError::Invalid(e.to_string()))
}

fn parse_private(text: &str) -> Result<PrivateKey, String> {
    if text.len() > hangar_core::store::ssh_keys::MAX_KEY_TEXT {
        return Err("the key file is too large to be an SSH private key".into());
    }
    let key = PrivateKey::from_openssh(text.trim().as_bytes()).map_err(|e| {
        format!("not an OpenSSH private key ({e}); convert it with `ssh-keygen -p -f KEY` (which rewrites it in OpenSSH format)")
    })?;
    if key.is_encrypted() {
        return Err("the key is protected by a passphrase; import an unencrypted copy (`cp KEY COPY && ssh-keygen -p -N '' -f COPY`)".into());
    }
    match key.algorithm() {
        Algorithm::Ed25519 | Algorithm::Ecdsa { .. } | Algorithm::Rsa { .. } => Ok(key),
        other => Err(format!(
            "{} keys are not supported; use ed25519",
            other.as_str()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hook_posts_pass_and_they_close_after_one_request() {
        let head = b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\ncontent-length: 2\r\n\r\n";
        let out = String::from_utf8(hook_request(head).unwrap()).unwrap();
        assert_eq!(
            out,
            "POST /hooks/github HTTP/1.1\r\nHost: x\r\ncontent-length: 2\r\nconnection: close\r\n\r\n"
        );
        for bad in [
            &b"GET /hooks/github HTTP/1.1\r\n\r\n"[..],
            b"POST /api/v1/repos HTTP/1.1\r\n\r\n",
            b"POST /hooks/github/../../api HTTP/1.1\r\n\r\n",
            b"POST /hooks/github?x HTTP/1.1\r\n\r\n",
            b"POST /hooks/github HTTP/1.1 x\r\n\r\n",
            b"POST /hooks/github\r\n\r\n",
            b"\xff\r\n\r\n",
            b"POST /hooks/github HTTP/1.1\r\nA: b\nConnection: keep-alive\r\n\r\n",
        ] {
            assert!(
                hook_request(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[tokio::test]
    async fn heads_are_split_from_the_body_and_capped() {
        let mut input: &[u8] = b"POST /hooks/gitlab HTTP/1.1\r\na: b\r\n\r\n{\"x\":1}";
        let (head, rest) = read_head(&mut input).await.unwrap();
        assert!(head.ends_with(b"\r\n\r\n"));
        assert_eq!(rest, b"{\"x\":1}");
        let huge = vec![b'a'; MAX_HEAD * 2];
        assert!(read_head(&mut huge.as_slice()).await.is_err());
        assert!(read_head(&mut &b"POST / HTTP/1.1\r\n"[..]).await.is_err());
    }

    #[test]
    fn imported_keys_are_checked() {
        let err = parse_private(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nnope\n-----END OPENSSH PRIVATE KEY-----\n",
        )
        .unwrap_err();
        assert!(err.contains("not an OpenSSH private key"), "{err}");
        let key = PrivateKey::from(Ed25519Keypair::from_seed(&[7; 32]));
        let text = key.to_openssh(LineEnding::LF).unwrap();
        assert_eq!(parse_private(&text).unwrap().public_key(), key.public_key());
    }

    proptest::proptest! {
        #[test]
        fn what_passes_is_a_hook_post_that_closes(head in "(POST|GET) /hooks/(github|gitlab|x)[ ?]?HTTP/1\\.1\r\n([a-zA-Z-]{1,10}: [ -~]{0,10}\r\n){0,5}\r\n") {
            if let Some(out) = hook_request(head.as_bytes()) {
                let out = String::from_utf8(out).unwrap();
                proptest::prop_assert!(out.starts_with("POST /hooks/git"));
                proptest::prop_assert_eq!(out.to_ascii_lowercase().matches("connection:").count(), 1);
                proptest::prop_assert!(out.ends_with("connection: close\r\n\r\n"));
            }
        }

        #[test]
        fn any_bytes_are_refused_or_passed_without_panics(head in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = hook_request(&head);
        }
    }
}
