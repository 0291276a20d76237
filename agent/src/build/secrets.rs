//! Workflow secrets: the values behind `${{ secrets.NAME }}`, global or for
//! one repository, kept in the SecretStore under `workflow-secret/` so they
//! never mix with mirror credentials (`mirror-credential/`). Names and scopes
//! leave this module; values only through [`resolve`], for a job's runner,
//! which masks them.

use std::collections::BTreeMap;

use hangar_core::ids::RepoId;
use hangar_core::secrets::{SecretError, SecretStore};

const PREFIX: &str = "workflow-secret/";
/// GitHub's limit for one secret.
pub const MAX_VALUE: usize = 48 * 1024;
const MAX_NAME: usize = 100;

/// Where a secret applies: every repository, or one (by id, so a rename
/// keeps it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Global,
    Repo(RepoId),
}

impl Scope {
    fn prefix(self) -> String {
        match self {
            Scope::Global => format!("{PREFIX}global/"),
            Scope::Repo(id) => format!("{PREFIX}repo/{id}/"),
        }
    }
}

/// A secret's name as GitHub allows it (`[A-Za-z_][A-Za-z0-9_]*`, not
/// `GITHUB_*`), upper-cased as GitHub stores it; or why it is not one.
pub fn check_name(name: &str) -> Result<String, String> {
    let upper = name.to_ascii_uppercase();
    let mut chars = upper.chars();
    let well_formed = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && upper.len() <= MAX_NAME;
    if !well_formed {
        return Err(format!(
            "{:?} is not a secret name: use letters, digits and `_`, not starting with a digit, at most {MAX_NAME} characters (e.g. API_TOKEN)",
            name.chars().take(60).collect::<String>()
        ));
    }
    if upper.starts_with("GITHUB_") {
        return Err(format!(
            "{upper}: names starting with GITHUB_ are reserved, as on GitHub; pick another name"
        ));
    }
    Ok(upper)
}

/// Checks a value before it is stored; the message never repeats it.
pub fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("the secret's value is empty".into());
    }
    if value.len() > MAX_VALUE {
        return Err(format!(
            "the secret's value is {} bytes; the limit is {MAX_VALUE}",
            value.len()
        ));
    }
    Ok(())
}

/// Creates or replaces a secret. `name` must have passed [`check_name`].
pub fn set(
    store: &dyn SecretStore,
    scope: Scope,
    name: &str,
    value: &str,
) -> Result<(), SecretError> {
    store.set(&format!("{}{name}", scope.prefix()), value)
}

/// Returns whether the secret existed.
pub fn remove(store: &dyn SecretStore, scope: Scope, name: &str) -> Result<bool, SecretError> {
    store.remove(&format!("{}{name}", scope.prefix()))
}

/// The names of the secrets in `scope`, sorted.
pub fn names(store: &dyn SecretStore, scope: Scope) -> Result<Vec<String>, SecretError> {
    let prefix = scope.prefix();
    Ok(store
        .names()?
        .into_iter()
        .filter_map(|n| n.strip_prefix(&prefix).map(str::to_owned))
        .filter(|n| !n.contains('/'))
        .collect())
}

/// Removes every secret of a repository (when it is deleted).
pub fn remove_all(store: &dyn SecretStore, repo: RepoId) -> Result<(), SecretError> {
    for name in names(store, Scope::Repo(repo))? {
        remove(store, Scope::Repo(repo), &name)?;
    }
    Ok(())
}

/// The secrets a job of `repo` sees: global ones, overridden by the
/// repository's own.
pub fn resolve(
    store: &dyn SecretStore,
    repo: RepoId,
) -> Result<BTreeMap<String, String>, SecretError> {
    let mut out = BTreeMap::new();
    for scope in [Scope::Global, Scope::Repo(repo)] {
        for name in names(store, scope)? {
            if let Some(value) = store.get(&format!("{}{name}", scope.prefix()))? {
                out.insert(name, value);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hangar_core::secrets::FileSecretStore;

    #[test]
    fn names_follow_github() {
        assert_eq!(check_name("api_token").unwrap(), "API_TOKEN");
        assert_eq!(check_name("_X1").unwrap(), "_X1");
        for bad in [
            "",
            "1X",
            "A-B",
            "A B",
            "github_token",
            "Ä",
            &"A".repeat(101),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_value("").is_err());
        assert!(check_value(&"x".repeat(MAX_VALUE + 1)).is_err());
    }

    #[test]
    fn repo_secrets_override_global_ones_and_stay_apart() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSecretStore::open(dir.path()).unwrap();
        let (a, b) = (RepoId::new(), RepoId::new());
        set(&store, Scope::Global, "TOKEN", "global").unwrap();
        set(&store, Scope::Global, "ONLY_GLOBAL", "g").unwrap();
        set(&store, Scope::Repo(a), "TOKEN", "for-a").unwrap();
        // A mirror credential in the same store is never a workflow secret.
        store.set("mirror-credential/github.com", "{}").unwrap();
        let seen = resolve(&store, a).unwrap();
        assert_eq!(seen["TOKEN"], "for-a");
        assert_eq!(seen["ONLY_GLOBAL"], "g");
        assert_eq!(seen.len(), 2);
        assert_eq!(resolve(&store, b).unwrap()["TOKEN"], "global");
        assert_eq!(
            names(&store, Scope::Global).unwrap(),
            ["ONLY_GLOBAL", "TOKEN"]
        );
        remove_all(&store, a).unwrap();
        assert!(names(&store, Scope::Repo(a)).unwrap().is_empty());
        assert!(store.get("mirror-credential/github.com").unwrap().is_some());
    }
}
