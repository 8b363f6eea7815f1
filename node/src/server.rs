//! The node's HTTP routes: `/health`, `/generate_battle`, `/stats`, `/metrics`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hero_engine::BattleEngine;
use hero_protocol::signing::{
    ASSIGNMENT_HEADER, NODE_ID_HEADER, SIGNATURE_HEADER, VoteSigner, vote_message,
};
use hero_protocol::{BattleRequest, ErrorBody, NodeHealth, NodeStats};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::{ApiKey, Authorized};
use crate::capacity::Capacity;
use crate::error::ApiError;
use crate::extract::{JsonBody, MAX_BODY_BYTES};
use crate::stats::{Outcome, Stats};
use crate::telemetry;

/// Everything a handler needs; shared behind an `Arc` (axum hands each request its own clone of
/// the state, and one reference count is cheaper than one per field).
pub struct AppState {
    pub name: Arc<str>,
    pub engine: Arc<dyn BattleEngine>,
    pub api_key: ApiKey,
    pub capacity: Capacity,
    pub stats: Arc<Stats>,
    pub prometheus: PrometheusHandle,
    pub meters: telemetry::Meters,
    /// Signs results for aggregators that send an assignment (vote signing extension).
    pub signer: Arc<VoteSigner>,
}

impl FromRef<Arc<AppState>> for ApiKey {
    fn from_ref(state: &Arc<AppState>) -> Self {
        state.api_key.clone()
    }
}

pub fn router(state: AppState, request_timeout: std::time::Duration) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/generate_battle", post(generate_battle))
        .route("/stats", get(stats))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // A request body that stops arriving for this long is cut off (408).
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            std::time::Duration::from_secs(10),
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        // axum's own rejections and the timeouts' 408 in the API's error shape.
        .layer(axum::middleware::from_fn(hero_serve::plain_errors_as_json))
        // Answers given before the body was read (401, 413, 408) say the connection closes.
        .layer(axum::middleware::from_fn(hero_serve::close_if_body_unread))
        .with_state(Arc::new(state))
}

async fn health(State(state): State<Arc<AppState>>) -> Json<NodeHealth> {
    Json(NodeHealth {
        status: "ok".to_string(),
        name: state.name.to_string(),
        current_requests: state.capacity.in_flight(),
        max_concurrent_requests: state.capacity.max(),
        backend: state.engine.kind().to_string(),
        model: state.engine.model().map(str::to_string),
        version: Some(env!("CARGO_PKG_VERSION").to_string()),
        output_constraint: state.engine.output_constraint().map(str::to_string),
        recent_latency_ms: state.stats.recent_latency_ms(),
        public_key: Some(state.signer.public_key_hex()),
    })
}

async fn generate_battle(
    State(state): State<Arc<AppState>>,
    _auth: Authorized,
    headers: HeaderMap,
    body: Result<JsonBody<BattleRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let JsonBody(request) = body.inspect_err(|_| state.count(Outcome::ClientError, None))?;
    let Some(_slot) = state.capacity.try_acquire() else {
        state.count(Outcome::Capacity, None);
        return Err(ApiError::AtCapacity);
    };
    let started = Instant::now();
    let outcome = state.engine.generate(&request).await;
    let elapsed = started.elapsed();
    state.meters.timed(elapsed);
    let duration_ms = elapsed.as_secs_f64() * 1000.0;
    match outcome {
        Ok(result) => {
            state.count(Outcome::Ok, Some(elapsed));
            tracing::debug!(battle.id = %request.battle_id, duration_ms, "battle generated");
            Ok(signed_result(
                &state.signer,
                &headers,
                &request.battle_id,
                &result,
            ))
        }
        Err(error) => {
            let outcome = if error.is_client_error() {
                Outcome::ClientError
            } else {
                Outcome::EngineError
            };
            state.count(outcome, Some(elapsed));
            tracing::warn!(battle.id = %request.battle_id, duration_ms, %error, "battle failed");
            Err(ApiError::Engine(error))
        }
    }
}

/// The result as JSON; signed when the aggregator sent a node id and an assignment nonce.
fn signed_result(
    signer: &VoteSigner,
    headers: &HeaderMap,
    battle_id: &str,
    result: &hero_protocol::BattleResult,
) -> Response {
    let body = match serde_json::to_vec(result) {
        Ok(body) => body,
        Err(_) => return Json(result).into_response(),
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signature = match (header(NODE_ID_HEADER), header(ASSIGNMENT_HEADER)) {
        (Some(node_id), Some(nonce)) => {
            HeaderValue::from_str(&signer.sign(&vote_message(battle_id, node_id, nonce, &body)))
                .ok()
        }
        _ => None,
    };
    let mut response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(signature) = signature {
        response.headers_mut().insert(SIGNATURE_HEADER, signature);
    }
    response
}

async fn stats(State(state): State<Arc<AppState>>) -> Json<NodeStats> {
    let s = state.stats.snapshot();
    Json(NodeStats {
        name: state.name.to_string(),
        backend: state.engine.kind().to_string(),
        model: state.engine.model().map(str::to_string),
        requests: s.requests,
        successes: s.successes,
        failures: s.failures,
        rejected_at_capacity: s.rejected_at_capacity,
        average_latency_ms: s.average_latency_ms,
        current_requests: state.capacity.in_flight(),
        max_concurrent_requests: state.capacity.max(),
        uptime_secs: s.uptime_secs,
        repaired_results: state.engine.repaired_results(),
    })
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    telemetry::results_repaired(state.engine.repaired_results());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.prometheus.render(),
    )
}

async fn method_not_allowed() -> impl IntoResponse {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(ErrorBody::new(
            "method_not_allowed",
            "this route does not take that method",
        )),
    )
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        Json(ErrorBody::new("not_found", "no such route")),
    )
}

impl AppState {
    fn count(&self, outcome: Outcome, elapsed: Option<std::time::Duration>) {
        self.stats.record(outcome, elapsed);
        self.meters.counted(outcome);
    }
}
