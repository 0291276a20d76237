//! Forge accounts: adding one stores its row, then its token and webhook
//! secret in the SecretStore; removing one removes all three.

use std::sync::Arc;

use hangar_core::mirror::url::{MirrorUrl, Scheme};
use hangar_core::store::forges::{self, Forge as ForgeRow, Provider};

use crate::agent::Agent;
use crate::mirror::add::AddError;

/// A forge account to add.
pub struct NewForge {
    pub provider: String,
    /// API base (GitHub: `https://api.github.com`, GHES `https://HOST/api/v3`;
    /// GitLab: the instance, `https://gitlab.com`).
    pub url: Option<String>,
    pub name: Option<String>,
    pub token: String,
    /// The webhook secret; generated when absent.
    pub webhook_secret: Option<String>,
    pub allow_http: bool,
}

/// Tokens and secrets travel in headers: printable ASCII only (webhook
/// secrets may hold spaces, as GitHub's own example does).
fn check_secret(what: &str, value: &str, spaces: bool) -> Result<(), AddError> {
    let ok = |b: u8| b.is_ascii_graphic() || (spaces && b == b' ');
    if value.trim().is_empty() || value.len() > 1000 || !value.bytes().all(ok) {
        return Err(AddError::Invalid(format!(
            "{what} must be 1-1000 printable ASCII characters{}",
            if spaces { "" } else { " without spaces" }
        )));
    }
    Ok(())
}

/// Adds an account; returns it and its webhook secret (shown to the user once).
pub async fn add(agent: &Arc<Agent>, new: NewForge) -> Result<(ForgeRow, String), AddError> {
    let provider = Provider::parse(&new.provider).ok_or_else(|| {
        AddError::Invalid(format!(
            "unknown forge {:?}; use github or gitlab",
            new.provider
        ))
    })?;
    let base = new
        .url
        .as_deref()
        .unwrap_or(provider.default_url())
        .trim_end_matches('/')
        .to_owned();
    let url = MirrorUrl::parse(&format!("{base}/x"), new.allow_http)
        .map_err(|e| AddError::Invalid(format!("forge URL {base:?}: {e}")))?;
    if !matches!(url.scheme(), Scheme::Https | Scheme::Http) || base.contains(['?', '#', '@']) {
        return Err(AddError::Invalid(format!(
            "forge URL {base:?} must be https://HOST[/PATH] (http:// with --allow-http)"
        )));
    }
    crate::mirror::remote::check_host(&url, agent.settings.allow_local_mirrors)
        .await
        .map_err(AddError::Invalid)?;
    let token = new.token.trim().to_owned();
    check_secret("the token", &token, false)?;
    let secret = new.webhook_secret.unwrap_or_else(super::new_secret);
    check_secret("the webhook secret", &secret, true)?;
    // Default name: the provider's, or the host's when that one is taken.
    let taken = agent
        .db(move |a| {
            a.store
                .read(|c| forges::by_name(c, provider.as_str()))
                .map_err(AddError::from)
        })
        .await?
        .is_some();
    let name = new.name.unwrap_or_else(|| {
        if taken {
            url.host().to_owned()
        } else {
            provider.as_str().to_owned()
        }
    });
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(AddError::Invalid(
            "forge names are 1-64 letters, digits, `.`, `_` or `-`".into(),
        ));
    }
    let allow_http = new.allow_http;
    let forge = agent
        .db(move |a| {
            a.store.write(|tx| {
                if forges::by_name(tx, &name)?.is_some() {
                    return Ok(Err(name));
                }
                Ok::<_, AddError>(Ok(forges::create(tx, &name, provider, &base, allow_http)?))
            })
        })
        .await?
        .map_err(|name| {
            AddError::Conflict(format!(
                "a forge named {name} exists; pick another with --name, or `hangar forge rm {name}` first"
            ))
        })?;
    let stored = agent
        .secrets
        .set(&forges::token_secret(forge.id), &token)
        .and_then(|()| {
            agent
                .secrets
                .set(&forges::webhook_secret(forge.id), &secret)
        });
    if let Err(e) = stored {
        let _ = remove(agent, forge.clone()).await;
        return Err(AddError::Internal(e.into()));
    }
    agent.hooks.secrets.reload(agent)?;
    Ok((forge, secret))
}

/// Removes an account (refused while hosted repos use it).
pub async fn remove(agent: &Arc<Agent>, forge: ForgeRow) -> Result<(), AddError> {
    let id = forge.id;
    agent
        .db(move |a| {
            a.store
                .write(|tx| forges::delete(tx, id))
                .map_err(AddError::from)
        })
        .await?
        .map_err(|used| {
            AddError::Conflict(format!(
                "{} hosts {used} repo(s) here; delete them first (`hangar repo delete OWNER/NAME`)",
                forge.name
            ))
        })?;
    for name in [forges::token_secret(id), forges::webhook_secret(id)] {
        agent
            .secrets
            .remove(&name)
            .map_err(|e| AddError::Internal(e.into()))?;
    }
    agent.hooks.secrets.reload(agent)?;
    Ok(())
}
