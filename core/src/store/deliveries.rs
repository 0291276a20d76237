//! Webhook deliveries: stored before the forge hears 202, unique per
//! provider + hook + delivery id (so a redelivery or a flood of copies is one
//! row), then processed by the agent's worker until done or given up.

use rusqlite::{Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{Result, cached_execute, cached_query_row, format_ms, now_ms};
use crate::ids::{DeliveryId, ForgeId};

/// Attempts after which a delivery is `failed` (it can still be replayed).
pub const MAX_ATTEMPTS: i64 = 8;

#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub id: DeliveryId,
    pub provider: String,
    pub hook_id: String,
    pub delivery_id: String,
    pub forge_id: Option<ForgeId>,
    pub event: String,
    /// `pending`, `done`, `ignored` (nothing to do) or `failed`.
    pub state: String,
    pub attempts: i64,
    pub result: Option<String>,
    pub received_at: String,
    pub processed_at: Option<String>,
    pub size: i64,
}

/// What a new delivery carries.
pub struct NewDelivery<'a> {
    pub provider: &'a str,
    pub hook_id: &'a str,
    pub delivery_id: &'a str,
    pub forge_id: ForgeId,
    pub event: &'a str,
    pub body: &'a [u8],
}

const COLUMNS: &str = "id, provider, hook_id, delivery_id, forge_id, event, state, attempts, result, received_at, processed_at, length(body) AS size";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: row.get("id")?,
        provider: row.get("provider")?,
        hook_id: row.get("hook_id")?,
        delivery_id: row.get("delivery_id")?,
        forge_id: row.get("forge_id")?,
        event: row.get("event")?,
        state: row.get("state")?,
        attempts: row.get("attempts")?,
        result: row.get("result")?,
        received_at: format_ms(row.get("received_at")?),
        processed_at: row.get::<_, Option<i64>>("processed_at")?.map(format_ms),
        size: row.get("size")?,
    })
}

/// Stores a delivery; returns its id and whether it was new (a copy of a
/// stored one returns the first one's id).
pub fn insert(conn: &Connection, new: &NewDelivery<'_>) -> Result<(DeliveryId, bool)> {
    let id = DeliveryId::new();
    let now = now_ms();
    let inserted = cached_execute(conn,
        "INSERT INTO deliveries (id, provider, hook_id, delivery_id, forge_id, event, body, state, next_attempt, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?8)
         ON CONFLICT (provider, hook_id, delivery_id) DO NOTHING",
        rusqlite::params![id, new.provider, new.hook_id, new.delivery_id, new.forge_id, new.event, new.body, now],
    )?;
    if inserted == 1 {
        return Ok((id, true));
    }
    let existing = cached_query_row(
        conn,
        "SELECT id FROM deliveries WHERE provider = ?1 AND hook_id = ?2 AND delivery_id = ?3",
        rusqlite::params![new.provider, new.hook_id, new.delivery_id],
        |r| r.get(0),
    )?;
    Ok((existing, false))
}

pub fn get(conn: &Connection, id: DeliveryId) -> Result<Option<Delivery>> {
    Ok(cached_query_row(
        conn,
        &format!("SELECT {COLUMNS} FROM deliveries WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()?)
}

/// The raw body, as the forge sent and signed it.
pub fn body(conn: &Connection, id: DeliveryId) -> Result<Vec<u8>> {
    Ok(cached_query_row(
        conn,
        "SELECT body FROM deliveries WHERE id = ?1",
        [id],
        |r| r.get(0),
    )?)
}

/// The latest deliveries, newest first.
pub fn list(conn: &Connection, limit: usize) -> Result<Vec<Delivery>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM deliveries ORDER BY id DESC LIMIT ?1"
    ))?;
    let rows = stmt.query_map([limit as i64], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Pending deliveries due now, oldest first; and when the next one is due.
pub fn due(conn: &Connection, limit: usize) -> Result<(Vec<Delivery>, Option<i64>)> {
    let now = now_ms();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM deliveries WHERE state = 'pending' AND next_attempt <= ?1 ORDER BY id LIMIT ?2"
    ))?;
    let rows = stmt
        .query_map(rusqlite::params![now, limit as i64], from_row)?
        .collect::<rusqlite::Result<_>>()?;
    let next = cached_query_row(
        conn,
        "SELECT MIN(next_attempt) FROM deliveries WHERE state = 'pending' AND next_attempt > ?1",
        [now],
        |r| r.get(0),
    )?;
    Ok((rows, next))
}

/// Records a processing outcome: `done`/`ignored`, or a failure retried at
/// `retry_at` until [`MAX_ATTEMPTS`].
pub fn finish(
    conn: &Connection,
    id: DeliveryId,
    outcome: std::result::Result<(&str, &str), (&str, i64)>,
) -> Result<()> {
    let now = now_ms();
    match outcome {
        Ok((state, result)) => cached_execute(
            conn,
            "UPDATE deliveries SET state = ?2, result = ?3, attempts = attempts + 1, processed_at = ?4 WHERE id = ?1",
            rusqlite::params![id, state, result, now],
        )?,
        Err((error, retry_at)) => cached_execute(
            conn,
            "UPDATE deliveries SET attempts = attempts + 1, result = ?2, next_attempt = ?3,
                    state = CASE WHEN attempts + 1 >= ?4 THEN 'failed' ELSE 'pending' END,
                    processed_at = CASE WHEN attempts + 1 >= ?4 THEN ?5 ELSE NULL END
             WHERE id = ?1",
            rusqlite::params![id, error, retry_at, MAX_ATTEMPTS, now],
        )?,
    };
    Ok(())
}

/// Queues a delivery to be processed again. Returns whether it exists.
pub fn replay(conn: &Connection, id: DeliveryId) -> Result<bool> {
    Ok(cached_execute(
        conn,
        "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt = ?2, processed_at = NULL WHERE id = ?1",
        rusqlite::params![id, now_ms()],
    )? == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_the_same_delivery() {
        let (_dir, store) = super::super::test_store();
        let forge = store
            .write(|tx| {
                super::super::forges::create(
                    tx,
                    "github",
                    super::super::forges::Provider::Github,
                    "https://api.github.com",
                    false,
                )
            })
            .unwrap();
        let new = NewDelivery {
            provider: "github",
            hook_id: "1",
            delivery_id: "abc",
            forge_id: forge.id,
            event: "push",
            body: b"{}",
        };
        let (a, fresh) = store.write(|tx| insert(tx, &new)).unwrap();
        assert!(fresh);
        let (b, fresh) = store.write(|tx| insert(tx, &new)).unwrap();
        assert!(!fresh);
        assert_eq!(a, b);
        let (pending, _) = store.read(|c| due(c, 10)).unwrap();
        assert_eq!(pending.len(), 1);
        store
            .write(|tx| finish(tx, a, Err(("down", i64::MAX))))
            .unwrap();
        assert!(store.read(|c| due(c, 10)).unwrap().0.is_empty());
        store.write(|tx| replay(tx, a)).unwrap();
        assert_eq!(store.read(|c| due(c, 10)).unwrap().0.len(), 1);
    }
}
