//! One SSH connection: public-key authentication against stored keys, then
//! session channels that may run one git command each. Every other request
//! is refused.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use hangar_core::store::ssh_keys;
use hangar_core::store::users::User;
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use tokio::sync::watch;

use super::command;
use crate::agent::Agent;
use crate::git::service;

/// Session channels one connection may have open at once (OpenSSH's MaxSessions).
const MAX_CHANNELS: usize = 10;

/// Locale variables that stock OpenSSH configs send (`SendEnv LANG LC_*`, the
/// default on macOS and Debian). They are declined without failing the
/// command, as sshd declines what it does not `AcceptEnv`.
fn is_locale(name: &str) -> bool {
    name == "LANG" || name.starts_with("LC_")
}

/// A session channel before its command runs.
#[derive(Default)]
struct Pending {
    channel: Option<Channel<Msg>>,
    protocol: Option<String>,
    /// Set by a refused request (an env variable other than GIT_PROTOCOL):
    /// whatever the client asks to run next fails with this explanation.
    refused: Option<String>,
}

/// The handler russh calls for one connection.
pub struct Connection {
    agent: Arc<Agent>,
    peer: Option<SocketAddr>,
    user: Option<User>,
    /// Tells the connection's watchdog that authentication succeeded.
    authenticated: watch::Sender<bool>,
    channels: HashMap<ChannelId, Pending>,
}

impl Connection {
    pub fn new(
        agent: Arc<Agent>,
        peer: Option<SocketAddr>,
        authenticated: watch::Sender<bool>,
    ) -> Self {
        Self {
            agent,
            peer,
            user: None,
            authenticated,
            channels: HashMap::new(),
        }
    }

    /// Only public keys are offered to clients.
    pub fn methods() -> MethodSet {
        MethodSet::from(&[MethodKind::PublicKey][..])
    }

    async fn find_key(
        &self,
        key: &russh::keys::PublicKey,
    ) -> Option<(hangar_core::ids::SshKeyId, User)> {
        let fingerprint = ssh_keys::fingerprint(key);
        let found = self
            .agent
            .db(move |a| {
                a.store
                    .read(|c| ssh_keys::authenticate(c, &fingerprint))
                    .map_err(anyhow::Error::from)
            })
            .await;
        match found {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!("ssh key lookup failed: {e}");
                None
            }
        }
    }

    /// Answers the request, then explains on stderr and exits 1: what the
    /// OpenSSH client shows its user, where a bare failure would say nothing.
    fn refuse(
        &mut self,
        channel: ChannelId,
        message: &str,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        self.channels.remove(&channel);
        session.channel_success(channel)?;
        session.extended_data(channel, 1, format!("{message}\n").into_bytes())?;
        session.exit_status_request(channel, 1)?;
        session.eof(channel)?;
        session.close(channel)
    }
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        // Only keys someone added are worth a signature.
        Ok(match self.find_key(offer.public_key).await {
            Some(_) => Auth::Accept,
            None => Auth::Reject {
                proceed_with_methods: Some(Self::methods()),
                partial_success: false,
            },
        })
    }

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let Some((id, user)) = self.find_key(key.public_key).await else {
            return Ok(Auth::reject());
        };
        tracing::info!(user = %user.name, peer = ?self.peer, "ssh login");
        self.user = Some(user);
        let _ = self.authenticated.send(true);
        let agent = self.agent.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = agent.store.write(|tx| ssh_keys::touch(tx, id)) {
                tracing::warn!("cannot record ssh key use: {e}");
            }
        });
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.user.is_none() || self.channels.len() >= MAX_CHANNELS {
            reply
                .reject(russh::ChannelOpenFailure::ResourceShortage)
                .await;
            return Ok(());
        }
        self.channels.insert(
            channel.id(),
            Pending {
                channel: Some(channel),
                ..Pending::default()
            },
        );
        reply.accept().await;
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(pending) = self.channels.get_mut(&channel) else {
            return session.channel_failure(channel);
        };
        if name == "GIT_PROTOCOL" {
            match service::protocol(Some(value)) {
                Some(protocol) => {
                    pending.protocol = Some(protocol.to_owned());
                    return session.channel_success(channel);
                }
                None if pending.refused.is_none() => {
                    pending.refused = Some(
                        "hangar: GIT_PROTOCOL must look like `version=2` (key=value items joined by `:`)"
                            .to_owned(),
                    );
                }
                None => {}
            }
        } else if !is_locale(name) && pending.refused.is_none() {
            pending.refused = Some(format!(
                "hangar: environment variable {} is not accepted; only GIT_PROTOCOL is",
                name.escape_debug().take(64).collect::<String>()
            ));
        }
        session.channel_failure(channel)
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // No terminals: the OpenSSH client says "PTY allocation request failed".
        session.channel_failure(channel)
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let name = self
            .user
            .as_ref()
            .map(|u| u.name.as_str())
            .unwrap_or("there");
        let message = match self.channels.get(&channel).and_then(|p| p.refused.clone()) {
            Some(refused) => refused,
            None => format!(
                "Hi {name}! You've authenticated, but Hangar does not provide shell access.\n\
                 Use git: git clone ssh://git@HOST:PORT/OWNER/NAME.git"
            ),
        };
        self.refuse(channel, &message, session)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let message = format!(
            "hangar: subsystem {} is not available; only git commands run here",
            name.escape_debug().take(64).collect::<String>()
        );
        self.refuse(channel, &message, session)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(user) = self.user.clone() else {
            return session.channel_failure(channel);
        };
        let pending = self.channels.get_mut(&channel).map(std::mem::take);
        let Some(Pending {
            channel: Some(open),
            protocol,
            refused,
        }) = pending
        else {
            // A second exec on the same channel.
            return session.channel_failure(channel);
        };
        if let Some(refused) = refused {
            return self.refuse(channel, &refused, session);
        }
        let command = match command::parse(data) {
            Ok(command) => command,
            Err(e) => {
                tracing::info!(user = %user.name, peer = ?self.peer, "ssh command refused: {e}");
                return self.refuse(channel, &format!("hangar: {e}"), session);
            }
        };
        session.channel_success(channel)?;
        tokio::spawn(super::exec::run(
            self.agent.clone(),
            user,
            open,
            command,
            protocol,
        ));
        Ok(())
    }
}
