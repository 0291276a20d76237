//! Secrets (mirror tokens, SSH keys): kept by the platform's secret store,
//! never in SQLite or logs. The database and the API only ever see names.

mod file;
#[cfg(target_os = "macos")]
mod keychain;

pub use file::FileSecretStore;
#[cfg(target_os = "macos")]
pub use keychain::KeychainSecretStore;

/// A secret store failure. Messages never contain secret values.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret names are 1-200 printable characters without spaces (got {0:?})")]
    Name(String),
    #[error("secret store {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("secret store {path} is damaged: {message}")]
    Damaged { path: String, message: String },
    #[error("keychain: {0}")]
    Keychain(String),
}

/// Where secrets live. Implementations are safe to share between threads;
/// each call is one complete operation.
pub trait SecretStore: Send + Sync {
    fn get(&self, name: &str) -> Result<Option<String>, SecretError>;
    /// Creates or replaces `name`.
    fn set(&self, name: &str, value: &str) -> Result<(), SecretError>;
    /// Returns whether `name` existed.
    fn remove(&self, name: &str) -> Result<bool, SecretError>;
    /// The names of all secrets, sorted.
    fn names(&self) -> Result<Vec<String>, SecretError>;
}

/// Checks a secret's name (names are shown and stored, so they must be tame).
pub fn check_name(name: &str) -> Result<(), SecretError> {
    if name.is_empty() || name.len() > 200 || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(SecretError::Name(name.chars().take(60).collect()));
    }
    Ok(())
}

/// The platform's store: the login Keychain on macOS, an encrypted file in
/// `data_dir` elsewhere.
pub fn platform_store(data_dir: &std::path::Path) -> Result<Box<dyn SecretStore>, SecretError> {
    #[cfg(target_os = "macos")]
    {
        let _ = data_dir;
        Ok(Box::new(KeychainSecretStore::new("Hangar")))
    }
    #[cfg(not(target_os = "macos"))]
    {
        Ok(Box::new(FileSecretStore::open(data_dir)?))
    }
}
