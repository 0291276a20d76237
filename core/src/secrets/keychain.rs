//! Secrets in the macOS login Keychain: generic passwords under one service.
//!
//! The Keychain cannot list one service's accounts without a search API that
//! differs across macOS versions, so the names are kept in one more item
//! (`.names`, a JSON list) beside the values.

use std::sync::Mutex;

use security_framework::passwords;

use super::{SecretError, SecretStore, check_name};

/// `errSecItemNotFound`.
const NOT_FOUND: i32 = -25300;
const NAMES: &str = ".names";

pub struct KeychainSecretStore {
    service: String,
    /// Serializes updates of the names item.
    lock: Mutex<()>,
}

impl KeychainSecretStore {
    pub fn new(service: &str) -> Self {
        Self {
            service: service.to_owned(),
            lock: Mutex::new(()),
        }
    }

    fn read(&self, account: &str) -> Result<Option<Vec<u8>>, SecretError> {
        match passwords::get_generic_password(&self.service, account) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.code() == NOT_FOUND => Ok(None),
            Err(e) => Err(SecretError::Keychain(e.to_string())),
        }
    }

    fn write(&self, account: &str, value: &[u8]) -> Result<(), SecretError> {
        passwords::set_generic_password(&self.service, account, value)
            .map_err(|e| SecretError::Keychain(e.to_string()))
    }

    fn load_names(&self) -> Result<Vec<String>, SecretError> {
        Ok(self
            .read(NAMES)?
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default())
    }

    fn save_names(&self, names: &[String]) -> Result<(), SecretError> {
        let body = serde_json::to_vec(names).map_err(|e| SecretError::Keychain(e.to_string()))?;
        self.write(NAMES, &body)
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SecretStore for KeychainSecretStore {
    fn get(&self, name: &str) -> Result<Option<String>, SecretError> {
        check_name(name)?;
        self.read(name)?
            .map(|bytes| {
                String::from_utf8(bytes)
                    .map_err(|_| SecretError::Keychain(format!("{name} is not text")))
            })
            .transpose()
    }

    fn set(&self, name: &str, value: &str) -> Result<(), SecretError> {
        check_name(name)?;
        let _guard = self.locked();
        self.write(name, value.as_bytes())?;
        let mut names = self.load_names()?;
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
            names.sort();
            self.save_names(&names)?;
        }
        Ok(())
    }

    fn remove(&self, name: &str) -> Result<bool, SecretError> {
        check_name(name)?;
        let _guard = self.locked();
        let existed = match passwords::delete_generic_password(&self.service, name) {
            Ok(()) => true,
            Err(e) if e.code() == NOT_FOUND => false,
            Err(e) => return Err(SecretError::Keychain(e.to_string())),
        };
        let mut names = self.load_names()?;
        names.retain(|n| n != name);
        self.save_names(&names)?;
        Ok(existed)
    }

    fn names(&self) -> Result<Vec<String>, SecretError> {
        self.load_names()
    }
}
