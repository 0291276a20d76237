//! The SQLite store: one file in the data dir, WAL mode, embedded migrations.
//!
//! Writes run in `BEGIN IMMEDIATE` transactions on one writer connection, so
//! they never fail half-way on a lock upgrade; reads use their own connections
//! and never wait for writers (WAL).

pub mod artifacts;
pub mod builds;
pub mod commit_statuses;
pub mod deliveries;
pub mod events;
pub mod forges;
pub mod mirror_sources;
pub mod mirrors;
pub mod pulls;
pub mod repos;
pub mod ssh_keys;
pub mod tokens;
pub mod users;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

pub use rusqlite::{Connection, Error as SqlError, Transaction};

/// Migrations in order; each runs once, recorded by name in `schema_migrations`.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("migrations/0001_init.sql")),
    (
        "0002_ssh_keys",
        include_str!("migrations/0002_ssh_keys.sql"),
    ),
    ("0003_mirrors", include_str!("migrations/0003_mirrors.sql")),
    ("0004_builds", include_str!("migrations/0004_builds.sql")),
    ("0005_forges", include_str!("migrations/0005_forges.sql")),
    (
        "0007_secrets_concurrency",
        include_str!("migrations/0007_secrets_concurrency.sql"),
    ),
    (
        "0009_artifacts",
        include_str!("migrations/0009_artifacts.sql"),
    ),
    (
        "0011_mirror_sync",
        include_str!("migrations/0011_mirror_sync.sql"),
    ),
    (
        "0012_mirror_source_delete",
        include_str!("migrations/0012_mirror_source_delete.sql"),
    ),
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
        "database {path} has migration {migration}, which this Hangar does not know; upgrade Hangar"
    )]
    TooNew { path: String, migration: String },
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
        // Room for every statement the store runs (rusqlite's default is 16).
        conn.set_prepared_statement_cache_capacity(128);
        Ok(conn)
    };
    open(path).map_err(|source| StoreError::Open {
        path: path.display().to_string(),
        source,
    })
}

/// Applies the migrations this database has not seen, each in its own
/// transaction, recording their names (so branches that add migrations in a
/// different order still apply each one exactly once).
fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)")?;
    let applied: Vec<String> = conn
        .prepare("SELECT name FROM schema_migrations")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if let Some(unknown) = applied
        .iter()
        .find(|a| !MIGRATIONS.iter().any(|(name, _)| name == a))
    {
        return Err(StoreError::TooNew {
            path: path.display().to_string(),
            migration: unknown.clone(),
        });
    }
    for (name, sql) in MIGRATIONS
        .iter()
        .filter(|(name, _)| !applied.iter().any(|a| a == name))
    {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)
            .map_err(|source| StoreError::Migration { name, source })?;
        tx.execute(
            "INSERT INTO schema_migrations (name, applied_at) VALUES (?1, ?2)",
            rusqlite::params![name, now_ms()],
        )?;
        tx.commit()?;
    }
    Ok(())
}

/// `Connection::execute` through the connection's statement cache: the agent
/// runs the same few statements for every job, and parsing their SQL each
/// time was a tenth of its CPU per job.
pub(crate) fn cached_execute(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// `Connection::query_row` through the statement cache (see [`cached_execute`]).
pub(crate) fn cached_query_row<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, f)
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
        let applied: i64 = store
            .read(|c| {
                Ok::<_, StoreError>(c.query_row(
                    "SELECT COUNT(*) FROM schema_migrations",
                    [],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        assert_eq!(applied as usize, MIGRATIONS.len());
    }

    #[test]
    fn refuses_a_newer_schema() {
        let (dir, store) = test_store();
        store
            .write(|tx| {
                tx.execute(
                    "INSERT INTO schema_migrations VALUES ('9999_from_the_future', 0)",
                    [],
                )
            })
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
