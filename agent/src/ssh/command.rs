//! The exec command of an SSH channel, parsed strictly before anything runs.
//!
//! git sends `git-upload-pack 'OWNER/NAME.git'` (the path single-quoted, as
//! its `sq_quote` writes it). Only the three git services and a repository
//! path are accepted; there is no shell, so shell syntax (`;`, `|`, `$()`,
//! backticks, redirections, other quoting) is refused rather than
//! interpreted, and options can never be smuggled in as the path.

use hangar_core::repo_name::{InvalidRepoName, RepoName};

use crate::git::service::Service;

/// Longest exec command accepted; a real one is well under 300 bytes.
pub const MAX_COMMAND: usize = 1024;

/// A git service on a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitCommand {
    pub service: Service,
    pub repo: RepoName,
}

/// Why an exec command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("the command is longer than {MAX_COMMAND} bytes")]
    TooLong,
    #[error("the command contains control characters or is not UTF-8")]
    Control,
    #[error(
        "`{0}` is not available: Hangar runs only git-upload-pack, git-receive-pack and git-upload-archive"
    )]
    NotGit(String),
    #[error("a quote is not closed")]
    OpenQuote,
    #[error("`{0}` is not allowed in a command: there is no shell here")]
    ShellSyntax(char),
    #[error("expected `git-upload-pack 'OWNER/NAME.git'` (one repository path, no options)")]
    Shape,
    #[error("bad repository path: {0}")]
    Path(#[from] InvalidRepoName),
}

/// Parses an exec command such as `git-upload-pack '/acme/app.git'`.
pub fn parse(command: &[u8]) -> Result<GitCommand, CommandError> {
    if command.len() > MAX_COMMAND {
        return Err(CommandError::TooLong);
    }
    let text = std::str::from_utf8(command).map_err(|_| CommandError::Control)?;
    if text.chars().any(char::is_control) {
        return Err(CommandError::Control);
    }
    let words = split(text)?;
    let (program, args) = match words.as_slice() {
        [git, sub, rest @ ..] if git == "git" => (format!("git-{sub}"), rest),
        [program, rest @ ..] => (program.clone(), rest),
        [] => return Err(CommandError::Shape),
    };
    let service = Service::parse(&program).ok_or_else(|| CommandError::NotGit(program.clone()))?;
    let [path] = args else {
        return Err(CommandError::Shape);
    };
    Ok(GitCommand {
        service,
        repo: repo_from_path(path)?,
    })
}

/// `OWNER/NAME` from a path as clients send it: `/acme/app.git`, `acme/app`,
/// `acme/app.git/`. Everything else is left to [`RepoName::parse`], which
/// refuses traversal and option-looking names.
fn repo_from_path(path: &str) -> Result<RepoName, CommandError> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let path = path.strip_suffix('/').unwrap_or(path);
    Ok(RepoName::parse(path)?)
}

/// Splits on spaces. A word is either plain (`[A-Za-z0-9._/-]`) or wholly
/// single-quoted without a quote inside; anything else is refused.
fn split(text: &str) -> Result<Vec<String>, CommandError> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if_eq(&' ').is_some() {}
        let Some(&first) = chars.peek() else {
            return Ok(words);
        };
        let mut word = String::new();
        if first == '\'' {
            chars.next();
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some(c) => word.push(c),
                    None => return Err(CommandError::OpenQuote),
                }
            }
            // `'a'b` or `'a''b'` would be one word to a shell; refuse rather than guess.
            if let Some(&c) = chars.peek()
                && c != ' '
            {
                return Err(CommandError::ShellSyntax(c));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                if !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-')) {
                    return Err(CommandError::ShellSyntax(c));
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(command: &str) -> GitCommand {
        parse(command.as_bytes()).unwrap_or_else(|e| panic!("{command:?} refused: {e}"))
    }

    #[test]
    fn accepts_what_git_and_people_send() {
        for command in [
            "git-upload-pack 'acme/app.git'",
            "git-upload-pack '/acme/app.git'",
            "git-upload-pack '/acme/app'",
            "git-upload-pack acme/app",
            "git upload-pack '/acme/app.git'",
            "git-upload-pack 'acme/app.git/'",
            "  git-upload-pack   'acme/app.git'  ",
        ] {
            let parsed = ok(command);
            assert_eq!(parsed.service, Service::UploadPack, "{command}");
            assert_eq!(parsed.repo.to_string(), "acme/app", "{command}");
        }
        assert_eq!(
            ok("git-receive-pack '/acme/app.git'").service,
            Service::ReceivePack
        );
        assert_eq!(
            ok("git upload-archive 'acme/app.git'").service,
            Service::UploadArchive
        );
    }

    #[test]
    fn refuses_injection() {
        for command in [
            "git-upload-pack 'a/b.git'; touch /tmp/x",
            "git-upload-pack 'a/b.git';touch /tmp/x",
            "git-upload-pack 'a/b.git' && touch /tmp/x",
            "git-upload-pack 'a/b.git' | sh",
            "git-upload-pack `touch /tmp/x`",
            "git-upload-pack 'a/`touch /tmp/x`.git'",
            "git-upload-pack $(touch /tmp/x)",
            "git-upload-pack 'a/$(touch x).git'",
            "git-upload-pack --upload-pack=touch 'a/b.git'",
            "git-upload-pack '--upload-pack=touch /tmp/x'",
            "git-upload-pack '-c/b.git'",
            "git-upload-pack 'a/-b.git'",
            "git-upload-pack '../../etc/passwd'",
            "git-upload-pack 'a/../../b.git'",
            "git-upload-pack '/a/b/../../c.git'",
            "git-upload-pack 'a/b.git",
            "git-upload-pack a/b.git'",
            "git-upload-pack 'a/b.git'x",
            "git-upload-pack \"a/b.git\"",
            "git-upload-pack 'a/b\0.git'",
            "git-upload-pack 'a/b.git'\n touch /tmp/x",
            "git-upload-pack a\\/b.git",
            "git-upload-pack 'a/b.git' > /tmp/x",
            "git-upload-pack 'a/b.git' 'c/d.git'",
            "git-upload-pack",
            "git-upload-pack ''",
            "git-upload-pack '~root/x.git'",
            "git-shell -c 'git-upload-pack a/b.git'",
            "git-upload-pack-x 'a/b.git'",
            "git --exec-path=/tmp upload-pack 'a/b.git'",
            "sh -c 'touch /tmp/x'",
            "ls",
            "",
        ] {
            assert!(
                parse(command.as_bytes()).is_err(),
                "{command:?} was accepted"
            );
        }
        assert!(parse(b"git-upload-pack '\xff/b.git'").is_err());
        assert!(parse(&[b'a'; MAX_COMMAND + 1]).is_err());
    }

    #[test]
    fn errors_explain_themselves() {
        let err = parse(b"ls -la").unwrap_err().to_string();
        assert!(err.contains("runs only git-upload-pack"), "{err}");
        let err = parse(b"git-upload-pack 'a/b.git'; id")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no shell"), "{err}");
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn accepted_paths_are_safe(text in "\\PC{0,80}") {
            if let Ok(command) = parse(text.as_bytes()) {
                let path = command.repo.relative_path();
                prop_assert!(path.components().all(|c| matches!(c, std::path::Component::Normal(_))));
                prop_assert!(!command.repo.owner().starts_with('-'));
            }
        }

        #[test]
        fn shell_suffixes_are_refused(
            suffix in "[;&|`$<>()\\\\\"*?!#]\\PC{0,20}",
            quoted in any::<bool>(),
        ) {
            let command = if quoted {
                format!("git-upload-pack 'a/b.git'{suffix}")
            } else {
                format!("git-upload-pack a/b.git{suffix}")
            };
            prop_assert!(parse(command.as_bytes()).is_err());
        }
    }
}
