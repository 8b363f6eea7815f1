//! `spend`: the one shape of every request that charges a player: claim the
//! `Idempotency-Key`, count the rate limit (only for requests that are not replays), do the
//! work in the same write transaction, store the answer under the key and commit.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::ApiError;
use super::error::ApiResult;
use super::idempotency::Request;
use crate::db::{Db, Tx};

/// Runs `work` once per idempotency key: a duplicate (even a concurrent one) gets the first
/// answer replayed. `limit` runs after the claim, so replays do not count against it. `work`
/// gets the write transaction and hands it back with its answer; when it fails, nothing it did
/// is kept and the key stays free.
pub async fn spend<T, L, LF, W, F>(
    db: &Db,
    request: &Request<'_>,
    now_ms: i64,
    status: StatusCode,
    limit: L,
    work: W,
) -> ApiResult<Response>
where
    T: Serialize,
    L: FnOnce() -> LF,
    LF: Future<Output = Result<(), ApiError>>,
    W: FnOnce(Tx) -> F,
    F: Future<Output = Result<(Tx, T), ApiError>>,
{
    let mut tx = db.begin_write().await?;
    if let Some(replay) = request.claim(&mut tx, now_ms).await? {
        tx.rollback().await?;
        return Ok(replay);
    }
    limit().await?;
    let (tx, answer) = work(tx).await?;
    request.finish(tx, status, &answer).await
}
