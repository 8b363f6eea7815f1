//! `Idempotency-Key` on spending endpoints: the key is claimed first in the spend's own
//! transaction, and the first successful response is stored under it when that transaction
//! commits. A concurrent duplicate waits on the claim (a row lock on PostgreSQL, the single
//! writer on SQLite) and then replays the stored response without charging again; the same key
//! with a different request is 422. Failed requests change nothing and store nothing, so they
//! may be retried with the same key.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sqlx::Row;
use tokio::sync::OwnedMutexGuard;

use crate::db::Tx;
use crate::http::ApiError;

pub const HEADER: &str = "idempotency-key";
/// Set on a response that was replayed from an earlier request.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// The request's `Idempotency-Key`, if it sent one (1–255 visible ASCII characters).
#[derive(Debug, Clone, Default)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(HEADER) else {
            return Ok(IdempotencyKey(None));
        };
        let key = value
            .to_str()
            .ok()
            .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                ApiError::Unprocessable(
                    "Idempotency-Key must be 1-255 visible ASCII characters".into(),
                )
            })?;
        Ok(IdempotencyKey(Some(key.to_owned())))
    }
}

/// A spending request as the key remembers it: its route and its body.
pub struct Request<'a> {
    pub player: &'a str,
    pub key: Option<&'a str>,
    fingerprint: String,
}

impl<'a> Request<'a> {
    pub fn new(
        player: &'a str,
        key: &'a IdempotencyKey,
        route: &str,
        body: &impl Serialize,
    ) -> Self {
        let body = serde_json::to_string(body).unwrap_or_default();
        Request {
            player,
            key: key.0.as_deref(),
            fingerprint: hex::encode(ring::digest::digest(
                &ring::digest::SHA256,
                format!("{route}\n{body}").as_bytes(),
            )),
        }
    }

    /// The stored response for this key, if any; 422 when the key was used for another request.
    pub async fn replay<'e, E>(&self, executor: E) -> Result<Option<Response>, ApiError>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let Some(key) = self.key else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT request_hash, status_code, response_body FROM idempotency_keys \
             WHERE player_id = $1 AND idem_key = $2",
        )
        .bind(self.player)
        .bind(key)
        .fetch_optional(executor)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        if row.try_get::<String, _>("request_hash")? != self.fingerprint {
            return Err(ApiError::Unprocessable(
                "this Idempotency-Key was already used with a different request".into(),
            ));
        }
        let Some(status) = u16::try_from(row.try_get::<i64, _>("status_code")?)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
        else {
            return Err(ApiError::Conflict(
                "a request with this Idempotency-Key is still running; try again".into(),
            ));
        };
        let mut response = json(status, row.try_get("response_body")?);
        response
            .headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
        Ok(Some(response))
    }

    /// Claims the key inside `tx`, before anything is charged. `Some` is the stored response of
    /// an earlier request with the key (after waiting for a concurrent one to finish): replay it.
    pub async fn claim(&self, tx: &mut Tx, now_ms: i64) -> Result<Option<Response>, ApiError> {
        let Some(key) = self.key else {
            return Ok(None);
        };
        // Status 0 marks the claim; it is never committed (`finish` writes the answer).
        let claimed = sqlx::query(
            "INSERT INTO idempotency_keys (player_id, idem_key, request_hash, status_code, \
                 response_body, created_at_ms) VALUES ($1, $2, $3, 0, '', $4) \
             ON CONFLICT (player_id, idem_key) DO NOTHING",
        )
        .bind(self.player)
        .bind(key)
        .bind(&self.fingerprint)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
        if claimed.rows_affected() == 1 {
            return Ok(None);
        }
        self.replay(&mut **tx).await?.map(Some).ok_or_else(|| {
            ApiError::Conflict("a request with this Idempotency-Key is still running".into())
        })
    }

    /// Stores the response under the claimed key (when there is one) and commits.
    pub async fn finish(
        &self,
        mut tx: Tx,
        status: StatusCode,
        body: &impl Serialize,
    ) -> Result<Response, ApiError> {
        let response = self.store(&mut tx, status, body).await?;
        tx.commit().await?;
        Ok(response)
    }

    /// Stores the response under the claimed key (when there is one), in `tx`.
    pub async fn store(
        &self,
        tx: &mut Tx,
        status: StatusCode,
        body: &impl Serialize,
    ) -> Result<Response, ApiError> {
        let body = serde_json::to_string(body).map_err(|e| ApiError::Internal(e.into()))?;
        if let Some(key) = self.key {
            sqlx::query(
                "UPDATE idempotency_keys SET status_code = $3, response_body = $4 \
                 WHERE player_id = $1 AND idem_key = $2",
            )
            .bind(self.player)
            .bind(key)
            .bind(i64::from(status.as_u16()))
            .bind(&body)
            .execute(&mut **tx)
            .await?;
        }
        Ok(json(status, body))
    }
}

/// Requests with an `Idempotency-Key` running in this process, so that a duplicate waits for
/// the first before doing any work of its own: a summon asks the LLM and counts the summon rate
/// limit before its transaction (and its claim) begins. Memory is bounded by the requests in
/// flight: an entry lives while a request holds it.
#[derive(Debug, Default)]
pub struct InFlight(std::sync::Mutex<HashMap<(String, String), Weak<KeyLock>>>);

type KeyLock = tokio::sync::Mutex<()>;

/// Entries kept before dead ones are swept.
const IN_FLIGHT_SWEEP: usize = 1024;

impl InFlight {
    /// Waits until no other request of `player` with this key runs here; `None` without a key.
    pub async fn enter(&self, player: &str, key: &IdempotencyKey) -> Option<OwnedMutexGuard<()>> {
        let key = (player.to_owned(), key.0.clone()?);
        let lock = {
            let mut map = match self.0.lock() {
                Ok(map) => map,
                Err(poisoned) => poisoned.into_inner(),
            };
            if map.len() >= IN_FLIGHT_SWEEP {
                map.retain(|_, running| running.strong_count() > 0);
            }
            match map.get(&key).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(KeyLock::new(()));
                    map.insert(key, Arc::downgrade(&lock));
                    lock
                }
            }
        };
        Some(lock.lock_owned().await)
    }
}

/// A JSON answer, as every spending request's answer is stored and replayed.
pub fn json(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}
