//! Errors in one shape, whoever answered them.
//!
//! Handlers answer errors as `{"error": {"code", "message"}}`, but some answers never reach a
//! handler: axum's own rejections (a path segment that is not UTF-8, a refused WebSocket
//! handshake, a body over the limit read as raw bytes) are plain text, and a timeout layer's
//! 408 has no body at all. [`plain_errors_as_json`] turns those into the same shape, keeping
//! their status and text, so a client needs one error parser.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use hero_protocol::ErrorBody;

/// Longest plain-text error kept as the message.
const MAX_MESSAGE_BYTES: usize = 4096;

/// A middleware (`axum::middleware::from_fn`): 4xx and 5xx answers that are not JSON become
/// the JSON error shape, with their status, headers and text (or the status's reason when
/// they had none).
pub async fn plain_errors_as_json(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            let v = v.trim().to_ascii_lowercase();
            v == "application/json" || v.ends_with("+json")
        });
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_MESSAGE_BYTES)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
    } else {
        text
    };
    let Ok(json) = serde_json::to_vec(&ErrorBody::new(code(status), message)) else {
        return Response::from_parts(parts, Body::empty());
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(json))
}

/// The error code the API uses for `status`.
fn code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_request",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::routing::get;
    use tower::ServiceExt as _;

    use super::*;

    async fn answer(router: Router, path: &str) -> (StatusCode, String, serde_json::Value) {
        let router = router.layer(axum::middleware::from_fn(plain_errors_as_json));
        let request = Request::builder().uri(path).body(Body::empty()).unwrap();
        let response = router.oneshot(request).await.unwrap();
        let status = response.status();
        let kind = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            kind,
            serde_json::from_slice(&bytes).unwrap_or_default(),
        )
    }

    #[tokio::test]
    async fn plain_and_empty_errors_get_the_json_shape() {
        let router = Router::new()
            .route(
                "/text",
                get(|| async { (StatusCode::BAD_REQUEST, "Invalid URL") }),
            )
            .route("/empty", get(|| async { StatusCode::REQUEST_TIMEOUT }))
            .route(
                "/json",
                get(|| async {
                    (
                        StatusCode::CONFLICT,
                        axum::Json(ErrorBody::new("conflict", "taken")),
                    )
                }),
            )
            .route("/ok", get(|| async { "fine" }))
            // axum's own rejection: a path segment that is not UTF-8.
            .route(
                "/id/{id}",
                get(|axum::extract::Path(id): axum::extract::Path<String>| async move { id }),
            );
        let (status, kind, body) = answer(router.clone(), "/text").await;
        assert_eq!(
            (status, kind.as_str()),
            (StatusCode::BAD_REQUEST, "application/json")
        );
        assert_eq!(body["error"]["code"], "bad_request");
        assert_eq!(body["error"]["message"], "Invalid URL");
        let (status, _, body) = answer(router.clone(), "/empty").await;
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(body["error"]["code"], "request_timeout");
        assert_eq!(body["error"]["message"], "request timeout");
        let (_, _, body) = answer(router.clone(), "/json").await;
        assert_eq!(
            body["error"]["message"], "taken",
            "JSON answers pass untouched"
        );
        let (status, kind, _) = answer(router.clone(), "/ok").await;
        assert_eq!(
            (status, kind.as_str()),
            (StatusCode::OK, "text/plain; charset=utf-8")
        );
        let (status, _, body) = answer(router, "/id/%ff%fe").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body["error"]["message"].as_str().unwrap().contains("UTF-8"),
            "{body}"
        );
    }
}
