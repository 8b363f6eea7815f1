//! `ApiJson`: axum's JSON extractor with our error shape for bad bodies, refusing U+0000 in
//! any string (no column can hold it on PostgreSQL).

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::ApiError;

#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let json = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .is_some_and(|m| {
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            });
        if !json {
            return Err(ApiError::Unprocessable(
                "expected a JSON body with content-type application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|_| {
            ApiError::PayloadTooLarge("request body too large or unreadable".into())
        })?;
        if super::input::json_has_nul(&bytes) {
            return Err(ApiError::Unprocessable(
                "text must not contain NUL (U+0000) characters".into(),
            ));
        }
        let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes)?;
        Ok(ApiJson(value))
    }
}

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::Unprocessable(
                "expected a JSON body with content-type application/json".into(),
            ),
            JsonRejection::BytesRejection(_) => {
                ApiError::PayloadTooLarge("request body too large or unreadable".into())
            }
            other => ApiError::Unprocessable(other.body_text()),
        }
    }
}
