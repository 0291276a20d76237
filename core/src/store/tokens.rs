//! API tokens. Only their SHA-256 hashes are stored.

use rusqlite::{Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{Result, cached_execute, cached_query_row, format_ms, now_ms};
use crate::ids::{TokenId, UserId};
use crate::store::users::{self, User};

/// A token as listed (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub id: TokenId,
    pub user_id: UserId,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked: bool,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<TokenInfo> {
    let last_used: Option<i64> = row.get("last_used_at")?;
    let revoked: Option<i64> = row.get("revoked_at")?;
    Ok(TokenInfo {
        id: row.get("id")?,
        user_id: row.get("user_id")?,
        name: row.get("name")?,
        created_at: format_ms(row.get("created_at")?),
        last_used_at: last_used.map(format_ms),
        revoked: revoked.is_some(),
    })
}

/// Creates a token for `user` and returns its info and the secret, which is
/// not kept anywhere.
pub fn create(conn: &Connection, user: UserId, name: &str) -> Result<(TokenInfo, String)> {
    let secret = crate::token::generate();
    let id = TokenId::new();
    let now = now_ms();
    cached_execute(
        conn,
        "INSERT INTO tokens (id, user_id, name, hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        rusqlite::params![id, user, name, crate::token::hash(&secret), now],
    )?;
    let info = TokenInfo {
        id,
        user_id: user,
        name: name.to_owned(),
        created_at: format_ms(now),
        last_used_at: None,
        revoked: false,
    };
    Ok((info, secret))
}

/// The user a live token belongs to.
pub fn authenticate(conn: &Connection, secret: &str) -> Result<Option<(TokenId, User)>> {
    let found: Option<(TokenId, UserId)> = cached_query_row(
        conn,
        "SELECT id, user_id FROM tokens WHERE hash = ?1 AND revoked_at IS NULL",
        [crate::token::hash(secret)],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?;
    let Some((token, user)) = found else {
        return Ok(None);
    };
    Ok(users::get(conn, user)?.map(|u| (token, u)))
}

/// Records use, at most once a minute per token to keep reads cheap.
pub fn touch(conn: &Connection, id: TokenId) -> Result<()> {
    let now = now_ms();
    cached_execute(
        conn,
        "UPDATE tokens SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?3)",
        rusqlite::params![id, now, now - 60_000],
    )?;
    Ok(())
}

/// Tokens of one user, or of everyone when `user` is `None`.
pub fn list(conn: &Connection, user: Option<UserId>) -> Result<Vec<TokenInfo>> {
    let mut stmt =
        conn.prepare_cached("SELECT * FROM tokens WHERE (?1 IS NULL OR user_id = ?1) ORDER BY id")?;
    let tokens = stmt
        .query_map([user], from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(tokens)
}

pub fn get(conn: &Connection, id: TokenId) -> Result<Option<TokenInfo>> {
    Ok(cached_query_row(conn, "SELECT * FROM tokens WHERE id = ?1", [id], from_row).optional()?)
}

/// Revokes a token; returns false when it was already revoked.
pub fn revoke(conn: &Connection, id: TokenId) -> Result<bool> {
    let changed = cached_execute(
        conn,
        "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        rusqlite::params![id, now_ms()],
    )?;
    Ok(changed == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{StoreError, test_store, users::Role};

    #[test]
    fn tokens_authenticate_until_revoked() {
        let (_dir, store) = test_store();
        let (info, secret) = store
            .write(|tx| {
                let user = users::create(tx, "alice", Role::Member)?;
                create(tx, user.id, "laptop")
            })
            .unwrap();
        let (id, user) = store.read(|c| authenticate(c, &secret)).unwrap().unwrap();
        assert_eq!((id, user.name.as_str()), (info.id, "alice"));
        assert!(
            store
                .read(|c| authenticate(c, "hgr_wrong"))
                .unwrap()
                .is_none()
        );
        assert!(store.write(|tx| revoke(tx, info.id)).unwrap());
        assert!(!store.write(|tx| revoke(tx, info.id)).unwrap());
        assert!(store.read(|c| authenticate(c, &secret)).unwrap().is_none());
        // The secret itself is nowhere in the database.
        let stored: String = store
            .read(|c| {
                Ok::<_, StoreError>(c.query_row("SELECT hash FROM tokens", [], |r| r.get(0))?)
            })
            .unwrap();
        assert_ne!(stored, secret);
    }
}
