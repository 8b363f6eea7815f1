//! Node rows in the database: registration upserts, loading, leaving, batched flushes.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32};
use std::sync::{Arc, Mutex};

use hero_protocol::NodeRegistration;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::registry::NodeEntry;
use super::reputation::NodeCounters;
use crate::db::Db;

const COLUMNS: &str = "id, name, url, api_key, token_hash, operator, backend, model, weight, \
    max_concurrent_requests, reputation, total_requests, successful_requests, \
    avg_response_time_ms, valid_votes, agreed_votes, last_heartbeat_ms, left_at_ms, public_key, \
    probation, maintenance, admin_weight, signed_at_ms";

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
    let weight = row
        .try_get::<Option<i64>, _>("admin_weight")?
        .unwrap_or(row.try_get("weight")?);
    Ok(NodeEntry {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        url: row.try_get("url")?,
        api_key: row.try_get("api_key")?,
        token_hash: row.try_get("token_hash")?,
        public_key: row.try_get("public_key")?,
        decoded_key: std::sync::OnceLock::new(),
        operator: row.try_get("operator")?,
        backend: row.try_get("backend")?,
        model: row.try_get("model")?,
        weight: to_u32(weight),
        max_concurrent: to_u32(row.try_get("max_concurrent_requests")?).max(1),
        last_heartbeat_ms: AtomicI64::new(
            row.try_get::<Option<i64>, _>("last_heartbeat_ms")?
                .unwrap_or(0),
        ),
        others_requests: AtomicU32::new(0),
        in_flight: Arc::new(AtomicU32::new(0)),
        left: AtomicBool::new(left_at.is_some()),
        probation: AtomicBool::new(row.try_get::<i64, _>("probation")? == 1),
        maintenance: AtomicBool::new(row.try_get::<i64, _>("maintenance")? == 1),
        busy_until_ms: AtomicI64::new(0),
        counters: Mutex::new(counters.clone()),
        dirty: AtomicBool::new(false),
        flushed: Mutex::new(counters),
    })
}

/// What a registration writes: the node's own settings as accepted.
pub struct Registered<'a> {
    pub reg: &'a NodeRegistration,
    pub url: &'a str,
    pub operator: &'a str,
    pub weight: u32,
    pub token_hash: &'a str,
    pub signed_at_ms: Option<i64>,
    pub probation: bool,
}

/// Inserts a new node unless its operator already has `max_nodes` active nodes (`None`
/// then). Count and insert are one transaction holding the operator's row (PostgreSQL) or
/// the one writer (SQLite), so racing registrations cannot exceed the cap.
pub async fn insert_within(
    db: &Db,
    r: &Registered<'_>,
    max_nodes: Option<i64>,
    now_ms: i64,
) -> Result<Option<NodeEntry>, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    if let Some(max) = max_nodes {
        if db.dialect == crate::db::Dialect::Postgres {
            sqlx::query("SELECT id FROM operators WHERE name = $1 FOR UPDATE")
                .bind(r.operator)
                .fetch_optional(&mut *tx)
                .await?;
        }
        if count_active(&mut *tx, r.operator).await? >= max {
            return Ok(None);
        }
    }
    let entry = insert(&mut tx, r, now_ms).await?;
    tx.commit().await?;
    Ok(Some(entry))
}

/// Inserts a new node; returns it as stored.
async fn insert(
    tx: &mut crate::db::Tx,
    r: &Registered<'_>,
    now_ms: i64,
) -> Result<NodeEntry, sqlx::Error> {
    let sql = format!(
        "INSERT INTO nodes (id, name, url, api_key, token_hash, operator, backend, version, \
             weight, max_concurrent_requests, last_heartbeat_ms, created_at_ms, updated_at_ms, \
             public_key, signed_at_ms, probation, model) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $11, $12, $13, $14, $15) \
         RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&r.reg.name)
        .bind(r.url)
        .bind(r.reg.api_key.clone())
        .bind(r.token_hash)
        .bind(r.operator)
        .bind(r.reg.backend.clone())
        .bind(r.reg.version.clone())
        .bind(i64::from(r.weight))
        .bind(i64::from(r.reg.max_concurrent_requests))
        .bind(now_ms)
        .bind(r.reg.public_key.clone())
        .bind(r.signed_at_ms)
        .bind(i64::from(r.probation))
        .bind(r.reg.model.clone())
        .fetch_one(&mut **tx)
        .await?;
    entry_from_row(&row)
}

/// Updates an existing node from a registration its key (or its operator, for an unsigned
/// node) is entitled to: new settings, URL and token; it rejoins if it had left. Probation,
/// maintenance and an admin's weight stay. `expected_signed_at` guards against a concurrent
/// replay: the row changes only if nobody registered it meanwhile.
pub async fn update(
    db: &Db,
    id: &str,
    r: &Registered<'_>,
    expected_signed_at: Option<i64>,
    now_ms: i64,
) -> Result<Option<NodeEntry>, sqlx::Error> {
    let sql = format!(
        "UPDATE nodes SET name = $1, url = $2, api_key = $3, token_hash = $4, backend = $5, \
             version = $6, weight = $7, max_concurrent_requests = $8, last_heartbeat_ms = $9, \
             updated_at_ms = $9, left_at_ms = NULL, public_key = $10, signed_at_ms = $11, \
             operator = $14, model = $15 \
         WHERE id = $12 AND (signed_at_ms = $13 OR (signed_at_ms IS NULL AND $13 IS NULL)) \
         RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(&r.reg.name)
        .bind(r.url)
        .bind(r.reg.api_key.clone())
        .bind(r.token_hash)
        .bind(r.reg.backend.clone())
        .bind(r.reg.version.clone())
        .bind(i64::from(r.weight))
        .bind(i64::from(r.reg.max_concurrent_requests))
        .bind(now_ms)
        .bind(r.reg.public_key.clone())
        .bind(r.signed_at_ms)
        .bind(id)
        .bind(expected_signed_at)
        .bind(r.operator)
        .bind(r.reg.model.clone())
        .fetch_optional(&db.writer)
        .await?;
    row.as_ref().map(entry_from_row).transpose()
}

/// A stored node's identity, as registration needs it.
#[derive(Debug, Clone)]
pub struct Identity {
    pub id: String,
    pub url: String,
    pub operator: Option<String>,
    pub public_key: Option<String>,
    pub signed_at_ms: Option<i64>,
    pub left: bool,
}

async fn identity_where(
    db: &Db,
    column: &str,
    value: &str,
) -> Result<Option<Identity>, sqlx::Error> {
    let sql = format!(
        "SELECT id, url, operator, public_key, signed_at_ms, left_at_ms FROM nodes WHERE {column} = $1"
    );
    let row = sqlx::query(&sql)
        .bind(value)
        .fetch_optional(&db.writer)
        .await?;
    row.map(|row| {
        Ok(Identity {
            id: row.try_get("id")?,
            url: row.try_get("url")?,
            operator: row.try_get("operator")?,
            public_key: row.try_get("public_key")?,
            signed_at_ms: row.try_get("signed_at_ms")?,
            left: row.try_get::<Option<i64>, _>("left_at_ms")?.is_some(),
        })
    })
    .transpose()
}

/// The node holding `url`, if any.
pub async fn by_url(db: &Db, url: &str) -> Result<Option<Identity>, sqlx::Error> {
    identity_where(db, "url", url).await
}

/// The node holding `public_key`, if any.
pub async fn by_key(db: &Db, public_key: &str) -> Result<Option<Identity>, sqlx::Error> {
    identity_where(db, "public_key", public_key).await
}

/// Nodes of `operator` that have not left.
pub async fn count_active<'e, E>(executor: E, operator: &str) -> Result<i64, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query_scalar("SELECT COUNT(*) FROM nodes WHERE operator = $1 AND left_at_ms IS NULL")
        .bind(operator)
        .fetch_one(executor)
        .await
}

/// Marks every node of `operator` as left (its operator was revoked); returns their ids.
pub async fn leave_all_of(
    db: &Db,
    operator: &str,
    now_ms: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE nodes SET left_at_ms = $1, updated_at_ms = $1 \
         WHERE operator = $2 AND left_at_ms IS NULL RETURNING id",
    )
    .bind(now_ms)
    .bind(operator)
    .fetch_all(&db.writer)
    .await
}

/// Marks as left every node whose operator is no operator account (nodes of the open network,
/// once the first operator exists); returns their ids. They may come back with a token.
pub async fn leave_open_nodes(db: &Db, now_ms: i64) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE nodes SET left_at_ms = $1, updated_at_ms = $1 \
         WHERE left_at_ms IS NULL \
           AND (operator IS NULL OR operator NOT IN (SELECT name FROM operators)) \
         RETURNING id",
    )
    .bind(now_ms)
    .fetch_all(&db.writer)
    .await
}

/// Frees the URL of node `id` and marks it as left, if it still holds `url` with `public_key`
/// (false when it changed meanwhile): its URL becomes `reclaimed:{id}`, which no registration
/// can name (node URLs are http or https).
pub async fn release_url(
    db: &Db,
    id: &str,
    url: &str,
    public_key: Option<&str>,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE nodes SET url = 'reclaimed:' || id, left_at_ms = COALESCE(left_at_ms, $1), \
             updated_at_ms = $1 \
         WHERE id = $2 AND url = $3 AND COALESCE(public_key, '') = COALESCE($4, '')",
    )
    .bind(now_ms)
    .bind(id)
    .bind(url)
    .bind(public_key)
    .execute(&db.writer)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What an admin may change on a node.
#[derive(Debug, Default, Clone)]
pub struct AdminPatch {
    pub weight: Option<u32>,
    pub maintenance: Option<bool>,
    pub probation: Option<bool>,
    /// Forget the node's key, so its URL can be registered with another key.
    pub reset_key: bool,
}

/// Applies an admin's change; returns the node as stored, or `None` when unknown.
pub async fn patch(
    db: &Db,
    id: &str,
    p: &AdminPatch,
    now_ms: i64,
) -> Result<Option<NodeEntry>, sqlx::Error> {
    let sql = format!(
        "UPDATE nodes SET admin_weight = COALESCE($1, admin_weight), \
             maintenance = COALESCE($2, maintenance), probation = COALESCE($3, probation), \
             public_key = CASE WHEN $4 = 1 THEN NULL ELSE public_key END, \
             signed_at_ms = CASE WHEN $4 = 1 THEN NULL ELSE signed_at_ms END, \
             updated_at_ms = $5 \
         WHERE id = $6 RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(p.weight.map(i64::from))
        .bind(p.maintenance.map(i64::from))
        .bind(p.probation.map(i64::from))
        .bind(i64::from(p.reset_key))
        .bind(now_ms)
        .bind(id)
        .fetch_optional(&db.writer)
        .await?;
    row.as_ref().map(entry_from_row).transpose()
}

/// Hands each node heard from since `since_ms` to `each`, one row at a time (older ones stay
/// in the table, out of memory); returns how many. Streamed: a network of ten thousand nodes
/// is read every few seconds, and holding all its rows at once cost more than the registry.
pub async fn each_recent(
    db: &Db,
    since_ms: i64,
    mut each: impl FnMut(NodeEntry),
) -> Result<usize, sqlx::Error> {
    use futures::TryStreamExt;
    let sql = format!("SELECT {COLUMNS} FROM nodes WHERE last_heartbeat_ms >= $1");
    let mut rows = sqlx::query(&sql).bind(since_ms).fetch(&db.pool);
    let mut count = 0;
    while let Some(row) = rows.try_next().await? {
        each(entry_from_row(&row)?);
        count += 1;
    }
    Ok(count)
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
    /// Still on probation (a node that finished it never returns to it by a flush).
    pub probation: bool,
}

/// Rows per flush statement: well under both databases' bound-parameter limits.
const FLUSH_ROWS_PER_STATEMENT: usize = 500;

/// Writes heartbeat times, counters and probation of many nodes: one multi-row `UPDATE ...
/// FROM (VALUES ...)` per 500 nodes, in one transaction.
pub async fn flush(db: &Db, rows: &[NodeFlush], now_ms: i64) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin_write().await?;
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    const COLUMNS: usize = 9;
    for chunk in rows.chunks(FLUSH_ROWS_PER_STATEMENT) {
        let mut params = crate::db::Params::new(db.dialect);
        let mut values = Vec::with_capacity(chunk.len());
        for _ in 0..chunk.len() {
            let p: Vec<String> = (0..COLUMNS).map(|_| params.take()).collect();
            values.push(format!(
                "(CAST({} AS TEXT), CAST({} AS BIGINT), CAST({} AS BIGINT), CAST({} AS BIGINT), \
                 CAST({} AS DOUBLE PRECISION), CAST({} AS BIGINT), CAST({} AS BIGINT), \
                 CAST({} AS DOUBLE PRECISION), CAST({} AS BIGINT))",
                p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8]
            ));
        }
        let updated_at = params.take();
        // A CTE names the columns of the VALUES list the same way on SQLite and PostgreSQL.
        let sql = format!(
            "WITH v (id, hb, total, ok, avg, valid, agreed, rep, probation) AS (VALUES {}) \
             UPDATE nodes SET last_heartbeat_ms = CASE WHEN nodes.last_heartbeat_ms IS NULL \
                 OR nodes.last_heartbeat_ms < v.hb THEN v.hb ELSE nodes.last_heartbeat_ms END, \
             total_requests = nodes.total_requests + v.total, \
             successful_requests = nodes.successful_requests + v.ok, \
             avg_response_time_ms = v.avg, valid_votes = nodes.valid_votes + v.valid, \
             agreed_votes = nodes.agreed_votes + v.agreed, reputation = v.rep, \
             probation = CASE WHEN v.probation = 0 THEN 0 ELSE nodes.probation END, \
             updated_at_ms = {updated_at} FROM v WHERE nodes.id = v.id",
            values.join(", ")
        );
        // One shape per batch size: kept out of the statement cache (see `db::one_off`).
        let mut query = crate::db::one_off(&sql);
        for r in chunk {
            let (a, c) = (&r.added, &r.current);
            query = query
                .bind(r.id.clone())
                .bind(r.last_heartbeat_ms)
                .bind(count(a.total_requests))
                .bind(count(a.successful_requests))
                .bind(c.avg_response_time_ms)
                .bind(count(a.valid_votes))
                .bind(count(a.agreed_votes))
                .bind(c.reputation)
                .bind(i64::from(r.probation));
        }
        query.bind(now_ms).execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// A stored vote of the node, newest first.
#[derive(Debug, serde::Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct RecentVote {
    pub battle_id: String,
    pub role: String,
    pub voted_winner_id: Option<String>,
    #[sqlx(try_from = "crate::db::Flag")]
    pub is_valid: bool,
    #[sqlx(try_from = "crate::db::MaybeFlag")]
    pub agrees: Option<bool>,
    pub response_time_ms: i64,
    pub error: Option<String>,
    pub created_at_ms: i64,
}

/// The `limit` most recent stored votes of node `id`.
pub async fn recent_votes(db: &Db, id: &str, limit: i64) -> Result<Vec<RecentVote>, sqlx::Error> {
    sqlx::query_as(
        "SELECT battle_id, role, voted_winner_id, is_valid, agrees, response_time_ms, error, \
             created_at_ms FROM battle_votes WHERE node_id = $1 \
         ORDER BY created_at_ms DESC LIMIT $2",
    )
    .bind(id)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use hero_testkit::{Backend, TestDb};

    /// A URL is released only from the node that still holds it with the key that was
    /// checked: a node that moved or changed key meanwhile keeps what it has now.
    async fn a_url_is_released_only_while_its_holder_is_unchanged(backend: Backend) {
        let test_db = TestDb::new(backend).await;
        let db = Db::connect(&test_db.url, 2).await.unwrap();
        db.migrate().await.unwrap();
        let reg: NodeRegistration = serde_json::from_value(serde_json::json!({
            "name": "holder", "url": "http://10.0.0.1:9", "public_key": "aa".repeat(32)
        }))
        .unwrap();
        let registered = Registered {
            reg: &reg,
            url: &reg.url,
            operator: "host 10.0.0.1",
            weight: 1,
            token_hash: "hash",
            signed_at_ms: Some(1),
            probation: false,
        };
        let node = insert_within(&db, &registered, None, 1)
            .await
            .unwrap()
            .unwrap();
        let key = reg.public_key.as_deref();
        // Stale views: another URL, another key, no key.
        for (url, key) in [
            ("http://10.0.0.1:8", key),
            (reg.url.as_str(), Some("bb")),
            (reg.url.as_str(), None),
        ] {
            assert!(!release_url(&db, &node.id, url, key, 2).await.unwrap());
        }
        assert_eq!(by_url(&db, &reg.url).await.unwrap().unwrap().id, node.id);
        assert!(release_url(&db, &node.id, &reg.url, key, 3).await.unwrap());
        assert!(by_url(&db, &reg.url).await.unwrap().is_none());
        let gone = by_key(&db, key.unwrap()).await.unwrap().unwrap();
        assert_eq!(gone.url, format!("reclaimed:{}", node.id));
        assert!(gone.left);
        db.pool.close().await;
        db.writer.close().await;
        test_db.remove().await;
    }

    #[tokio::test]
    async fn a_url_is_released_only_while_its_holder_is_unchanged_sqlite() {
        a_url_is_released_only_while_its_holder_is_unchanged(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn a_url_is_released_only_while_its_holder_is_unchanged_postgres() {
        a_url_is_released_only_while_its_holder_is_unchanged(Backend::Postgres).await;
    }
}
