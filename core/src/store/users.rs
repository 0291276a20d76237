//! Users and their roles.

use rusqlite::{Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{Result, cached_execute, cached_query_row, format_ms, now_ms};
use crate::ids::UserId;

/// What a user may do. Admins manage users and everything else; members read
/// and write every repository and create repositories; readers only read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Member,
    Reader,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Reader => "reader",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            "reader" => Some(Role::Reader),
            _ => None,
        }
    }

    pub fn can_write(self) -> bool {
        matches!(self, Role::Admin | Role::Member)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub role: Role,
    pub created_at: String,
}

/// Valid user names: 1–64 of `[A-Za-z0-9._-]`, not starting with `.` or `-`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    let role: String = row.get("role")?;
    Ok(User {
        id: row.get("id")?,
        name: row.get("name")?,
        role: Role::parse(&role).unwrap_or(Role::Reader),
        created_at: format_ms(row.get("created_at")?),
    })
}

pub fn create(conn: &Connection, name: &str, role: Role) -> Result<User> {
    let id = UserId::new();
    let now = now_ms();
    cached_execute(
        conn,
        "INSERT INTO users (id, name, role, created_at) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![id, name, role.as_str(), now],
    )?;
    Ok(User {
        id,
        name: name.to_owned(),
        role,
        created_at: format_ms(now),
    })
}

pub fn by_name(conn: &Connection, name: &str) -> Result<Option<User>> {
    Ok(cached_query_row(
        conn,
        "SELECT * FROM users WHERE name = ?1",
        [name],
        from_row,
    )
    .optional()?)
}

pub fn get(conn: &Connection, id: UserId) -> Result<Option<User>> {
    Ok(cached_query_row(conn, "SELECT * FROM users WHERE id = ?1", [id], from_row).optional()?)
}

pub fn list(conn: &Connection) -> Result<Vec<User>> {
    let mut stmt = conn.prepare_cached("SELECT * FROM users ORDER BY name")?;
    let users = stmt
        .query_map([], from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(users)
}

pub fn count(conn: &Connection) -> Result<i64> {
    Ok(cached_query_row(
        conn,
        "SELECT COUNT(*) FROM users",
        [],
        |r| r.get(0),
    )?)
}
