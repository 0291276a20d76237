//! Secrets in an AES-256-GCM encrypted file, for Linux and tests.
//!
//! `secrets.key` holds 32 random bytes; `secrets.json` maps each name to
//! `base64(nonce || ciphertext)`, with the name as associated data so a value
//! cannot be moved to another name. Both files are 0600 and replaced
//! atomically (write, fsync, rename).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;

use super::{SecretError, SecretStore, check_name};

const NONCE_LEN: usize = 12;

pub struct FileSecretStore {
    values_path: PathBuf,
    cipher: Aes256Gcm,
    /// Serializes read-modify-write of the values file.
    lock: Mutex<()>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SecretError + '_ {
    move |source| SecretError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl FileSecretStore {
    /// Opens the store in `dir`, creating its key on first use.
    pub fn open(dir: &Path) -> Result<Self, SecretError> {
        let key_path = dir.join("secrets.key");
        let key = match std::fs::read(&key_path) {
            Ok(key) => key,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::random();
                match write_new(&key_path, &key) {
                    Ok(()) => key.to_vec(),
                    // Another process made it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        std::fs::read(&key_path).map_err(io(&key_path))?
                    }
                    Err(e) => return Err(io(&key_path)(e)),
                }
            }
            Err(e) => return Err(io(&key_path)(e)),
        };
        if key.len() != 32 {
            return Err(SecretError::Damaged {
                path: key_path.display().to_string(),
                message: format!("the key is {} bytes, not 32", key.len()),
            });
        }
        Ok(Self {
            values_path: dir.join("secrets.json"),
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key)),
            lock: Mutex::new(()),
        })
    }

    fn damaged(&self, message: impl Into<String>) -> SecretError {
        SecretError::Damaged {
            path: self.values_path.display().to_string(),
            message: message.into(),
        }
    }

    fn load(&self) -> Result<BTreeMap<String, String>, SecretError> {
        match std::fs::read(&self.values_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| self.damaged(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(io(&self.values_path)(e)),
        }
    }

    fn save(&self, values: &BTreeMap<String, String>) -> Result<(), SecretError> {
        let body = serde_json::to_vec_pretty(values).map_err(|e| self.damaged(e.to_string()))?;
        let tmp = self.values_path.with_extension("json.tmp");
        let _ = std::fs::remove_file(&tmp);
        write_new(&tmp, &body).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &self.values_path).map_err(io(&self.values_path))?;
        if let Some(dir) = self.values_path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))?;
        }
        Ok(())
    }

    fn encrypt(&self, name: &str, value: &str) -> Result<String, SecretError> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| self.damaged("encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(base64::engine::general_purpose::STANDARD.encode(out))
    }

    fn decrypt(&self, name: &str, sealed: &str) -> Result<String, SecretError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| self.damaged(format!("the value of {name} is not base64")))?;
        if bytes.len() < NONCE_LEN {
            return Err(self.damaged(format!("the value of {name} is truncated")));
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| {
                self.damaged(format!(
                    "the value of {name} does not decrypt with secrets.key"
                ))
            })?;
        String::from_utf8(plain).map_err(|_| self.damaged(format!("{name} is not text")))
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Writes a new 0600 file durably; fails if it exists.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

impl SecretStore for FileSecretStore {
    fn get(&self, name: &str) -> Result<Option<String>, SecretError> {
        check_name(name)?;
        let _guard = self.locked();
        self.load()?
            .get(name)
            .map(|sealed| self.decrypt(name, sealed))
            .transpose()
    }

    fn set(&self, name: &str, value: &str) -> Result<(), SecretError> {
        check_name(name)?;
        let _guard = self.locked();
        let mut values = self.load()?;
        values.insert(name.to_owned(), self.encrypt(name, value)?);
        self.save(&values)
    }

    fn remove(&self, name: &str) -> Result<bool, SecretError> {
        check_name(name)?;
        let _guard = self.locked();
        let mut values = self.load()?;
        let existed = values.remove(name).is_some();
        if existed {
            self.save(&values)?;
        }
        Ok(existed)
    }

    fn names(&self) -> Result<Vec<String>, SecretError> {
        let _guard = self.locked();
        Ok(self.load()?.into_keys().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn round_trips_encrypted_with_private_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSecretStore::open(dir.path()).unwrap();
        assert_eq!(store.get("github.com").unwrap(), None);
        store.set("github.com", "ghp_supersecret").unwrap();
        store.set("gitlab.com", "glpat-other").unwrap();
        assert_eq!(
            store.get("github.com").unwrap().as_deref(),
            Some("ghp_supersecret")
        );
        assert_eq!(store.names().unwrap(), vec!["github.com", "gitlab.com"]);

        for file in ["secrets.key", "secrets.json"] {
            let mode = std::fs::metadata(dir.path().join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
        let on_disk = std::fs::read_to_string(dir.path().join("secrets.json")).unwrap();
        assert!(!on_disk.contains("supersecret"), "{on_disk}");

        // A reopened store reads the same values; removal is durable.
        let again = FileSecretStore::open(dir.path()).unwrap();
        assert_eq!(
            again.get("gitlab.com").unwrap().as_deref(),
            Some("glpat-other")
        );
        assert!(again.remove("gitlab.com").unwrap());
        assert!(!again.remove("gitlab.com").unwrap());
        assert_eq!(store.names().unwrap(), vec!["github.com"]);
    }

    #[test]
    fn a_value_moved_to_another_name_or_key_does_not_decrypt() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSecretStore::open(dir.path()).unwrap();
        store.set("a", "secret-a").unwrap();
        let path = dir.path().join("secrets.json");
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"a\"", "\"b\"");
        std::fs::write(&path, text).unwrap();
        let err = store.get("b").unwrap_err().to_string();
        assert!(err.contains("does not decrypt"), "{err}");
        assert!(!err.contains("secret-a"));
        assert!(store.get("bad name").is_err());
    }
}
