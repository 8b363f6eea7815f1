//! `/api/nodes/...`: the node side of protocol v1.

use std::sync::atomic::Ordering;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use hero_protocol::{Heartbeat, HeartbeatReply, NodeInfo, NodeRegistration, RegistrationReply};

use super::{store, url_policy};
use crate::http::bearer::{bearer, hash_secret, new_secret, secrets_match};
use crate::http::error::ApiResult;
use crate::http::{ApiError, ApiJson};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/nodes", get(list))
        .route("/api/nodes/register", post(register))
        .route("/api/nodes/heartbeat", post(heartbeat))
        .route("/api/nodes/{id}", delete(leave))
}

fn check_registration(reg: &NodeRegistration) -> Result<(), ApiError> {
    let bad = |m: &str| Err(ApiError::Unprocessable(m.to_string()));
    let name = reg.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return bad("name must be 1-100 printable characters");
    }
    if reg.weight > 1000 {
        return bad("weight must be between 0 and 1000");
    }
    if reg.max_concurrent_requests == 0 || reg.max_concurrent_requests > 10_000 {
        return bad("max_concurrent_requests must be between 1 and 10000");
    }
    if reg
        .public_key
        .as_ref()
        .is_some_and(|k| !hero_protocol::signing::is_public_key(k))
    {
        return bad("public_key must be an Ed25519 public key, 64 hex characters");
    }
    if reg.api_key.as_ref().is_some_and(|k| k.len() > 255) {
        return bad("api_key must be at most 255 characters");
    }
    for (field, value) in [
        ("operator", &reg.operator),
        ("backend", &reg.backend),
        ("version", &reg.version),
    ] {
        if value.as_ref().is_some_and(|v| v.chars().count() > 100) {
            return Err(ApiError::Unprocessable(format!(
                "{field} must be at most 100 characters"
            )));
        }
    }
    Ok(())
}

async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(reg): ApiJson<NodeRegistration>,
) -> ApiResult<Json<RegistrationReply>> {
    if let Some(expected) = &state.settings.enrollment_token {
        match bearer(&headers) {
            Some(given) if secrets_match(given, expected) => {}
            Some(_) => {
                return Err(ApiError::Unauthorized(
                    "enrollment token is not valid".into(),
                ));
            }
            None => {
                return Err(ApiError::Unauthorized(
                    "this aggregator needs an enrollment token (Authorization: Bearer ...)".into(),
                ));
            }
        }
    }
    check_registration(&reg)?;
    let checked = url_policy::check_node_url(&reg.url, state.settings.allow_private_node_urls)
        .await
        .map_err(ApiError::Unprocessable)?;
    let url = checked.url;
    let mut reg = reg;
    // A node that names no operator counts as run by whoever runs its host, so one machine
    // cannot take several seats of a battle by registering under several names.
    if reg
        .operator
        .as_deref()
        .is_none_or(|op| op.trim().is_empty())
    {
        reg.operator = Some(format!("host {}", checked.address));
    }
    let token = new_secret();
    let now = state.clock.now_ms();
    let entry = store::upsert(&state.db, &reg, &url, &hash_secret(&token), now).await?;
    let entry = state.registry.upsert(entry);
    tracing::info!(node.id = %entry.id, node.name = %entry.name, node.url = %entry.url, "node registered");
    Ok(Json(RegistrationReply {
        node_id: entry.id.clone(),
        node_token: token,
        heartbeat_interval_secs: state.settings.heartbeat_interval_secs,
    }))
}

/// Finds a node in memory, or in the database when another replica registered it.
async fn find_node(
    state: &AppState,
    id: &str,
) -> ApiResult<Option<std::sync::Arc<super::NodeEntry>>> {
    if let Some(node) = state.registry.get(id) {
        return Ok(Some(node));
    }
    Ok(store::find(&state.db, id)
        .await?
        .map(|entry| state.registry.upsert(entry)))
}

async fn heartbeat(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(hb): ApiJson<Heartbeat>,
) -> ApiResult<Json<HeartbeatReply>> {
    let token = bearer(&headers)
        .ok_or_else(|| ApiError::Unauthorized("heartbeat needs the node token".into()))?;
    let node = find_node(&state, &hb.node_id)
        .await?
        .filter(|n| !n.left.load(Ordering::Relaxed))
        .ok_or_else(|| ApiError::NotFound("unknown node: register again".into()))?;
    let presented = hash_secret(token);
    let node = if secrets_match(&presented, &node.token_hash) {
        node
    } else {
        // The node may have registered again through another replica: check the stored token.
        match store::find(&state.db, &hb.node_id).await? {
            Some(stored)
                if secrets_match(&presented, &stored.token_hash)
                    && !stored.left.load(Ordering::Relaxed) =>
            {
                state.registry.upsert(stored)
            }
            _ => return Err(ApiError::Unauthorized("node token is not valid".into())),
        }
    };
    node.last_heartbeat_ms
        .store(state.clock.now_ms(), Ordering::Relaxed);
    node.reported_requests
        .store(hb.current_requests, Ordering::Relaxed);
    node.dirty.store(true, Ordering::Release);
    Ok(Json(HeartbeatReply {
        status: "ok".into(),
        heartbeat_interval_secs: state.settings.heartbeat_interval_secs,
    }))
}

async fn leave(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let token = bearer(&headers)
        .ok_or_else(|| ApiError::Unauthorized("needs the node token or the admin token".into()))?;
    let node = find_node(&state, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound("unknown node".into()))?;
    let is_admin = state
        .settings
        .admin_token
        .as_deref()
        .is_some_and(|admin| secrets_match(token, admin));
    if !is_admin && !secrets_match(&hash_secret(token), &node.token_hash) {
        return Err(ApiError::Unauthorized(
            "token is not valid for this node".into(),
        ));
    }
    node.left.store(true, Ordering::Relaxed);
    store::mark_left(&state.db, &id, state.clock.now_ms()).await?;
    tracing::info!(node.id = %id, node.name = %node.name, "node left");
    Ok(StatusCode::NO_CONTENT)
}

async fn list(State(state): State<AppState>) -> Json<Vec<NodeInfo>> {
    let now = state.clock.now_ms();
    let offline_after = state.settings.offline_after_ms();
    let mut nodes: Vec<NodeInfo> = state
        .registry
        .all()
        .iter()
        .map(|n| n.info(now, offline_after))
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    Json(nodes)
}
