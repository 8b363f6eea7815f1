//! Admins: personal accounts (`hero-aggregator admin create NAME`), each with its own token
//! (shown once, stored hashed, revocable), plus the optional `--admin-token` for bootstrap and
//! local networks (it acts as the admin named `admin-token`). The [`Admin`] extractor guards
//! every admin endpoint and logs each use with the admin's name.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sqlx::Row;

use super::kinds::{self, TokenKind};
use super::secrets::{hash_secret, new_secret, secrets_match};
use crate::db::Db;
use crate::http::ApiError;
use crate::http::bearer::bearer;
use crate::state::AppState;

/// The name `--admin-token` acts under in logs.
pub const BOOTSTRAP_NAME: &str = "admin-token";

/// The shared bootstrap token, if any.
#[derive(Clone, Default)]
pub struct AdminSettings {
    /// `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

impl std::fmt::Debug for AdminSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminSettings")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// An admin account as `admin list` shows it (never its token).
#[derive(Debug, Clone)]
pub struct AdminAccount {
    pub name: String,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
    pub last_used_at_ms: Option<i64>,
}

/// Admin names: 1 to 64 letters, digits, '-', '_', '.'.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name != BOOTSTRAP_NAME;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "admin names are 1-64 letters, digits, '-', '_' or '.' (and not {BOOTSTRAP_NAME})"
        ))
    }
}

/// Creates an admin; returns its token (the only time it is shown).
pub async fn create(db: &Db, name: &str, now_ms: i64) -> Result<String, sqlx::Error> {
    let token = format!("{}{}", kinds::ADMIN_PREFIX, new_secret());
    sqlx::query("INSERT INTO admins (name, token_hash, created_at_ms) VALUES ($1, $2, $3)")
        .bind(name)
        .bind(hash_secret(&token))
        .bind(now_ms)
        .execute(&db.writer)
        .await?;
    Ok(token)
}

pub async fn list(db: &Db) -> Result<Vec<AdminAccount>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT name, created_at_ms, revoked_at_ms, last_used_at_ms FROM admins ORDER BY name",
    )
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AdminAccount {
                name: r.try_get("name")?,
                created_at_ms: r.try_get("created_at_ms")?,
                revoked_at_ms: r.try_get("revoked_at_ms")?,
                last_used_at_ms: r.try_get("last_used_at_ms")?,
            })
        })
        .collect()
}

/// Revokes an admin's token; false when there is no such active admin.
pub async fn revoke(db: &Db, name: &str, now_ms: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE admins SET revoked_at_ms = $2 WHERE name = $1 AND revoked_at_ms IS NULL",
    )
    .bind(name)
    .bind(now_ms)
    .execute(&db.writer)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The admin a token belongs to: the bootstrap token, or an active admin account.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Option<String>, sqlx::Error> {
    if state
        .admin
        .token
        .as_deref()
        .is_some_and(|expected| secrets_match(token, expected))
    {
        return Ok(Some(BOOTSTRAP_NAME.to_owned()));
    }
    if kinds::of(token) != TokenKind::Admin || token.len() > 128 {
        return Ok(None);
    }
    let name: Option<String> = sqlx::query_scalar(
        "SELECT name FROM admins WHERE token_hash = $1 AND revoked_at_ms IS NULL",
    )
    .bind(hash_secret(token))
    .fetch_optional(&state.db.pool)
    .await?;
    if let Some(name) = &name {
        sqlx::query("UPDATE admins SET last_used_at_ms = $2 WHERE name = $1")
            .bind(name)
            .bind(state.clock.now_ms())
            .execute(&state.db.writer)
            .await?;
    }
    Ok(name)
}

/// A request made by an admin; a handler taking `Admin` is admin-only.
#[derive(Debug, Clone)]
pub struct Admin {
    pub name: String,
}

/// The admin a request's bearer token belongs to, or the 401 that explains why not.
async fn admin_of(parts: &Parts, state: &AppState) -> Result<String, ApiError> {
    let Some(token) = bearer(&parts.headers) else {
        return Err(ApiError::Unauthorized(
            "needs an admin token (Authorization: Bearer ...)".into(),
        ));
    };
    // The bootstrap token is compared first, whatever its shape.
    authenticate(state, token).await?.ok_or_else(|| {
        ApiError::Unauthorized(match kinds::of(token) {
            kind @ (TokenKind::Player | TokenKind::Node | TokenKind::Enrollment) => format!(
                "this is {}; admin endpoints need an admin token",
                kind.described()
            ),
            TokenKind::Admin | TokenKind::Unknown => {
                "admin token is not valid (unknown or revoked)".into()
            }
        })
    })
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let name = admin_of(parts, state).await?;
        tracing::info!(
            target: "audit",
            admin = %name,
            method = %parts.method,
            path = %parts.uri.path(),
            "admin request"
        );
        Ok(Admin { name })
    }
}

/// An admin request whose own rows record the admin (a battle's `created_by`): its audit line
/// is at `debug`, so creating battles at thousands a second does not flood the log.
#[derive(Debug, Clone)]
pub struct RecordedAdmin(pub Admin);

impl FromRequestParts<AppState> for RecordedAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let name = admin_of(parts, state).await?;
        tracing::debug!(
            target: "audit",
            admin = %name,
            method = %parts.method,
            path = %parts.uri.path(),
            "admin request"
        );
        Ok(RecordedAdmin(Admin { name }))
    }
}
