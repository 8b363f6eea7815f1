//! Admin over operators and nodes: create and revoke operators, inspect a node with its
//! recent votes, change its weight, maintenance, probation, quarantine or key. Every action
//! is a security event: logged (target `security`) and counted.

use std::sync::atomic::Ordering;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::operators::{self, Operator};
use super::store::{self, AdminPatch};
use crate::auth::admin::Admin;
use crate::http::error::ApiResult;
use crate::http::metrics::ADMIN_ACTIONS;
use crate::http::{ApiError, ApiJson};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(revoke))
        .routes(routes!(show, patch))
}

/// Logs and counts one admin action.
pub fn security_event(action: &'static str, subject: &str) {
    metrics::counter!(ADMIN_ACTIONS, "action" => action).increment(1);
    tracing::warn!(target: "security", action, subject, "admin action");
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateOperator {
    name: String,
    #[serde(default = "default_max_nodes")]
    max_nodes: i64,
    #[serde(default = "default_max_weight")]
    max_weight: i64,
}

fn default_max_nodes() -> i64 {
    10
}

fn default_max_weight() -> i64 {
    1
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct OperatorCreated {
    #[serde(flatten)]
    operator: Operator,
    /// Shown this once; stored only as a hash.
    enrollment_token: String,
}

/// Create a node operator; its enrollment token is shown once.
#[utoipa::path(
    post, path = "/api/v1/admin/operators", tag = "admin",
    request_body = CreateOperator,
    responses(
        (status = 201, description = "The operator with its enrollment token", body = OperatorCreated),
        (status = 401, description = "No or wrong admin token", body = crate::http::openapi::ErrorResponse),
        (status = 403, description = "Admin endpoints are off (no --admin-token)", body = crate::http::openapi::ErrorResponse),
        (status = 409, description = "An operator with this name exists", body = crate::http::openapi::ErrorResponse),
        (status = 422, description = "Bad name, max_nodes or max_weight", body = crate::http::openapi::ErrorResponse),
    ),
    security(("token" = []))
)]
async fn create(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateOperator>,
) -> ApiResult<(StatusCode, Json<OperatorCreated>)> {
    operators::check(&body.name, body.max_nodes, body.max_weight)
        .map_err(ApiError::Unprocessable)?;
    let created = operators::create(
        &state.db,
        &body.name,
        body.max_nodes,
        body.max_weight,
        state.clock.now_ms(),
    )
    .await;
    let (operator, enrollment_token) = match created {
        Ok(created) => created,
        Err(e) if crate::db::is_unique_violation(&e) => {
            return Err(ApiError::Conflict(format!(
                "an operator named {} exists already",
                body.name
            )));
        }
        Err(e) => return Err(e.into()),
    };
    security_event("operator_created", &operator.name);
    close_open_network(&state).await?;
    Ok((
        StatusCode::CREATED,
        Json(OperatorCreated {
            operator,
            enrollment_token,
        }),
    ))
}

/// List node operators (never their tokens).
#[utoipa::path(
    get, path = "/api/v1/admin/operators", tag = "admin",
    responses(
        (status = 200, description = "Operators", body = Vec<Operator>),
        (status = 401, description = "No or wrong admin token", body = crate::http::openapi::ErrorResponse),
        (status = 403, description = "Admin endpoints are off (no --admin-token)", body = crate::http::openapi::ErrorResponse),
    ),
    security(("token" = []))
)]
async fn list(_: Admin, State(state): State<AppState>) -> ApiResult<Json<Vec<Operator>>> {
    Ok(Json(operators::list(&state.db).await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Revoked {
    operator: Operator,
    /// Nodes of the operator taken out of the network.
    nodes_removed: usize,
}

/// Revoke an operator's token; its nodes leave the network.
#[utoipa::path(
    delete, path = "/api/v1/admin/operators/{name}", tag = "admin",
    params(("name" = String, Path, description = "Operator name")),
    responses(
        (status = 200, description = "The operator and how many of its nodes left", body = Revoked),
        (status = 401, description = "No or wrong admin token", body = crate::http::openapi::ErrorResponse),
        (status = 403, description = "Admin endpoints are off (no --admin-token)", body = crate::http::openapi::ErrorResponse),
        (status = 404, description = "No such operator", body = crate::http::openapi::ErrorResponse),
    ),
    security(("token" = []))
)]
async fn revoke(
    _: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Revoked>> {
    if operators::check(&name, 1, 0).is_err() {
        return Err(ApiError::NotFound(format!("no operator named {name:?}")));
    }
    let now = state.clock.now_ms();
    let operator = operators::revoke(&state.db, &name, now)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no operator named {name:?}")))?;
    let removed = store::leave_all_of(&state.db, &operator.name, now).await?;
    for id in &removed {
        if let Some(node) = state.registry.get(id) {
            node.left.store(true, Ordering::Relaxed);
        }
    }
    state.registry.changed();
    security_event("operator_revoked", &operator.name);
    Ok(Json(Revoked {
        operator,
        nodes_removed: removed.len(),
    }))
}

/// Once operators exist the network is closed: nodes of the open network leave (they may
/// register again with an operator's token, keeping their identity by their key).
async fn close_open_network(state: &AppState) -> ApiResult<()> {
    let left = store::leave_open_nodes(&state.db, state.clock.now_ms()).await?;
    for id in &left {
        if let Some(node) = state.registry.get(id) {
            node.left.store(true, Ordering::Relaxed);
        }
    }
    if !left.is_empty() {
        state.registry.changed();
        tracing::warn!(target: "security", nodes = left.len(), "the network is closed: open-network nodes left and must register with an operator token");
    }
    Ok(())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct NodeDetails {
    #[serde(flatten)]
    node: hero_protocol::NodeInfo,
    public_key: Option<String>,
    quarantined_until_ms: Option<i64>,
    busy_until_ms: Option<i64>,
    recent_votes: Vec<store::RecentVote>,
}

async fn details(state: &AppState, id: &str) -> ApiResult<NodeDetails> {
    let node = match state.registry.get(id) {
        Some(node) => node,
        None if uuid::Uuid::parse_str(id).is_ok() => match store::find(&state.db, id).await? {
            Some(entry) => std::sync::Arc::new(entry),
            None => return Err(ApiError::NotFound("unknown node".into())),
        },
        None => return Err(ApiError::NotFound("unknown node".into())),
    };
    let now = state.clock.now_ms();
    let recent_votes = store::recent_votes(&state.db, id, 50).await?;
    let quarantined = node.snapshot_counters().quarantined_until_ms;
    let busy = node.busy_until_ms.load(Ordering::Relaxed);
    Ok(NodeDetails {
        node: node.info(now, state.nodes.offline_after_ms()),
        public_key: node.public_key.clone(),
        quarantined_until_ms: (quarantined > now).then_some(quarantined),
        busy_until_ms: (busy > now).then_some(busy),
        recent_votes,
    })
}

/// A node's details and its 50 most recent votes.
#[utoipa::path(
    get, path = "/api/v1/admin/nodes/{id}", tag = "admin",
    params(("id" = String, Path, description = "Node id")),
    responses(
        (status = 200, description = "The node", body = NodeDetails),
        (status = 401, description = "No or wrong admin token", body = crate::http::openapi::ErrorResponse),
        (status = 403, description = "Admin endpoints are off (no --admin-token)", body = crate::http::openapi::ErrorResponse),
        (status = 404, description = "No such node", body = crate::http::openapi::ErrorResponse),
    ),
    security(("token" = []))
)]
async fn show(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<NodeDetails>> {
    Ok(Json(details(&state, &id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PatchNode {
    /// Selection weight (0-1000), overriding what the node asks for.
    weight: Option<u32>,
    /// Out of selection (true) or back in (false).
    maintenance: Option<bool>,
    /// Close the circuit breaker now.
    #[serde(default)]
    lift_quarantine: bool,
    /// `false` ends probation at once (a node cannot be put back on it: use maintenance).
    probation: Option<bool>,
    /// Forget the node's key, so its URL may be registered with a new one.
    #[serde(default)]
    reset_key: bool,
}

/// Change a node: weight, maintenance, quarantine, probation, key.
#[utoipa::path(
    patch, path = "/api/v1/admin/nodes/{id}", tag = "admin",
    params(("id" = String, Path, description = "Node id")),
    request_body = PatchNode,
    responses(
        (status = 200, description = "The node as changed", body = NodeDetails),
        (status = 401, description = "No or wrong admin token", body = crate::http::openapi::ErrorResponse),
        (status = 403, description = "Admin endpoints are off (no --admin-token)", body = crate::http::openapi::ErrorResponse),
        (status = 404, description = "No such node", body = crate::http::openapi::ErrorResponse),
        (status = 422, description = "Bad weight, or probation set back on", body = crate::http::openapi::ErrorResponse),
    ),
    security(("token" = []))
)]
async fn patch(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PatchNode>,
) -> ApiResult<Json<NodeDetails>> {
    if body.weight.is_some_and(|w| w > 1000) {
        return Err(ApiError::Unprocessable(
            "weight must be between 0 and 1000".into(),
        ));
    }
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(ApiError::NotFound("unknown node".into()));
    }
    if body.probation == Some(true) {
        return Err(ApiError::Unprocessable(
            "probation can only be lifted (false); to take a node out of selection set \
             maintenance"
                .into(),
        ));
    }
    let change = AdminPatch {
        weight: body.weight,
        maintenance: body.maintenance,
        probation: body.probation,
        reset_key: body.reset_key,
    };
    let entry = store::patch(&state.db, &id, &change, state.clock.now_ms())
        .await?
        .ok_or_else(|| ApiError::NotFound("unknown node".into()))?;
    let left = entry.left.load(Ordering::Relaxed);
    let node = state.registry.upsert(entry);
    node.left.store(left, Ordering::Relaxed);
    if body.lift_quarantine {
        if let Ok(mut c) = node.counters.lock() {
            c.quarantined_until_ms = 0;
            c.consecutive_failures = 0;
        }
        node.busy_until_ms.store(0, Ordering::Relaxed);
        security_event("node_quarantine_lifted", &id);
    }
    for (changed, action) in [
        (body.weight.is_some(), "node_weight_set"),
        (body.maintenance.is_some(), "node_maintenance_set"),
        (body.probation.is_some(), "node_probation_set"),
        (body.reset_key, "node_key_reset"),
    ] {
        if changed {
            security_event(action, &id);
        }
    }
    Ok(Json(details(&state, &id).await?))
}
