//! The built-in `actions/checkout`: a shared clone of the local repository
//! (no objects copied, full history, so `fetch-depth` has nothing to save),
//! and submodules from repositories on this host. A build host must not reach
//! out to the internet with nobody's credentials in the middle of a build, so
//! a submodule is checked out when its URL is relative (`../lib.git`, a
//! repository beside this one) or is the upstream of a pull mirror here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hangar_core::repo_name::RepoName;
use hangar_core::store::mirrors::{self, Kind};

use crate::agent::Agent;

/// Nested submodules deeper than this are refused: a loop, not a project.
const MAX_SUBMODULE_DEPTH: usize = 8;

/// What `with.submodules` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Submodules {
    No,
    TopLevel,
    Recursive,
}

impl Submodules {
    fn parse(with: &BTreeMap<String, String>) -> Result<Self, String> {
        match with.get("submodules").map(|s| s.trim()) {
            None | Some("" | "false") => Ok(Self::No),
            Some("true") => Ok(Self::TopLevel),
            Some("recursive") => Ok(Self::Recursive),
            Some(other) => Err(format!(
                "actions/checkout `submodules: {other}` is not one of true, false, recursive"
            )),
        }
    }
}

/// Checks `repo` out into the workspace as `with` says (`path`, `ref`,
/// `submodules`), at `sha` unless `ref` is given. `log` gets progress lines.
pub async fn run(
    agent: &Arc<Agent>,
    repo: &str,
    workspace: &Path,
    sha: &str,
    with: &BTreeMap<String, String>,
    log: impl Fn(&str),
) -> Result<(), String> {
    let name = RepoName::parse(repo).map_err(|e| e.to_string())?;
    let submodules = Submodules::parse(with)?;
    let target = match with.get("path") {
        Some(p) if !p.is_empty() => {
            let p = Path::new(p);
            if p.is_absolute()
                || p.components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                return Err("actions/checkout `path` must stay inside the workspace".into());
            }
            workspace.join(p)
        }
        _ => workspace.to_path_buf(),
    };
    let rev = with
        .get("ref")
        .filter(|r| !r.is_empty())
        .map_or(sha, String::as_str);
    if rev.starts_with('-') {
        return Err(format!("actions/checkout `ref` {rev:?} is not a ref"));
    }
    log(&format!("Checking out {repo} at {rev}"));
    let source = crate::git::repos::path(&agent.data, &name);
    // A shared clone borrows the local repository's objects: no copying.
    git(
        None,
        &["clone", "--quiet", "--shared", "--no-checkout", "--"],
        &[&source, &target],
    )
    .await?;
    git(
        Some(&target),
        &["checkout", "--quiet", "--detach", rev],
        &[],
    )
    .await?;
    if submodules != Submodules::No {
        let mirrors = mirror_upstreams(agent).await?;
        let local = Local {
            repos: std::fs::canonicalize(agent.data.repos())
                .map_err(|e| format!("cannot read the repositories directory: {e}"))?,
            mirrors,
        };
        update_submodules(&local, &target, submodules, 0, &log).await?;
    }
    Ok(())
}

/// Where submodules may come from: repositories on this host.
struct Local {
    /// The canonical repositories directory.
    repos: PathBuf,
    /// Upstream URL (normalized) → the pull mirror's local path.
    mirrors: BTreeMap<String, PathBuf>,
}

impl Local {
    /// The local repository for a submodule URL as `git submodule init`
    /// resolved it (relative URLs are already paths under the repositories).
    fn resolve(&self, submodule: &str, url: &str) -> Result<PathBuf, String> {
        if let Some(path) = self.mirrors.get(&normalize_url(url)) {
            return Ok(path.clone());
        }
        let inside = std::fs::canonicalize(url)
            .ok()
            .filter(|p| p.starts_with(&self.repos));
        inside.ok_or_else(|| {
            format!(
                "submodule `{submodule}` comes from {url}, which is not a repository on this \
                 host; Hangar checks out submodules only from here: use a relative URL \
                 (../name.git) or mirror it first with `hangar mirror add {url}`"
            )
        })
    }
}

/// Pull mirrors' upstream URLs, for submodules that name them.
async fn mirror_upstreams(agent: &Arc<Agent>) -> Result<BTreeMap<String, PathBuf>, String> {
    let list = agent
        .db(|a| a.store.read(mirrors::list).map_err(anyhow::Error::from))
        .await
        .map_err(|e| e.to_string())?;
    Ok(list
        .into_iter()
        .filter(|m| m.kind == Kind::Pull)
        .map(|m| {
            (
                normalize_url(&m.url),
                crate::git::repos::path(&agent.data, &m.repo),
            )
        })
        .collect())
}

/// `https://Host/a/b.git/` and `https://host/a/b` name the same repository.
fn normalize_url(url: &str) -> String {
    let url = url.trim_end_matches('/');
    let url = url.strip_suffix(".git").unwrap_or(url);
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
            format!(
                "{}://{}/{path}",
                scheme.to_ascii_lowercase(),
                host.to_ascii_lowercase()
            )
        }
        None => url.to_owned(),
    }
}

/// Initializes the submodules of the checkout at `dir`, points each at its
/// local repository and checks it out; then their own, when recursive.
async fn update_submodules(
    local: &Local,
    dir: &Path,
    mode: Submodules,
    depth: usize,
    log: &impl Fn(&str),
) -> Result<(), String> {
    if depth >= MAX_SUBMODULE_DEPTH {
        return Err(format!(
            "submodules nest deeper than {MAX_SUBMODULE_DEPTH} levels at {}",
            dir.display()
        ));
    }
    if !dir.join(".gitmodules").is_file() {
        return Ok(());
    }
    git(Some(dir), &["submodule", "--quiet", "init"], &[]).await?;
    let urls = git(
        Some(dir),
        &["config", "--local", "--get-regexp", r"^submodule\..*\.url$"],
        &[],
    )
    .await
    .unwrap_or_default();
    let mut paths = Vec::new();
    for line in urls.lines() {
        let Some((key, url)) = line.split_once(' ') else {
            continue;
        };
        let Some(name) = key
            .strip_prefix("submodule.")
            .and_then(|k| k.strip_suffix(".url"))
        else {
            continue;
        };
        let path = local.resolve(name, url)?;
        log(&format!("Submodule {name} from {}", path.display()));
        git(
            Some(dir),
            &["config", "--local", &format!("submodule.{name}.url")],
            &[&path],
        )
        .await?;
        let sub_path = git(
            Some(dir),
            &[
                "config",
                "--file",
                ".gitmodules",
                &format!("submodule.{name}.path"),
            ],
            &[],
        )
        .await?;
        paths.push(dir.join(sub_path.trim()));
    }
    // Local paths are the file transport, which git refuses for submodules
    // unless allowed; every path here was checked to be a repository on this host.
    git(
        Some(dir),
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "--quiet",
            "update",
            "--checkout",
        ],
        &[],
    )
    .await?;
    if mode == Submodules::Recursive {
        for path in paths {
            Box::pin(update_submodules(local, &path, mode, depth + 1, log)).await?;
        }
    }
    Ok(())
}

/// Runs git (in `dir` when given) and returns its standard output, or its
/// error output as the error.
async fn git(dir: Option<&Path>, args: &[&str], paths: &[&Path]) -> Result<String, String> {
    let mut command = tokio::process::Command::new("git");
    if let Some(dir) = dir {
        command.arg("-C").arg(dir);
    }
    let out = command
        .args(args)
        .args(paths)
        .output()
        .await
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submodules_option_accepts_githubs_values_only() {
        let with = |v: &str| BTreeMap::from([("submodules".to_owned(), v.to_owned())]);
        assert_eq!(Submodules::parse(&BTreeMap::new()), Ok(Submodules::No));
        assert_eq!(Submodules::parse(&with("false")), Ok(Submodules::No));
        assert_eq!(Submodules::parse(&with("true")), Ok(Submodules::TopLevel));
        assert_eq!(
            Submodules::parse(&with("recursive")),
            Ok(Submodules::Recursive)
        );
        let err = Submodules::parse(&with("yes")).expect_err("yes is not a value");
        assert!(err.contains("true, false, recursive"), "{err}");
    }

    #[test]
    fn urls_naming_the_same_repository_normalize_alike() {
        let n = normalize_url("https://GitHub.com/acme/lib.git/");
        assert_eq!(n, normalize_url("https://github.com/acme/lib"));
        assert_ne!(n, normalize_url("https://github.com/acme/LIB"));
        assert_ne!(n, normalize_url("https://github.com/acme/lib2"));
    }
}
