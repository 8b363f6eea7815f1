//! The one place routes are merged and layers added, and the OpenAPI document built from the
//! same routes (`GET /api/openapi.json`).

use std::sync::OnceLock;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware;
use axum::{Json, Router};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::ApiError;
use crate::state::AppState;
use crate::supervisor::{Stage, Supervisor};

/// Largest request body accepted (413 above).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Every route of the API with its OpenAPI description.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::http::openapi::ApiDoc::openapi())
        .merge(crate::nodes::router())
        .merge(crate::battles::router())
        .merge(crate::live::router())
        .merge(crate::ops::router())
        .merge(crate::auth::router())
        .merge(crate::game::router())
        .merge(crate::ladder::router())
        .merge(crate::scheduler::routes::router())
        .merge(crate::web::router())
        .routes(routes!(openapi_json))
}

/// The OpenAPI document of [`api`], built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOCUMENT.get_or_init(|| api().split_for_parts().1)
}

/// This document.
#[utoipa::path(
    get, path = "/api/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 JSON", body = Object))
)]
async fn openapi_json() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(document())
}

/// Cross-origin calls from the configured frontends: their origins only (never `*`), the
/// methods and headers the API uses, no cookies (tokens travel in `Authorization`), preflights
/// cached for 10 minutes.
fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderName, HeaderValue, Method, header};
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_NONE_MATCH,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([
            header::RETRY_AFTER,
            header::ETAG,
            HeaderName::from_static("idempotent-replayed"),
        ])
        .max_age(std::time::Duration::from_secs(600))
}

pub fn build(state: AppState) -> Router {
    let request_timeout = std::time::Duration::from_millis(state.net.request_timeout_ms.max(100));
    let cors = (!state.net.cors_origins.is_empty()).then(|| cors(&state.net.cors_origins));
    let (routes, _) = api().split_for_parts();
    routes
        // The web page and its files: exact paths only, so unknown paths still get the JSON 404.
        .merge(crate::web::pages())
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed("this endpoint does not take that method".into())
        })
        .layer(middleware::from_fn(
            crate::http::input::refuse_control_characters,
        ))
        .layer(middleware::from_fn(crate::http::metrics::track))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // A client slower than this (sending its body, or waiting for an answer) gets 408.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        // axum's own rejections and the timeout's 408 in the API's error shape.
        .layer(middleware::from_fn(hero_serve::plain_errors_as_json))
        // Answers given before the body was read (401, 413, 408, ...) leave the connection
        // unusable for another request: they say it closes.
        .layer(middleware::from_fn(hero_serve::close_if_body_unread))
        .layer(tower::util::option_layer(cors))
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

/// Serves the API on `listener` until the supervisor stops the HTTP stage.
pub fn serve(listener: tokio::net::TcpListener, state: AppState, supervisor: &mut Supervisor) {
    let limits = state.net.serve_limits();
    // Requests are bounded by --request-timeout-ms, but a client that never reads its answer
    // could hold the drain open: stop waiting after a while.
    let drain = state.net.request_timeout_ms.saturating_add(5_000);
    supervisor.limit(Stage::Http, std::time::Duration::from_millis(drain));
    let stop = supervisor.stop_token(Stage::Http);
    let router = build(state);
    supervisor.spawn(Stage::Http, async move {
        let stopped = async move { stop.cancelled().await };
        if let Err(e) = hero_serve::serve(listener, router, limits, stopped).await {
            tracing::error!(error = format!("{e:#}"), "HTTP server failed");
        }
    });
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::document;

    fn refs(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("$ref", Value::String(r)) => found.push(r.clone()),
                        _ => refs(v, found),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
            _ => {}
        }
    }

    /// The document built from the routes is consistent: every `$ref` resolves, every path
    /// parameter is declared, every operation is tagged and answers something, errors have
    /// the error shape, and every route of the API is in it.
    #[test]
    fn the_document_describes_every_route_consistently() {
        let doc = serde_json::to_value(document()).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for r in &found {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or(r);
            assert!(schemas.contains_key(name), "{r} is not in the document");
        }
        let paths = doc["paths"].as_object().unwrap();
        let mut operations = 0;
        for (path, item) in paths {
            let declared_in_path: Vec<&str> = path
                .split('{')
                .skip(1)
                .filter_map(|p| p.split_once('}').map(|(name, _)| name))
                .collect();
            for (method, op) in item.as_object().unwrap() {
                operations += 1;
                let at = format!("{} {path}", method.to_uppercase());
                let params = op["parameters"].as_array().cloned().unwrap_or_default();
                for name in &declared_in_path {
                    assert!(
                        params
                            .iter()
                            .any(|p| p["in"] == "path" && p["name"] == *name),
                        "{at} does not declare its path parameter {name}"
                    );
                }
                assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{at}");
                let responses = op["responses"].as_object().unwrap();
                // The WebSocket answers 101 Switching Protocols, never 2xx.
                assert!(
                    responses.keys().any(|s| s.starts_with('2') || s == "101"),
                    "{at}"
                );
                for (status, response) in responses {
                    if status.starts_with('4') {
                        let schema = &response["content"]["application/json"]["schema"]["$ref"];
                        assert_eq!(
                            schema, "#/components/schemas/ErrorResponse",
                            "{at} {status} is not the error shape"
                        );
                    }
                }
            }
        }
        // The node protocol, admin, operations, the game API, live events, and the web page's
        // portraits and recent battles (the page's own files are not API).
        assert_eq!((paths.len(), operations), (54, 64), "{:?}", paths.keys());
        assert_eq!(
            doc["paths"]["/api/nodes"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
                ["type"],
            "array"
        );
    }
}
