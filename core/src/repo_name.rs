//! Validated `OWNER/NAME` repository names.
//!
//! A name is checked before it is ever joined into a path, so traversal and
//! option-looking names never reach the file system or git.

use std::fmt;

const MAX_PART: usize = 100;

/// First path segments the agent serves itself, so no repository may use them.
const RESERVED_OWNERS: &[&str] = &["api", "hooks", "healthz", "metrics", "assets"];

/// A valid `OWNER/NAME` pair.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName {
    owner: String,
    name: String,
}

/// Why a repository name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRepoName {
    #[error("repository names have the form OWNER/NAME (got {0:?})")]
    Shape(String),
    #[error("`{0}` is empty or longer than {MAX_PART} characters")]
    Length(String),
    #[error("`{0}` may only contain letters, digits, `.`, `_` and `-`")]
    Characters(String),
    #[error("`{0}` may not start with `.` or `-`, end with `.`, or contain `..`")]
    Dots(String),
    #[error("`{0}` is reserved for the agent's own URLs; pick another owner")]
    Reserved(String),
}

impl RepoName {
    /// Parses `OWNER/NAME`, with or without a trailing `.git`.
    pub fn parse(text: &str) -> Result<Self, InvalidRepoName> {
        let shown = || text.chars().take(120).collect::<String>();
        let text = text.strip_suffix(".git").unwrap_or(text);
        let mut parts = text.split('/');
        let (Some(owner), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(InvalidRepoName::Shape(shown()));
        };
        check_part(owner)?;
        if is_reserved_owner(owner) {
            return Err(InvalidRepoName::Reserved(owner.to_owned()));
        }
        check_part(name)?;
        Ok(Self {
            owner: owner.to_owned(),
            name: name.to_owned(),
        })
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bare repository's path relative to the repos dir: `OWNER/NAME.git`.
    pub fn relative_path(&self) -> std::path::PathBuf {
        std::path::Path::new(&self.owner).join(format!("{}.git", self.name))
    }
}

/// True for first path segments the agent serves itself (`api`, `hooks`, ...).
pub fn is_reserved_owner(owner: &str) -> bool {
    RESERVED_OWNERS.contains(&owner.to_ascii_lowercase().as_str())
}

fn check_part(part: &str) -> Result<(), InvalidRepoName> {
    if part.is_empty() || part.len() > MAX_PART {
        return Err(InvalidRepoName::Length(part.chars().take(120).collect()));
    }
    if !part
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(InvalidRepoName::Characters(
            part.escape_debug().take(120).collect(),
        ));
    }
    if part.starts_with('.') || part.starts_with('-') || part.ends_with('.') || part.contains("..")
    {
        return Err(InvalidRepoName::Dots(part.to_owned()));
    }
    Ok(())
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

impl std::str::FromStr for RepoName {
    type Err = InvalidRepoName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for RepoName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in [
            "acme/app",
            "acme/app.git",
            "a-b/c_d.e",
            "A1/B2",
            "o/.x".replace("/.", "/x").as_str(),
        ] {
            assert!(RepoName::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            RepoName::parse("acme/app.git").unwrap().to_string(),
            "acme/app"
        );
    }

    #[test]
    fn refuses_dangerous_names() {
        for bad in [
            "",
            "acme",
            "acme/",
            "/app",
            "acme/app/x",
            "../etc",
            "acme/..",
            "acme/.hidden",
            "-x/app",
            "acme/-upload-pack",
            "acme/a..b",
            "acme/a b",
            "acme/a\0b",
            "acmé/app",
            "acme/app.",
            "acme//app",
        ] {
            assert!(RepoName::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    proptest! {
        #[test]
        fn a_valid_name_is_a_safe_relative_path(s in "\\PC{0,60}") {
            if let Ok(name) = RepoName::parse(&s) {
                let path = name.relative_path();
                prop_assert!(path.is_relative());
                prop_assert!(path.components().all(|c| matches!(c, std::path::Component::Normal(_))));
                prop_assert_eq!(RepoName::parse(&name.to_string()).unwrap(), name);
            }
        }
    }
}
