//! The SQLite store: one file in the data dir, WAL mode, embedded migrations.
//!
//! Writes run in `BEGIN IMMEDIATE` transactions on one writer connection, so
//! they never fail half-way on a lock upgrade; reads use their own connections
//! and never wait for writers (WAL).

pub mod events;
pub mod mirrors;
pub mod repos;
pub mod tokens;
pub mod users;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

pub use rusqlite::{Connection, Error as SqlError, Transaction};

/// Migrations in order; each runs once, recorded in `PRAGMA user_version`.
/// (0002 is SSH keys, on its own branch; numbers stay unique across branches.)
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("migrations/0001_init.sql")),
    ("0003_mirrors", include_str!("migrations/0003_mirrors.sql")),
];

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error(
        "database {path} has schema version {found}, newer than this Hangar knows ({known}); upgrade Hangar"
    )]
    TooNew {
        path: String,
        found: i64,
        known: usize,
    },
    #[error("migration {name} failed: {source}")]
    Migration {
        name: &'static str,
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The database, shared by the whole agent.
pub struct Store {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let mut writer = connect(path)?;
        migrate(&mut writer, path)?;
        Ok(Self {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// Runs `f` in a durable `BEGIN IMMEDIATE` transaction and commits it.
    pub fn write<T, E: From<rusqlite::Error>>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let mut conn = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Runs `f` on a read connection (a consistent snapshot for its duration if it
    /// opens a transaction; single statements are always consistent).
    pub fn read<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Connection) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => connect(&self.path)?,
        };
        let result = f(&conn);
        let mut readers = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if readers.len() < 8 {
            readers.push(conn);
        }
        result
    }
}

fn connect(path: &Path) -> Result<Connection> {
    let open = |path: &Path| -> rusqlite::Result<Connection> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: an acknowledged push or delivery survives power loss, not just a crash.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(conn)
    };
    open(path).map_err(|source| StoreError::Open {
        path: path.display().to_string(),
        source,
    })
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let current = usize::try_from(current).unwrap_or(usize::MAX);
    if current > MIGRATIONS.len() {
        return Err(StoreError::TooNew {
            path: path.display().to_string(),
            found: current as i64,
            known: MIGRATIONS.len(),
        });
    }
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)
            .map_err(|source| StoreError::Migration { name, source })?;
        tx.pragma_update(None, "user_version", (index + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// Milliseconds since the Unix epoch: how times are stored.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// A stored time as RFC 3339 UTC, for APIs and output.
pub fn format_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) fn test_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("hangar.db")).unwrap();
    (dir, store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_run_once_and_reopen() {
        let (dir, store) = test_store();
        drop(store);
        let store = Store::open(&dir.path().join("hangar.db")).unwrap();
        let version: i64 = store
            .read(|c| {
                Ok::<_, StoreError>(c.pragma_query_value(None, "user_version", |r| r.get(0))?)
            })
            .unwrap();
        assert_eq!(version as usize, MIGRATIONS.len());
    }

    #[test]
    fn refuses_a_newer_schema() {
        let (dir, store) = test_store();
        store
            .write(|tx| tx.pragma_update(None, "user_version", 999))
            .unwrap();
        drop(store);
        let err = Store::open(&dir.path().join("hangar.db")).err().unwrap();
        assert!(err.to_string().contains("upgrade Hangar"), "{err}");
    }

    #[test]
    fn a_failed_write_changes_nothing() {
        let (_dir, store) = test_store();
        let result: Result<(), StoreError> = store.write(|tx| {
            users::create(tx, "alice", users::Role::Admin)?;
            Err(StoreError::Sql(rusqlite::Error::InvalidQuery))
        });
        assert!(result.is_err());
        assert!(
            store
                .read(|c| users::by_name(c, "alice"))
                .unwrap()
                .is_none()
        );
    }
}
