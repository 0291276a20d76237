//! API tokens: random secrets shown once, stored only as SHA-256 hashes.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Every token starts with this, so secret scanners and humans can spot one.
pub const PREFIX: &str = "hgr_";

/// A new random token (32 bytes of entropy, hex).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{PREFIX}{}", hex::encode(bytes))
}

/// The hash kept in the database. Tokens carry 256 bits of entropy, so a plain
/// SHA-256 is enough (no password-style stretching needed).
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_unique_and_hash_stably() {
        let a = super::generate();
        let b = super::generate();
        assert_ne!(a, b);
        assert!(a.starts_with(super::PREFIX));
        assert_eq!(super::hash(&a), super::hash(&a));
        assert_ne!(super::hash(&a), super::hash(&b));
    }
}
