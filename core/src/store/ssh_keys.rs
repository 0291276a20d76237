//! Users' SSH public keys: parsed and checked once when added, then found by
//! their SHA256 fingerprint when a client authenticates.

use rusqlite::{Connection, OptionalExtension, Row};
use serde::Serialize;
use ssh_key::{Algorithm, HashAlg, PublicKey};

use super::{Result, cached_execute, cached_query_row, format_ms, now_ms};
use crate::ids::{SshKeyId, UserId};
use crate::store::users::{self, User};

/// Longest accepted key line: a 16384-bit RSA key with a long comment fits.
pub const MAX_KEY_TEXT: usize = 16 * 1024;
/// Smallest RSA modulus accepted, as OpenSSH since 8.8 requires by default.
pub const MIN_RSA_BITS: u32 = 2048;
/// Largest RSA modulus accepted; more only costs verification time.
pub const MAX_RSA_BITS: u32 = 16384;

/// Why a public key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidKey {
    #[error("no key given: pass the contents of a public key file such as ~/.ssh/id_ed25519.pub")]
    Empty,
    #[error("the key text is longer than {MAX_KEY_TEXT} bytes")]
    TooLong,
    #[error(
        "this is a PRIVATE key; add the public half instead (the .pub file, or `ssh-keygen -y -f KEY`)"
    )]
    Private,
    #[error("give one key at a time (found {0} lines)")]
    SeveralLines(usize),
    #[error("the key contains control characters")]
    Control,
    #[error("not an OpenSSH public key (expected `ssh-ed25519 AAAA... comment`): {0}")]
    Malformed(String),
    #[error("{0} keys are not accepted; use an ed25519, ECDSA or RSA key")]
    Unsupported(String),
    #[error(
        "this RSA key has {0} bits; use at least {MIN_RSA_BITS} (or an ed25519 key: `ssh-keygen -t ed25519`)"
    )]
    WeakRsa(u32),
    #[error("this RSA key has {0} bits, more than the {MAX_RSA_BITS} accepted")]
    HugeRsa(u32),
}

/// A public key that passed every check, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedKey {
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, ...
    pub algorithm: String,
    /// `SHA256:...`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// The key in OpenSSH's one-line form, comment included.
    pub public_key: String,
    pub comment: String,
}

/// Parses one OpenSSH public key line (`ALGORITHM BASE64 [COMMENT]`).
pub fn parse(text: &str) -> Result<ParsedKey, InvalidKey> {
    if text.len() > MAX_KEY_TEXT {
        return Err(InvalidKey::TooLong);
    }
    if text.contains("PRIVATE KEY") {
        return Err(InvalidKey::Private);
    }
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let line = match lines.as_slice() {
        [] => return Err(InvalidKey::Empty),
        [line] => *line,
        more => return Err(InvalidKey::SeveralLines(more.len())),
    };
    if line.chars().any(char::is_control) {
        return Err(InvalidKey::Control);
    }
    let key = PublicKey::from_openssh(line).map_err(|e| InvalidKey::Malformed(e.to_string()))?;
    match key.algorithm() {
        Algorithm::Ed25519 | Algorithm::Ecdsa { .. } => {}
        Algorithm::Rsa { .. } => {
            let bits = key.key_data().rsa().map(|k| k.key_size()).unwrap_or(0);
            if bits < MIN_RSA_BITS {
                return Err(InvalidKey::WeakRsa(bits));
            }
            if bits > MAX_RSA_BITS {
                return Err(InvalidKey::HugeRsa(bits));
            }
        }
        other => return Err(InvalidKey::Unsupported(other.as_str().to_owned())),
    }
    let public_key = key
        .to_openssh()
        .map_err(|e| InvalidKey::Malformed(e.to_string()))?;
    Ok(ParsedKey {
        algorithm: key.algorithm().as_str().to_owned(),
        fingerprint: fingerprint(&key),
        public_key,
        comment: key.comment().to_string(),
    })
}

/// The SHA256 fingerprint (`SHA256:...`) that identifies a key.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// A stored key, as listed.
#[derive(Debug, Clone, Serialize)]
pub struct SshKey {
    pub id: SshKeyId,
    pub user_id: UserId,
    /// The owner's user name.
    pub user: String,
    pub name: String,
    pub algorithm: String,
    pub fingerprint: String,
    pub public_key: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

const SELECT: &str =
    "SELECT k.*, u.name AS user_name FROM ssh_keys k JOIN users u ON u.id = k.user_id";

fn from_row(row: &Row<'_>) -> rusqlite::Result<SshKey> {
    let last_used: Option<i64> = row.get("last_used_at")?;
    Ok(SshKey {
        id: row.get("id")?,
        user_id: row.get("user_id")?,
        user: row.get("user_name")?,
        name: row.get("name")?,
        algorithm: row.get("algorithm")?,
        fingerprint: row.get("fingerprint")?,
        public_key: row.get("public_key")?,
        created_at: format_ms(row.get("created_at")?),
        last_used_at: last_used.map(format_ms),
    })
}

/// Stores `key` for `user`. The caller checks first that the fingerprint is
/// new ([`by_fingerprint`]); the UNIQUE constraint backs that up.
pub fn create(conn: &Connection, user: &User, name: &str, key: &ParsedKey) -> Result<SshKey> {
    let id = SshKeyId::new();
    let now = now_ms();
    cached_execute(
        conn,
        "INSERT INTO ssh_keys (id, user_id, name, algorithm, fingerprint, public_key, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        rusqlite::params![
            id,
            user.id,
            name,
            key.algorithm,
            key.fingerprint,
            key.public_key,
            now
        ],
    )?;
    Ok(SshKey {
        id,
        user_id: user.id,
        user: user.name.clone(),
        name: name.to_owned(),
        algorithm: key.algorithm.clone(),
        fingerprint: key.fingerprint.clone(),
        public_key: key.public_key.clone(),
        created_at: format_ms(now),
        last_used_at: None,
    })
}

pub fn by_fingerprint(conn: &Connection, fingerprint: &str) -> Result<Option<SshKey>> {
    Ok(cached_query_row(
        conn,
        &format!("{SELECT} WHERE k.fingerprint = ?1"),
        [fingerprint],
        from_row,
    )
    .optional()?)
}

/// The user a key belongs to, by the key's fingerprint.
pub fn authenticate(conn: &Connection, fingerprint: &str) -> Result<Option<(SshKeyId, User)>> {
    let Some(key) = by_fingerprint(conn, fingerprint)? else {
        return Ok(None);
    };
    Ok(users::get(conn, key.user_id)?.map(|u| (key.id, u)))
}

/// Records use, at most once a minute per key to keep authentication cheap.
pub fn touch(conn: &Connection, id: SshKeyId) -> Result<()> {
    let now = now_ms();
    cached_execute(
        conn,
        "UPDATE ssh_keys SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?3)",
        rusqlite::params![id, now, now - 60_000],
    )?;
    Ok(())
}

/// Keys of one user, or of everyone when `user` is `None`.
pub fn list(conn: &Connection, user: Option<UserId>) -> Result<Vec<SshKey>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT} WHERE (?1 IS NULL OR k.user_id = ?1) ORDER BY k.id"
    ))?;
    let keys = stmt
        .query_map([user], from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(keys)
}

pub fn get(conn: &Connection, id: SshKeyId) -> Result<Option<SshKey>> {
    Ok(cached_query_row(conn, &format!("{SELECT} WHERE k.id = ?1"), [id], from_row).optional()?)
}

/// Removes a key; returns false when it did not exist.
pub fn delete(conn: &Connection, id: SshKeyId) -> Result<bool> {
    Ok(cached_execute(conn, "DELETE FROM ssh_keys WHERE id = ?1", [id])? == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{test_store, users::Role};
    use proptest::prelude::*;

    // Made with `ssh-keygen -t ed25519 -C alice@laptop`, `-t ecdsa` and `-t rsa -b 1024`.
    const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICK72TvcRVuLtwv+qvLtZDRru+sbWOj3RGTDPk+Ae32i alice@laptop";
    const ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBDfjjdEApvuSKeTlUWAWQeIZMxDqzANxDIUTdJFc6/bytIg9NgBnNHAWjG645qcr6eRr0G2LqFMAXuPs727YybI= bob";
    const RSA_1024: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCrK9WA7KsNS+IiNqW98QeE9aa9WDkf5ZntTNGH9IWDN8FdhMPBE+Lt0E3qT9UdJbmg2hLA5If5whDU/USntoBUOA++tMoIJdE0vsBMDvWqHCqOwPEL6bEYE2CDdkf1L3O7Ewf5lEFFR+q8Z3cc6WoeCq2kn2j+kqQ4b47+Isvs4Q== weak";

    #[test]
    fn parses_ed25519_and_ecdsa() {
        let key = parse(&format!("\n  {ED25519}\n")).unwrap();
        assert_eq!(key.algorithm, "ssh-ed25519");
        assert_eq!(key.comment, "alice@laptop");
        // As `ssh-keygen -lf` prints it.
        assert_eq!(
            key.fingerprint,
            "SHA256:Ys9JM2BKM+pYsLFtzVjhbHX5p2t4NxDPBFueR5Ff5ps"
        );
        assert_eq!(key.public_key, ED25519);
        assert_eq!(parse(ECDSA).unwrap().algorithm, "ecdsa-sha2-nistp256");
    }

    #[test]
    fn refuses_what_is_not_a_usable_public_key() {
        let private = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA\n-----END OPENSSH PRIVATE KEY-----";
        let malformed = InvalidKey::Malformed(String::new());
        let cases = [
            ("", InvalidKey::Empty),
            (private, InvalidKey::Private),
            ("ssh-ed25519 AAAA", malformed.clone()),
            ("hello world", malformed.clone()),
            ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOYBu3Bk", malformed),
            ("a\nb", InvalidKey::SeveralLines(2)),
            (RSA_1024, InvalidKey::WeakRsa(1024)),
            ("ssh-ed25519 AAAA\u{7}", InvalidKey::Control),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(
                std::mem::discriminant(&err),
                std::mem::discriminant(&expected),
                "{text:?}: {err}"
            );
        }
        assert!(matches!(
            parse(&"x".repeat(MAX_KEY_TEXT + 1)),
            Err(InvalidKey::TooLong)
        ));
    }

    #[test]
    fn keys_find_their_user_until_removed() {
        let (_dir, store) = test_store();
        let parsed = parse(ED25519).unwrap();
        let key = store
            .write(|tx| {
                let user = users::create(tx, "alice", Role::Member)?;
                create(tx, &user, "laptop", &parsed)
            })
            .unwrap();
        let (id, user) = store
            .read(|c| authenticate(c, &parsed.fingerprint))
            .unwrap()
            .unwrap();
        assert_eq!((id, user.name.as_str()), (key.id, "alice"));
        store.write(|tx| touch(tx, id)).unwrap();
        let listed = store.read(|c| list(c, Some(user.id))).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].user, "alice");
        assert!(listed[0].last_used_at.is_some());
        // The same key cannot be stored twice.
        assert!(
            store
                .write(|tx| create(tx, &user, "again", &parsed))
                .is_err()
        );
        assert!(store.write(|tx| delete(tx, id)).unwrap());
        assert!(!store.write(|tx| delete(tx, id)).unwrap());
        assert!(
            store
                .read(|c| authenticate(c, &parsed.fingerprint))
                .unwrap()
                .is_none()
        );
    }

    proptest! {
        #[test]
        fn garbage_never_panics(text in "\\PC{0,300}") {
            let _ = parse(&text);
        }

        #[test]
        fn mangled_keys_never_panic(cut in 0usize..120, byte in any::<u8>()) {
            let mut bytes = ED25519.as_bytes().to_vec();
            let at = cut.min(bytes.len() - 1);
            bytes[at] = byte;
            let _ = parse(&String::from_utf8_lossy(&bytes));
        }
    }
}
