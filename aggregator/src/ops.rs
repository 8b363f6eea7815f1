//! Operations endpoints: `/api/health`, the probes `/api/ready` and `/api/live`, and
//! `/metrics`.

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
        .routes(routes!(ready))
        .routes(routes!(live))
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

#[derive(Serialize, utoipa::ToSchema)]
struct Readiness {
    /// `ready` or `not_ready`.
    status: &'static str,
    /// Why not, when not ready.
    reason: Option<String>,
}

/// Readiness: the database answers and every migration of this binary is applied. A load
/// balancer sends traffic only to ready replicas.
#[utoipa::path(
    get, path = "/api/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready for traffic", body = Readiness),
        (status = 503, description = "Database unreachable or migrations missing", body = Readiness),
    )
)]
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let reason = match state.db.migrations_missing().await {
        Ok(0) => None,
        Ok(n) => Some(format!("{n} migrations not applied")),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Some("database unreachable or not migrated".to_string())
        }
    };
    let status = if reason.is_none() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = if reason.is_none() {
        "ready"
    } else {
        "not_ready"
    };
    (
        status,
        Json(Readiness {
            status: word,
            reason,
        }),
    )
}

#[derive(Serialize, utoipa::ToSchema)]
struct Liveness {
    status: &'static str,
}

/// Liveness: the process serves HTTP. Never touches the database, so an outage of the
/// database does not get replicas restarted.
#[utoipa::path(
    get, path = "/api/live", tag = "operations",
    responses((status = 200, description = "Serving", body = Liveness))
)]
async fn live() -> Json<Liveness> {
    Json(Liveness { status: "ok" })
}

/// Prometheus metrics.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"))
)]
async fn metrics_text(State(state): State<AppState>) -> String {
    crate::http::metrics::observe_pools(&state.db);
    crate::http::metrics::observe_heap();
    metrics::gauge!(crate::http::metrics::QUORUM_SIZE).set(state.consensus.k as f64);
    state.metrics.render()
}
