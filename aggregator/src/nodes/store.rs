//! Node rows in the database: registration upserts, loading, leaving, batched flushes.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32};
use std::sync::{Arc, Mutex};

use hero_protocol::NodeRegistration;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::registry::NodeEntry;
use super::reputation::NodeCounters;
use crate::db::Db;

const COLUMNS: &str = "id, name, url, api_key, token_hash, operator, backend, weight, \
    max_concurrent_requests, reputation, total_requests, successful_requests, \
    avg_response_time_ms, valid_votes, agreed_votes, last_heartbeat_ms, left_at_ms, public_key";

fn to_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v.max(0)).unwrap_or(0)
}

fn entry_from_row(row: &AnyRow) -> Result<NodeEntry, sqlx::Error> {
    let left_at: Option<i64> = row.try_get("left_at_ms")?;
    let counters = NodeCounters {
        total_requests: to_u64(row.try_get("total_requests")?),
        successful_requests: to_u64(row.try_get("successful_requests")?),
        avg_response_time_ms: row.try_get("avg_response_time_ms")?,
        valid_votes: to_u64(row.try_get("valid_votes")?),
        agreed_votes: to_u64(row.try_get("agreed_votes")?),
        reputation: row.try_get("reputation")?,
        consecutive_failures: 0,
        quarantined_until_ms: 0,
    };
    Ok(NodeEntry {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        url: row.try_get("url")?,
        api_key: row.try_get("api_key")?,
        token_hash: row.try_get("token_hash")?,
        public_key: row.try_get("public_key")?,
        operator: row.try_get("operator")?,
        backend: row.try_get("backend")?,
        weight: to_u32(row.try_get("weight")?),
        max_concurrent: to_u32(row.try_get("max_concurrent_requests")?).max(1),
        last_heartbeat_ms: AtomicI64::new(
            row.try_get::<Option<i64>, _>("last_heartbeat_ms")?
                .unwrap_or(0),
        ),
        reported_requests: AtomicU32::new(0),
        in_flight: Arc::new(AtomicU32::new(0)),
        left: AtomicBool::new(left_at.is_some()),
        counters: Mutex::new(counters.clone()),
        dirty: AtomicBool::new(false),
        flushed: Mutex::new(counters),
    })
}

/// Inserts a node, or updates the row with the same URL; returns the stored node.
pub async fn upsert(
    db: &Db,
    reg: &NodeRegistration,
    url: &str,
    token_hash: &str,
    now_ms: i64,
) -> Result<NodeEntry, sqlx::Error> {
    let sql = format!(
        "INSERT INTO nodes (id, name, url, api_key, token_hash, operator, backend, version, \
             weight, max_concurrent_requests, last_heartbeat_ms, created_at_ms, updated_at_ms, \
             public_key) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $11, $12) \
         ON CONFLICT (url) DO UPDATE SET name = excluded.name, api_key = excluded.api_key, \
             token_hash = excluded.token_hash, operator = excluded.operator, \
             backend = excluded.backend, version = excluded.version, weight = excluded.weight, \
             max_concurrent_requests = excluded.max_concurrent_requests, \
             last_heartbeat_ms = excluded.last_heartbeat_ms, left_at_ms = NULL, \
             public_key = excluded.public_key, \
             updated_at_ms = excluded.updated_at_ms \
         RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&reg.name)
        .bind(url)
        .bind(reg.api_key.clone())
        .bind(token_hash)
        .bind(reg.operator.clone())
        .bind(reg.backend.clone())
        .bind(reg.version.clone())
        .bind(i64::from(reg.weight))
        .bind(i64::from(reg.max_concurrent_requests))
        .bind(now_ms)
        .bind(reg.public_key.clone())
        .fetch_one(&db.writer)
        .await?;
    entry_from_row(&row)
}

pub async fn load_all(db: &Db) -> Result<Vec<NodeEntry>, sqlx::Error> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM nodes"))
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(entry_from_row).collect()
}

pub async fn find(db: &Db, id: &str) -> Result<Option<NodeEntry>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM nodes WHERE id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(entry_from_row).transpose()
}

pub async fn mark_left(db: &Db, id: &str, now_ms: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE nodes SET left_at_ms = $1, updated_at_ms = $1 WHERE id = $2")
        .bind(now_ms)
        .bind(id)
        .execute(&db.writer)
        .await?;
    Ok(())
}

/// What a flush writes for one node.
pub struct NodeFlush {
    pub id: String,
    pub last_heartbeat_ms: i64,
    /// Counts added since the last flush (requests, successes, valid and agreeing votes).
    pub added: NodeCounters,
    /// Latest average latency and reputation (last writer wins).
    pub current: NodeCounters,
}

/// Writes heartbeat times and counters of many nodes in one transaction.
pub async fn flush(db: &Db, rows: &[NodeFlush], now_ms: i64) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin_write().await?;
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    for r in rows {
        let (a, c) = (&r.added, &r.current);
        sqlx::query(
            "UPDATE nodes SET last_heartbeat_ms = CASE WHEN last_heartbeat_ms IS NULL \
                 OR last_heartbeat_ms < $1 THEN $1 ELSE last_heartbeat_ms END, \
             total_requests = total_requests + $2, \
             successful_requests = successful_requests + $3, avg_response_time_ms = $4, \
             valid_votes = valid_votes + $5, agreed_votes = agreed_votes + $6, \
             reputation = $7, updated_at_ms = $8 \
             WHERE id = $9",
        )
        .bind(r.last_heartbeat_ms)
        .bind(count(a.total_requests))
        .bind(count(a.successful_requests))
        .bind(c.avg_response_time_ms)
        .bind(count(a.valid_votes))
        .bind(count(a.agreed_votes))
        .bind(c.reputation)
        .bind(now_ms)
        .bind(&r.id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}
