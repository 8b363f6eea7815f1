//! The node's HTTP error: one variant per refusal, answered as `hero_protocol::ErrorBody`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hero_engine::EngineError;
use hero_protocol::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or wrong bearer key")]
    Unauthorized,
    #[error("node at capacity")]
    AtCapacity,
    #[error("request body larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("invalid request body: {0}")]
    InvalidBody(String),
    #[error("request body not received in time")]
    BodyTimedOut,
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::AtCapacity => (StatusCode::SERVICE_UNAVAILABLE, "at_capacity"),
            ApiError::BodyTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            ApiError::InvalidBody(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            ApiError::BodyTimedOut => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::Engine(EngineError::Timeout(_)) => {
                (StatusCode::GATEWAY_TIMEOUT, "engine_timeout")
            }
            ApiError::Engine(e) if e.is_client_error() => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request")
            }
            ApiError::Engine(_) => (StatusCode::BAD_GATEWAY, "engine_error"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let body = Json(ErrorBody::new(code, self.to_string()));
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        match self {
            ApiError::AtCapacity => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_gateway_statuses() {
        let status = |e: EngineError| ApiError::from(e).status_and_code().0;
        assert_eq!(
            status(EngineError::InvalidRequest("x".into())),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(status(EngineError::Timeout(5)), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(
            status(EngineError::Upstream("x".into())),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            status(EngineError::InvalidOutput("x".into())),
            StatusCode::BAD_GATEWAY
        );
    }

    #[test]
    fn capacity_says_when_to_retry() {
        let response = ApiError::AtCapacity.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
