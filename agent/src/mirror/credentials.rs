//! Credentials per host for mirrors and forge APIs, kept in the SecretStore
//! under `mirror-credential/HOST`. Only host names and kinds ever leave here.

use hangar_core::mirror::url::MirrorUrl;
use hangar_core::secrets::{SecretError, SecretStore};
use serde::{Deserialize, Serialize};

const PREFIX: &str = "mirror-credential/";

/// An HTTPS token (sent as basic auth) or an SSH private key.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Credential {
    Token { username: String, token: String },
    SshKey { key: String },
}

impl Credential {
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::Token { .. } => "token",
            Credential::SshKey { .. } => "ssh_key",
        }
    }
}

// Never print a secret by accident.
impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({})", self.kind())
    }
}

/// `host` or `host:port`, lowercased, as mirror URLs name it; or a message.
pub fn check_host(host: &str) -> Result<String, String> {
    let bad = || format!("{host:?} is not a host name (use HOST or HOST:PORT, e.g. github.com)");
    let url = MirrorUrl::parse(&format!("https://{host}/x"), false).map_err(|_| bad())?;
    if url.authority() != host.to_ascii_lowercase() {
        return Err(bad());
    }
    Ok(url.authority())
}

pub fn get(store: &dyn SecretStore, host: &str) -> Result<Option<Credential>, SecretError> {
    let Some(text) = store.get(&format!("{PREFIX}{host}"))? else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|_| SecretError::Damaged {
            path: format!("{PREFIX}{host}"),
            message: "not a mirror credential".into(),
        })
}

pub fn set(
    store: &dyn SecretStore,
    host: &str,
    credential: &Credential,
) -> Result<(), SecretError> {
    let text = serde_json::to_string(credential).map_err(|e| SecretError::Damaged {
        path: host.to_owned(),
        message: e.to_string(),
    })?;
    store.set(&format!("{PREFIX}{host}"), &text)
}

pub fn remove(store: &dyn SecretStore, host: &str) -> Result<bool, SecretError> {
    store.remove(&format!("{PREFIX}{host}"))
}

/// Hosts with a credential, and its kind.
pub fn list(store: &dyn SecretStore) -> Result<Vec<(String, &'static str)>, SecretError> {
    let mut out = Vec::new();
    for name in store.names()? {
        if let Some(host) = name.strip_prefix(PREFIX)
            && let Some(credential) = get(store, host)?
        {
            out.push((host.to_owned(), credential.kind()));
        }
    }
    Ok(out)
}
