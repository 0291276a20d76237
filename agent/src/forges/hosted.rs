//! Repositories hosted on a forge: a local read-only pull mirror (the mirror
//! loop polls it as a safety net) that webhook deliveries fetch into and
//! build, with the forge's webhook registered when a public URL is known.

use std::sync::Arc;

use hangar_core::repo_name::RepoName;
use hangar_core::store::forges::{self, Forge as ForgeRow, HostedRepo, Provider};

use super::Forge;
use crate::agent::Agent;
use crate::mirror::add::{self, AddError};
use crate::mirror::credentials::{self, Credential};
use crate::mirror::remote::{self, Remote};

/// Most path segments of a forge repository (GitLab nests groups).
const MAX_SEGMENTS: usize = 20;

/// A hosted repository to add.
#[derive(Debug, Clone)]
pub struct NewHosted {
    /// `github:OWNER/NAME` or `gitlab:GROUP/NAME`.
    pub spec: String,
    /// The forge account's name, when several serve the provider.
    pub forge: Option<String>,
    /// The local `OWNER/NAME` [default: the last two parts of the path].
    pub name: Option<String>,
    pub public: bool,
}

/// `github:OWNER/NAME` → the provider and the checked path.
pub fn parse_spec(spec: &str) -> Result<(Provider, String), String> {
    parse_path(spec, 2, "expected github:OWNER/NAME or gitlab:GROUP/NAME")
}

/// `PROVIDER:PATH` with at least `min` path segments (GitHub: at most 2,
/// GitLab: nested groups) → the provider and the checked path.
pub fn parse_path(spec: &str, min: usize, usage: &str) -> Result<(Provider, String), String> {
    let (provider, path) = spec
        .split_once(':')
        .ok_or_else(|| format!("{spec:?}: {usage}"))?;
    let provider = Provider::parse(provider).ok_or_else(|| format!("{spec:?}: {usage}"))?;
    let path = path.trim_end_matches(".git");
    let segments: Vec<&str> = path.split('/').collect();
    let max = if provider == Provider::Github {
        2
    } else {
        MAX_SEGMENTS
    };
    let valid = |s: &&str| {
        !s.is_empty()
            && s.len() <= 100
            && !s.starts_with(['.', '-'])
            && !s.contains("..")
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    if segments.len() < min || segments.len() > max || !segments.iter().all(valid) {
        return Err(format!(
            "{spec:?}: {usage} (letters, digits, `.`, `_`, `-`; no leading `.` or `-`)"
        ));
    }
    Ok((provider, path.to_owned()))
}

/// The local `OWNER/NAME` of a forge path: its last two segments.
pub fn local_name(remote_path: &str) -> String {
    let mut parts = remote_path.rsplit('/');
    let name = parts.next().unwrap_or("");
    let owner = parts.next().unwrap_or("");
    format!("{owner}/{name}")
}

/// The forge to use for `provider`: the named one, or the only one.
pub fn pick_forge(
    all: Vec<ForgeRow>,
    provider: Provider,
    name: Option<&str>,
) -> Result<ForgeRow, AddError> {
    let p = provider.as_str();
    if let Some(name) = name {
        return all
            .into_iter()
            .find(|f| f.name == name && f.provider == provider)
            .ok_or_else(|| {
                AddError::NotFound(format!(
                    "no {p} forge named {name} (see `hangar forge list`)"
                ))
            });
    }
    let mut of: Vec<ForgeRow> = all.into_iter().filter(|f| f.provider == provider).collect();
    match of.len() {
        0 => Err(AddError::Invalid(format!(
            "no {p} account yet: add one with `hangar forge add {p} --token-stdin`"
        ))),
        1 => Ok(of.remove(0)),
        _ => Err(AddError::Invalid(format!(
            "several {p} accounts: pick one with --forge NAME (see `hangar forge list`)"
        ))),
    }
}

/// Adds a hosted repo: looks it up on the forge, creates the local mirror
/// (its first fetch starts at once), and registers the webhook when a public
/// URL is known. A webhook that cannot be registered is reported, not fatal.
pub async fn add(
    agent: &Arc<Agent>,
    new: NewHosted,
) -> Result<(HostedRepo, Option<String>), AddError> {
    let (provider, remote_path) = parse_spec(&new.spec).map_err(AddError::Invalid)?;
    let all = agent
        .db(|a| a.store.read(forges::list).map_err(AddError::from))
        .await?;
    let forge = pick_forge(all, provider, new.forge.as_deref())?;
    let client = super::client(agent.secrets.as_ref(), &forge)
        .map_err(|e| AddError::Invalid(e.to_string()))?;
    let found = client.repo(&remote_path).await.map_err(|e| {
        AddError::Invalid(format!(
            "cannot look up {remote_path} on {}: {e}",
            forge.name
        ))
    })?;
    let name = new.name.clone().unwrap_or_else(|| local_name(&remote_path));
    let name = RepoName::parse(&name).map_err(|e| {
        AddError::Invalid(format!("{e}; choose the local name with --as OWNER/NAME"))
    })?;
    forge_credential(agent, &forge, client.as_ref(), &found.clone_url).await?;
    let mirror = add::pull(
        agent,
        add::PullMirror {
            url: found.clone_url.clone(),
            name: Some(name.to_string()),
            interval_secs: None,
            public: new.public,
            allow_http: forge.allow_http,
        },
    )
    .await?;
    let (repo_id, forge_id, web_url) = (mirror.repo_id, forge.id, found.web_url.clone());
    let path = remote_path.clone();
    let hosted = agent
        .db(move |a| {
            a.store
                .write(|tx| {
                    forges::add_hosted(tx, repo_id, forge_id, &path, Some(&web_url))?;
                    forges::hosted(tx, repo_id)
                })
                .map_err(AddError::from)
        })
        .await?
        .ok_or_else(|| AddError::Internal(anyhow::anyhow!("hosted repo vanished")))?;
    let hook_error = register_hook(agent, &hosted, client.as_ref()).await.err();
    let hosted = agent
        .db(move |a| {
            a.store
                .read(|c| forges::hosted(c, repo_id))
                .map_err(AddError::from)
        })
        .await?
        .unwrap_or(hosted);
    Ok((hosted, hook_error))
}

/// Checks a forge's clone URL and, unless the user stored another
/// credential for its host, stores the forge's token for it: private
/// repositories then clone with it.
pub async fn forge_credential(
    agent: &Arc<Agent>,
    forge: &ForgeRow,
    client: &dyn Forge,
    clone_url: &str,
) -> Result<(), AddError> {
    let url = add::check_url(agent, clone_url, forge.allow_http).await?;
    let host = url.authority();
    if credentials::get(agent.secrets.as_ref(), &host)
        .map_err(|e| AddError::Internal(e.into()))?
        .is_some()
    {
        return Ok(());
    }
    let token = agent
        .secrets
        .get(&forges::token_secret(forge.id))
        .map_err(|e| AddError::Internal(e.into()))?
        .unwrap_or_default();
    let credential = Credential::Token {
        username: client.git_username().to_owned(),
        token,
    };
    credentials::set(agent.secrets.as_ref(), &host, &credential)
        .map_err(|e| AddError::Internal(e.into()))
}

/// The URL a forge should post `provider`'s webhooks to, when one is known.
/// Without a public URL, a relay channel is where forges post.
pub fn hook_url(agent: &Agent, provider: Provider) -> Option<String> {
    let Some(base) = agent.settings.public_url.as_deref() else {
        return agent.settings.relay_url.clone();
    };
    Some(format!(
        "{}/hooks/{}",
        base.trim_end_matches('/'),
        provider.as_str()
    ))
}

/// Creates or updates the repo's webhook to point at the public URL (a no-op
/// without one, or when it already does).
pub async fn register_hook(
    agent: &Arc<Agent>,
    hosted: &HostedRepo,
    client: &dyn Forge,
) -> Result<(), String> {
    let Some(url) = hook_url(agent, hosted.provider) else {
        return Ok(());
    };
    if hosted.hook_url.as_deref() == Some(url.as_str()) && hosted.hook_id.is_some() {
        return Ok(());
    }
    let secret = agent
        .secrets
        .get(&forges::webhook_secret(hosted.forge_id))
        .map_err(|e| e.to_string())?
        .ok_or("the forge has no webhook secret; add the forge again")?;
    let id = client
        .ensure_hook(&hosted.remote, &url, hosted.hook_id.as_deref(), &secret)
        .await
        .map_err(|e| format!("cannot register the webhook of {}: {e}", hosted.remote))?;
    let repo = hosted.repo_id;
    agent
        .db(move |a| {
            a.store
                .write(|tx| forges::set_hook(tx, repo, &id, &url))
                .map_err(anyhow::Error::from)
        })
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(repo = %hosted.repo, "webhook registered");
    Ok(())
}

/// At start: points every hosted repo's webhook at the current public URL.
pub async fn register_all(agent: Arc<Agent>) {
    let Ok(all) = agent
        .db(|a| {
            a.store
                .read(forges::list_hosted)
                .map_err(anyhow::Error::from)
        })
        .await
    else {
        return;
    };
    for hosted in all {
        let forge = agent
            .db({
                let id = hosted.forge_id;
                move |a| {
                    a.store
                        .read(|c| forges::get(c, id))
                        .map_err(anyhow::Error::from)
                }
            })
            .await;
        let Ok(Some(forge)) = forge else { continue };
        let result = match super::client(agent.secrets.as_ref(), &forge) {
            Ok(client) => register_hook(&agent, &hosted, client.as_ref()).await,
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = result {
            tracing::warn!(repo = %hosted.repo, "{e}");
        }
    }
}

/// Fetches `refspecs` from the hosted repo's forge into its local mirror.
pub async fn fetch(
    agent: &Arc<Agent>,
    hosted: &HostedRepo,
    refspecs: &[String],
) -> Result<(), String> {
    let mirror = crate::mirror::row(agent, hosted.repo_id)
        .await?
        .ok_or("the hosted repo has no mirror row")?;
    let path = crate::git::repos::path(&agent.data, &hosted.repo);
    let remote = Remote::open(agent, &mirror.url, mirror.allow_http).await?;
    let (mut cmd, _key) = remote.git(&path).map_err(|e| e.to_string())?;
    cmd.args([
        "fetch",
        "--no-tags",
        "--no-write-fetch-head",
        "--end-of-options",
    ])
    .arg(remote.url.to_string())
    .args(refspecs);
    let (progress, _) = tokio::sync::watch::channel(String::new());
    remote::run(cmd, progress)
        .await
        .map(|_| ())
        .map_err(|e| remote.explain(e))
}

/// Whether the local mirror has commit `sha`.
pub async fn has_commit(agent: &Agent, hosted: &HostedRepo, sha: &str) -> bool {
    let path = crate::git::repos::path(&agent.data, &hosted.repo);
    tokio::process::Command::new("git")
        .arg("--git-dir")
        .arg(path)
        .args(["cat-file", "-e", "--end-of-options"])
        .arg(format!("{sha}^{{commit}}"))
        .status()
        .await
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_names_are_the_last_two_segments() {
        assert_eq!(local_name("octo/hello"), "octo/hello");
        assert_eq!(local_name("group/sub/app"), "sub/app");
    }

    #[test]
    fn specs() {
        assert_eq!(
            parse_spec("github:octo/hello").unwrap(),
            (Provider::Github, "octo/hello".to_owned())
        );
        assert_eq!(
            parse_spec("gitlab:group/sub/app.git").unwrap(),
            (Provider::Gitlab, "group/sub/app".to_owned())
        );
        for bad in [
            "octo/hello",
            "github:octo",
            "github:a/b/c",
            "github:../x",
            "github:-x/y",
            "bitbucket:a/b",
            "github:a/b?c",
        ] {
            assert!(parse_spec(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn accepted_paths_are_tame(spec in ".{0,80}") {
            if let Ok((_, path)) = parse_spec(&spec) {
                proptest::prop_assert!(!path.contains(".."));
                proptest::prop_assert!(path.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b)));
            }
        }
    }
}
