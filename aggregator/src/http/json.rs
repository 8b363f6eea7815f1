//! `ApiJson`: axum's JSON extractor with our error shape for bad bodies.

use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use axum::response::{IntoResponse, Response};

use super::ApiError;

#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

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
