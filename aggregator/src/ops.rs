//! Operations endpoints: `/api/health` and `/metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(metrics_text))
}

#[derive(Serialize, utoipa::ToSchema)]
struct NodePool {
    registered: usize,
    online: usize,
    quorum_size: usize,
    /// Whether enough nodes are online for a battle to settle by quorum.
    quorum_possible: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Health {
    status: &'static str,
    database: &'static str,
    database_error: Option<String>,
    nodes: NodePool,
    version: &'static str,
}

/// Database and node-pool health.
#[utoipa::path(
    get, path = "/api/health", tag = "operations",
    responses(
        (status = 200, description = "Healthy", body = Health),
        (status = 503, description = "The database is down", body = Health),
    )
)]
async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let db = state.db.ping().await;
    let online = state
        .registry
        .online_count(state.clock.now_ms(), state.nodes.offline_after_ms());
    let k = state.consensus.k;
    let healthy = db.is_ok();
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Health {
            status: if !healthy {
                "down"
            } else if online >= crate::consensus::tally::quorum(k) {
                "ok"
            } else {
                "degraded"
            },
            database: if healthy { "ok" } else { "error" },
            database_error: db.err().map(|e| {
                tracing::warn!(error = %e, "health check: database unreachable");
                "database unreachable".to_string()
            }),
            nodes: NodePool {
                registered: state.registry.len(),
                online,
                quorum_size: k,
                quorum_possible: online >= crate::consensus::tally::quorum(k),
            },
            version: env!("CARGO_PKG_VERSION"),
        }),
    )
}

/// Prometheus metrics.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"))
)]
async fn metrics_text(State(state): State<AppState>) -> String {
    state.metrics.render()
}
