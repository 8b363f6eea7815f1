//! Operator accounts: who runs nodes. Each has its own enrollment token (shown once, stored
//! hashed, revocable), a cap on its nodes and on their weight. A registration's operator comes
//! from its token, never from its body.

use sqlx::FromRow;
use sqlx::any::AnyRow;

use crate::auth::secrets::{hash_secret, new_secret};
use crate::db::Db;

/// Longest operator name.
pub const MAX_NAME_CHARS: usize = 64;

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct Operator {
    pub id: String,
    pub name: String,
    /// Most nodes the operator may have registered (not counting nodes that left).
    pub max_nodes: i64,
    /// Largest selection weight any of its nodes gets; what a node asks for is clamped to it.
    pub max_weight: i64,
    /// Created by `--local-nodes`: its nodes may use loopback URLs.
    #[sqlx(try_from = "crate::db::Flag")]
    pub is_local: bool,
    pub revoked_at_ms: Option<i64>,
    pub created_at_ms: i64,
}

fn from_row(row: &AnyRow) -> Result<Operator, sqlx::Error> {
    Operator::from_row(row)
}

const COLUMNS: &str = "id, name, max_nodes, max_weight, is_local, revoked_at_ms, created_at_ms";

/// Checks an operator's settings; the reason when they cannot be used.
pub fn check(name: &str, max_nodes: i64, max_weight: i64) -> Result<(), String> {
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "operator name must be 1-{MAX_NAME_CHARS} characters of letters, digits, '-', '_' or '.'"
        ));
    }
    if !(1..=10_000).contains(&max_nodes) {
        return Err("max_nodes must be between 1 and 10000".into());
    }
    if !(0..=1000).contains(&max_weight) {
        return Err("max_weight must be between 0 and 1000".into());
    }
    Ok(())
}

/// Creates an operator; returns it with its enrollment token (the only time it is shown).
pub async fn create(
    db: &Db,
    name: &str,
    max_nodes: i64,
    max_weight: i64,
    now_ms: i64,
) -> Result<(Operator, String), sqlx::Error> {
    let token = format!("{}{}", crate::auth::kinds::ENROLLMENT_PREFIX, new_secret());
    let row = sqlx::query(&format!(
        "INSERT INTO operators (id, name, token_hash, max_nodes, max_weight, is_local, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, 0, $6) RETURNING {COLUMNS}"
    ))
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(name)
    .bind(hash_secret(&token))
    .bind(max_nodes)
    .bind(max_weight)
    .bind(now_ms)
    .fetch_one(&db.writer)
    .await?;
    Ok((from_row(&row)?, token))
}

/// The operator `--local-nodes` registers its in-process nodes under, with a fresh token for
/// this run (created on first use, its token rotated on every start).
pub async fn ensure_local(db: &Db, name: &str, now_ms: i64) -> Result<String, sqlx::Error> {
    let token = format!("{}{}", crate::auth::kinds::ENROLLMENT_PREFIX, new_secret());
    sqlx::query(
        "INSERT INTO operators (id, name, token_hash, max_nodes, max_weight, is_local, created_at_ms) \
         VALUES ($1, $2, $3, 1, 1, 1, $4) \
         ON CONFLICT (name) DO UPDATE SET token_hash = excluded.token_hash, revoked_at_ms = NULL \
         WHERE operators.is_local = 1",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(name)
    .bind(hash_secret(&token))
    .bind(now_ms)
    .execute(&db.writer)
    .await?;
    Ok(token)
}

/// The operator whose enrollment token this is (revoked ones included: the caller refuses).
pub async fn by_token(db: &Db, token: &str) -> Result<Option<Operator>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM operators WHERE token_hash = $1"
    ))
    .bind(hash_secret(token))
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Whether any operator account exists: then the network is closed to everyone else.
pub async fn any(db: &Db) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM operators")
        .fetch_one(&db.pool)
        .await?;
    Ok(n > 0)
}

pub async fn list(db: &Db) -> Result<Vec<Operator>, sqlx::Error> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM operators ORDER BY name"))
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Revokes an operator's token; `None` when there is no such operator.
pub async fn revoke(db: &Db, name: &str, now_ms: i64) -> Result<Option<Operator>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "UPDATE operators SET revoked_at_ms = COALESCE(revoked_at_ms, $1) WHERE name = $2 \
         RETURNING {COLUMNS}"
    ))
    .bind(now_ms)
    .bind(name)
    .fetch_optional(&db.writer)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// The local operator of local node `i` (1-based), under which `--local-nodes` registers.
pub fn local_name(i: usize) -> String {
    format!("local-operator-{i}")
}
