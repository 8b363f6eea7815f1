//! `CurrentPlayer`: the player behind a request's access token, with the session still open
//! and the player's default rate limit counted.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::Bucket;
use super::kinds::TokenKind;
use crate::http::ApiError;
use crate::http::bearer::bearer;
use crate::state::AppState;

/// The authenticated player of a request.
#[derive(Debug, Clone)]
pub struct CurrentPlayer {
    pub id: String,
    pub session_id: String,
}

impl CurrentPlayer {
    /// Counts one more request of this player in `bucket`; 429 with `Retry-After` when over.
    pub async fn limit(&self, state: &AppState, bucket: Bucket) -> Result<(), ApiError> {
        state
            .auth
            .limiter
            .check(&self.id, bucket, state.clock.now_ms())
            .await
            .map_err(|e| ApiError::TooManyRequests {
                message: format!(
                    "rate limit exceeded: at most {} {} per hour",
                    e.limit,
                    bucket.as_str()
                ),
                retry_after_secs: e.retry_after_secs,
            })
    }
}

impl FromRequestParts<AppState> for CurrentPlayer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(&parts.headers).ok_or_else(|| {
            ApiError::Unauthorized("needs an access token (Authorization: Bearer ...)".into())
        })?;
        let player = CurrentPlayer::from_token(state, token).await?;
        player.limit(state, Bucket::Requests).await?;
        Ok(player)
    }
}

impl CurrentPlayer {
    /// The player of an access token (signature, expiry, open session), without the
    /// per-player request limit.
    pub async fn from_token(state: &AppState, token: &str) -> Result<Self, ApiError> {
        let kind = super::kinds::of(token);
        if kind != TokenKind::Player {
            return Err(ApiError::Unauthorized(format!(
                "this is {}; player endpoints need a player access token",
                kind.described()
            )));
        }
        let claims = state
            .auth
            .verify(&state.db, token, state.clock.now_ms())
            .await
            .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
        if !state
            .auth
            .sessions
            .is_open(&state.db, &claims.sub, &claims.sid)
            .await?
        {
            return Err(ApiError::Unauthorized(
                "this session has ended; log in again".into(),
            ));
        }
        Ok(CurrentPlayer {
            id: claims.sub,
            session_id: claims.sid,
        })
    }
}
