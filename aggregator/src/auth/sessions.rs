//! Sessions and refresh tokens: one session per login, refresh tokens rotate inside it, and a
//! refresh token presented twice revokes the whole session (the family).

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use super::Auth;
use super::secrets::{hash_secret, new_secret};
use crate::db::{Db, Tx};
use crate::http::ApiError;

/// The tokens a login or a refresh hands out.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Tokens {
    /// JWT for `Authorization: Bearer ...`.
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Opaque token for `POST /api/v1/auth/refresh`; usable once.
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: i64,
}

fn tokens(auth: &Auth, player: &str, session: &str, refresh: String, now_ms: i64) -> Tokens {
    Tokens {
        access_token: auth
            .tokens()
            .issue(player, session, now_ms.div_euclid(1000)),
        token_type: "Bearer",
        expires_in: auth.tokens().ttl_secs,
        refresh_token: refresh,
        refresh_expires_in: auth.refresh_ttl_ms / 1000,
    }
}

async fn insert_refresh(
    tx: &mut Tx,
    auth: &Auth,
    session: &str,
    now_ms: i64,
) -> Result<String, sqlx::Error> {
    let refresh = new_secret();
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, issued_at_ms, expires_at_ms) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(hash_secret(&refresh))
    .bind(session)
    .bind(now_ms)
    .bind(now_ms.saturating_add(auth.refresh_ttl_ms))
    .execute(&mut **tx)
    .await?;
    Ok(refresh)
}

/// Starts a session for `player` (logging in from `device`) and issues its first tokens.
pub async fn open(
    tx: &mut Tx,
    auth: &Auth,
    player: &str,
    device: Option<&str>,
    now_ms: i64,
) -> Result<Tokens, sqlx::Error> {
    let session = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO sessions (id, player_id, device_id, created_at_ms) VALUES ($1, $2, $3, $4)",
    )
    .bind(&session)
    .bind(player)
    .bind(device)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    let refresh = insert_refresh(tx, auth, &session, now_ms).await?;
    Ok(tokens(auth, player, &session, refresh, now_ms))
}

/// Ends a session: its access tokens stop working and its refresh tokens are refused.
pub async fn revoke(
    tx: &mut Tx,
    session: &str,
    reason: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE sessions SET revoked_at_ms = $2, revoke_reason = $3 \
         WHERE id = $1 AND revoked_at_ms IS NULL",
    )
    .bind(session)
    .bind(now_ms)
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// How long a session found open is believed open without asking the database again. A
/// session ended on this replica is refused here at once; one ended on another replica is
/// refused here within this long.
pub const BELIEVED_OPEN: Duration = Duration::from_secs(1);

/// The sessions found open in the last [`BELIEVED_OPEN`], so most authenticated requests skip
/// the database, and the sessions this replica ended lately.
pub struct OpenSessions {
    /// Session id → its player.
    open: Cache<String, Arc<str>>,
    /// Sessions ended here lately: a request that read one as open just before its end must
    /// not remember it as open after.
    ended: Cache<String, ()>,
}

impl Default for OpenSessions {
    fn default() -> Self {
        Self {
            open: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(BELIEVED_OPEN)
                .build(),
            ended: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(BELIEVED_OPEN * 2)
                .build(),
        }
    }
}

impl OpenSessions {
    /// Whether `session` of `player` is still open (checked on every authenticated request).
    pub async fn is_open(&self, db: &Db, player: &str, session: &str) -> Result<bool, sqlx::Error> {
        if self.ended.contains_key(session) {
            return Ok(false);
        }
        if self.open.get(session).is_some_and(|p| &*p == player) {
            return Ok(true);
        }
        let asked = std::time::Instant::now();
        let open = is_open(db, player, session).await?;
        // A session ended while the read ran is remembered as ended for twice as long as an
        // open one is believed: a read that took longer than that may predate an end already
        // forgotten, and is not remembered.
        if open && asked.elapsed() < BELIEVED_OPEN && !self.ended.contains_key(session) {
            self.open.insert(session.to_owned(), player.into());
        }
        Ok(open)
    }

    /// `session` was ended (its transaction committed).
    pub fn ended(&self, session: &str) {
        self.ended.insert(session.to_owned(), ());
        self.open.invalidate(session);
    }
}

/// Whether `session` of `player` is still open, as the database says.
async fn is_open(db: &Db, player: &str, session: &str) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT revoked_at_ms FROM sessions WHERE id = $1 AND player_id = $2")
        .bind(session)
        .bind(player)
        .fetch_optional(&db.pool)
        .await?;
    Ok(match row {
        Some(row) => row.try_get::<Option<i64>, _>("revoked_at_ms")?.is_none(),
        None => false,
    })
}

/// Trades a refresh token for new tokens. A token that was already used revokes its session.
pub async fn rotate(
    db: &Db,
    auth: &Auth,
    refresh: &str,
    now_ms: i64,
) -> Result<(String, Tokens), ApiError> {
    let hash = hash_secret(refresh);
    let mut tx = db.begin_write().await?;
    let Some(row) = sqlx::query(
        "SELECT r.session_id, r.expires_at_ms, r.used_at_ms, s.player_id, s.revoked_at_ms \
         FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.token_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Err(ApiError::Unauthorized("refresh token is not valid".into()));
    };
    let session: String = row.try_get("session_id")?;
    let player: String = row.try_get("player_id")?;
    if row.try_get::<Option<i64>, _>("revoked_at_ms")?.is_some() {
        return Err(ApiError::Unauthorized(
            "this session has ended; log in again".into(),
        ));
    }
    if row.try_get::<Option<i64>, _>("used_at_ms")?.is_some() {
        return Err(reuse_detected(tx, auth, &session, now_ms).await);
    }
    if row.try_get::<i64, _>("expires_at_ms")? <= now_ms {
        return Err(ApiError::Unauthorized("refresh token has expired".into()));
    }
    let marked = sqlx::query(
        "UPDATE refresh_tokens SET used_at_ms = $2 WHERE token_hash = $1 AND used_at_ms IS NULL",
    )
    .bind(&hash)
    .bind(now_ms)
    .execute(&mut *tx)
    .await?;
    if marked.rows_affected() != 1 {
        // Used concurrently by someone else: the same reuse.
        return Err(reuse_detected(tx, auth, &session, now_ms).await);
    }
    let next = insert_refresh(&mut tx, auth, &session, now_ms).await?;
    tx.commit().await?;
    let issued = tokens(auth, &player, &session, next, now_ms);
    Ok((player, issued))
}

/// Revokes the session a reused refresh token belongs to; the error to answer with.
async fn reuse_detected(mut tx: Tx, auth: &Auth, session: &str, now_ms: i64) -> ApiError {
    let revoked = async {
        revoke(&mut tx, session, "refresh token reused", now_ms).await?;
        tx.commit().await
    };
    if let Err(e) = revoked.await {
        return ApiError::Database(e);
    }
    auth.sessions.ended(session);
    tracing::warn!(session.id = %session, "refresh token reused: session revoked");
    ApiError::Unauthorized(
        "refresh token was already used; the session is revoked, log in again".into(),
    )
}
