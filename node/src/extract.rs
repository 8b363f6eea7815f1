//! Our JSON body extractor: a bad body gets a 422 (or 413, or 408 when it trickles in too
//! slowly) in our error shape, never axum's
//! plain-text rejection. The content type is not checked, as FastAPI does not check it.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// A JSON request body decoded into `T`.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::BodyTooLarge(MAX_BODY_BYTES)
            } else if timed_out(&rejection) {
                ApiError::BodyTimedOut
            } else {
                ApiError::InvalidBody(rejection.body_text())
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::InvalidBody(e.to_string()))
    }
}

/// Whether reading the body failed because it did not arrive in time (the router's request
/// body timeout), somewhere down the rejection's chain of causes.
fn timed_out(rejection: &BytesRejection) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(error) = cause {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = error.source();
    }
    false
}
