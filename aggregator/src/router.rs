//! The one place routes are merged and layers added.

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware;
use tower_http::trace::TraceLayer;

use crate::http::ApiError;
use crate::state::AppState;

/// Largest request body accepted (413 above).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn build(state: AppState) -> Router {
    let request_timeout = std::time::Duration::from_millis(state.net.request_timeout_ms.max(100));
    Router::new()
        .merge(crate::nodes::router())
        .merge(crate::battles::router())
        .merge(crate::ops::router())
        .merge(crate::auth::router())
        .merge(crate::game::router())
        .merge(crate::http::openapi::router())
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed("this endpoint does not take that method".into())
        })
        .layer(middleware::from_fn(crate::http::metrics::track))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // The unread rest of a too-large body makes the connection unusable: say it closes.
        .layer(middleware::map_response(hero_serve::close_after_413))
        // A client slower than this (sending its body, or waiting for an answer) gets 408.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let route = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map(MatchedPath::as_str)
                    .unwrap_or("unmatched");
                tracing::info_span!("http", method = %request.method(), route)
            }),
        )
        .with_state(state)
}
