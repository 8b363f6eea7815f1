//! `/api/nodes/...`: the node side of protocol v1.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hero_protocol::{Heartbeat, HeartbeatReply, NodeInfo, NodeRegistration, RegistrationReply};
use serde::Deserialize;

use super::enroll::{self, Claim, Enrollment};
use super::store::{self, Registered};
use super::{NodeEntry, url_policy, url_proof};
use crate::auth::secrets::{hash_secret, new_secret, secrets_match};
use crate::http::bearer::bearer;
use crate::http::error::ApiResult;
use crate::http::ip_limit::Kind;
use crate::http::metrics::REGISTRATIONS_REFUSED;
use crate::http::net::ClientIp;
use crate::http::{ApiError, ApiJson};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(register))
        .routes(routes!(heartbeat))
        .routes(routes!(leave))
}

/// Unsigned (seed-style) nodes heartbeat every 60 s: they count as offline only after this.
pub const UNSIGNED_OFFLINE_AFTER_MS: i64 = 180_000;

fn printable(field: &str, value: &str, max_chars: usize) -> Result<(), ApiError> {
    if value.chars().count() > max_chars || !crate::http::input::is_plain_line(value) {
        return Err(ApiError::Unprocessable(format!(
            "{field} must be at most {max_chars} printable characters"
        )));
    }
    Ok(())
}

fn check_registration(reg: &NodeRegistration) -> Result<(), ApiError> {
    let bad = |m: &str| Err(ApiError::Unprocessable(m.to_string()));
    // Checked whole, not trimmed: a line break at either end would start a forged log line.
    let name = &reg.name;
    if name.trim().is_empty()
        || name.chars().count() > 100
        || !crate::http::input::is_plain_line(name)
    {
        return bad(
            "name must be 1-100 printable characters, without line breaks or bidirectional and zero-width characters",
        );
    }
    if reg.weight > 1000 {
        return bad("weight must be between 0 and 1000");
    }
    if reg.max_concurrent_requests == 0 || reg.max_concurrent_requests > 10_000 {
        return bad("max_concurrent_requests must be between 1 and 10000");
    }
    if reg.public_key.as_ref().is_some_and(|k| {
        !hero_protocol::signing::is_public_key(k)
            || hero_protocol::signing::PublicKey::parse(k).is_none()
    }) {
        return bad(
            "public_key must be an Ed25519 public key: 64 lowercase hex characters, the \
             canonical encoding of a point of the curve that is not of small order",
        );
    }
    if let Some(key) = &reg.api_key {
        printable("api_key", key, 255)?;
    }
    for (field, value) in [
        ("operator", &reg.operator),
        ("backend", &reg.backend),
        ("version", &reg.version),
        ("model", &reg.model),
    ] {
        if let Some(value) = value {
            printable(field, value, 100)?;
        }
    }
    Ok(())
}

/// Counts a refused registration by reason and passes the error on.
fn refused(reason: &'static str) -> impl FnOnce(ApiError) -> ApiError {
    move |e| {
        metrics::counter!(REGISTRATIONS_REFUSED, "reason" => reason).increment(1);
        tracing::info!(target: "security", reason, error = %e, "node registration refused");
        e
    }
}

/// Register a node with its operator's enrollment token, signed with the node's Ed25519 key.
#[utoipa::path(
    post, path = "/api/nodes/register", tag = "nodes",
    request_body = NodeRegistration,
    params(
        ("X-Hero-Timestamp" = Option<String>, Header, description = "Milliseconds since the epoch, signed with the body"),
        ("X-Node-Signature" = Option<String>, Header, description = "Ed25519 signature (hex) of `hero-register-v1\n{timestamp}\n{sha256(body)}` by the node's key"),
    ),
    responses(
        (status = 200, description = "Registered (or re-registered): the node's id and token", body = RegistrationReply),
        (status = 401, description = "No or wrong enrollment token", body = crate::http::openapi::ErrorResponse),
        (status = 403, description = "The body names another operator than the token's", body = crate::http::openapi::ErrorResponse),
        (status = 409, description = "The URL or key belongs to another node (and the URL's /health does not present this key), or the operator's node limit is reached", body = crate::http::openapi::ErrorResponse),
        (status = 422, description = "Not a valid registration, signature or node URL", body = crate::http::openapi::ErrorResponse),
        (status = 429, description = "Too many registrations from this address", body = crate::http::openapi::ErrorResponse),
    ),
    security(("token" = []))
)]
async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<RegistrationReply>> {
    let now = state.clock.now_ms();
    state
        .ip_limiter
        .check(ip, Kind::NodeRegistration, now)
        .await
        .map_err(refused("rate_limited"))?;
    let enrollment =
        enroll::enrollment(&state.db, &headers, state.nodes.enrollment_token.as_deref())
            .await
            .map_err(refused("token"))?;
    let reg: NodeRegistration = serde_json::from_slice(&body)
        .map_err(|e| ApiError::Unprocessable(format!("not a node registration: {e}")))
        .map_err(refused("invalid"))?;
    check_registration(&reg).map_err(refused("invalid"))?;
    let signed_at =
        enroll::check_signature(&reg, &headers, &body, now, state.nodes.allow_unsigned_nodes)
            .map_err(refused("signature"))?;
    // In an open network the seat is the host address; a DNS name checked now could later
    // resolve to a machine that already holds a seat. Names only where the network is trusted.
    if matches!(enrollment, Enrollment::Open)
        && url_policy::names_host(&reg.url)
        && !state.nodes.allow_private_node_urls
    {
        return Err(refused("invalid")(ApiError::Unprocessable(
            "in an open network (no operator accounts) a node URL must name its host by IP \
             address: a host name could later point several nodes at one machine"
                .into(),
        )));
    }
    let allow_private = state.nodes.allow_private_node_urls
        || matches!(&enrollment, Enrollment::Operator(op) if op.is_local);
    let checked = url_policy::check_node_url(&reg.url, allow_private)
        .await
        .map_err(ApiError::Unprocessable)
        .map_err(refused("invalid"))?;
    let (operator, weight, max_nodes, local) = match &enrollment {
        Enrollment::Operator(op) => {
            if let Some(claimed) = reg.operator.as_deref().map(str::trim)
                && !claimed.is_empty()
                && claimed != op.name
            {
                return Err(refused("token")(ApiError::Forbidden(format!(
                    "operator {claimed:?} in the body disagrees with the enrollment token, which \
                     is operator {:?}'s",
                    op.name
                ))));
            }
            let max_weight = u32::try_from(op.max_weight).unwrap_or(0);
            (
                op.name.clone(),
                reg.weight.min(max_weight),
                Some(op.max_nodes),
                op.is_local,
            )
        }
        // An open network: a node is run by its host, and every node weighs the same.
        Enrollment::Open => (url_policy::host_operator(checked.address), 1, None, false),
    };
    let mut by_url = store::by_url(&state.db, &checked.url).await?;
    let by_key = match &reg.public_key {
        Some(key) => store::by_key(&state.db, key).await?,
        None => None,
    };
    let key = reg.public_key.as_deref();
    let mut claim = enroll::claim(&operator, key, signed_at, by_url.as_ref(), by_key.as_ref());
    // Refused because another key (or an unsigned node) holds the URL: the URL is this
    // registration's if the node serving it presents this key, and nothing else stands in
    // the way.
    if let Err(ApiError::Conflict(conflict)) = &claim
        && let (Some(key), Some(holder)) = (key, &by_url)
        && holder.public_key.as_deref() != Some(key)
        && by_key.as_ref().is_none_or(|k| k.id != holder.id)
    {
        let conflict = conflict.clone();
        let holder = holder.clone();
        let without_holder = enroll::claim(&operator, Some(key), signed_at, None, by_key.as_ref());
        if without_holder.is_ok() {
            claim = match url_proof::presents_key(&checked.url, key, allow_private).await {
                Ok(()) => {
                    url_proof::retire(&state, &holder).await?;
                    by_url = None;
                    without_holder
                }
                Err(reason) => Err(ApiError::Conflict(format!(
                    "{conflict}; the URL would be yours if the node serving it presented your \
                     key at /health, but {reason}"
                ))),
            };
        }
    }
    let claim = claim.map_err(refused("takeover"))?;
    let token = format!("{}{}", crate::auth::kinds::NODE_PREFIX, new_secret());
    let token_hash = hash_secret(&token);
    let registered = Registered {
        reg: &reg,
        url: &checked.url,
        operator: &operator,
        weight,
        token_hash: &token_hash,
        signed_at_ms: signed_at,
        probation: state.nodes.probation_votes > 0 && !local,
    };
    let entry = match claim {
        Claim::New => store::insert_within(&state.db, &registered, max_nodes, now)
            .await?
            .ok_or_else(|| {
                refused("limit")(ApiError::Conflict(format!(
                    "operator {operator} already has its {} nodes (max_nodes): remove one or \
                     ask the admin for more",
                    max_nodes.unwrap_or_default()
                )))
            })?,
        Claim::Update { id, signed_at } => {
            let rejoining = by_key.as_ref().or(by_url.as_ref()).is_some_and(|n| n.left);
            if rejoining
                && let Some(max) = max_nodes
                && store::count_active(&state.db.writer, &operator).await? >= max
            {
                return Err(refused("limit")(ApiError::Conflict(format!(
                    "operator {operator} already has its {max} nodes (max_nodes)"
                ))));
            }
            store::update(&state.db, &id, &registered, signed_at, now)
                .await?
                .ok_or_else(|| {
                    ApiError::Conflict("the node registered concurrently: try again".into())
                })?
        }
    };
    let entry = state.registry.upsert(entry);
    tracing::info!(node.id = %entry.id, node.name = %entry.name, node.url = %entry.url, node.operator = %operator, probation = entry.on_probation(), signed = entry.public_key.is_some(), "node registered");
    Ok(Json(RegistrationReply {
        node_id: entry.id.clone(),
        node_token: token,
        heartbeat_interval_secs: state.nodes.heartbeat_interval_secs,
    }))
}

/// A node found for a heartbeat or a leave.
enum Found {
    /// In memory.
    Known(Arc<NodeEntry>),
    /// Only in the database (registered through another replica, or forgotten after a long
    /// silence): it enters memory only once its caller has proved who it is.
    Stored(Box<NodeEntry>),
}

impl Found {
    fn node(&self) -> &NodeEntry {
        match self {
            Found::Known(node) => node,
            Found::Stored(node) => node,
        }
    }

    /// The node in the registry (inserted if it was only stored).
    fn admit(self, state: &AppState) -> Arc<NodeEntry> {
        match self {
            Found::Known(node) => node,
            Found::Stored(node) => state.registry.upsert(*node),
        }
    }
}

/// Finds a node in memory, or in the database.
async fn find_node(state: &AppState, id: &str) -> ApiResult<Option<Found>> {
    if let Some(node) = state.registry.get(id) {
        return Ok(Some(Found::Known(node)));
    }
    if uuid::Uuid::parse_str(id).is_err() {
        return Ok(None);
    }
    Ok(store::find(&state.db, id)
        .await?
        .map(|node| Found::Stored(Box::new(node))))
}

/// Heartbeat with the node token.
#[utoipa::path(
    post, path = "/api/nodes/heartbeat", tag = "nodes",
    request_body = Heartbeat,
    responses(
        (status = 200, description = "Acknowledged", body = HeartbeatReply),
        (status = 401, description = "No or wrong node token", body = crate::http::openapi::ErrorResponse),
        (status = 404, description = "Unknown node: register again", body = crate::http::openapi::ErrorResponse),
        (status = 429, description = "Too many heartbeats from this address", body = crate::http::openapi::ErrorResponse),
    ),
    security(("token" = []))
)]
async fn heartbeat(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(hb): ApiJson<Heartbeat>,
) -> ApiResult<Json<HeartbeatReply>> {
    let now = state.clock.now_ms();
    state.ip_limiter.check(ip, Kind::Heartbeat, now).await?;
    let token = bearer(&headers);
    let found = find_node(&state, &hb.node_id)
        .await?
        .filter(|n| !n.node().left.load(Ordering::Relaxed))
        .ok_or_else(|| ApiError::NotFound("unknown node: register again".into()))?;
    let node = match token {
        // Seed-style nodes heartbeat without a token; accepted for unsigned nodes only, and
        // only when the aggregator admits them.
        None if found.node().public_key.is_none() && state.nodes.allow_unsigned_nodes => {
            found.admit(&state)
        }
        None => {
            return Err(ApiError::Unauthorized(
                "heartbeat needs the node token".into(),
            ));
        }
        Some(token) => {
            let presented = hash_secret(token);
            if secrets_match(&presented, &found.node().token_hash) {
                found.admit(&state)
            } else {
                // The node may have registered again through another replica.
                match store::find(&state.db, &hb.node_id).await? {
                    Some(stored)
                        if secrets_match(&presented, &stored.token_hash)
                            && !stored.left.load(Ordering::Relaxed) =>
                    {
                        state.registry.upsert(stored)
                    }
                    _ => return Err(ApiError::Unauthorized("node token is not valid".into())),
                }
            }
        }
    };
    node.heartbeat(now, hb.current_requests);
    Ok(Json(HeartbeatReply {
        status: "ok".into(),
        heartbeat_interval_secs: state.nodes.heartbeat_interval_secs,
    }))
}

/// Leave the network (node token or admin token).
#[utoipa::path(
    delete, path = "/api/nodes/{id}", tag = "nodes",
    params(("id" = String, Path, description = "Node id")),
    responses(
        (status = 204, description = "Removed from selection"),
        (status = 401, description = "No token, or a token that is not this node's or the admin's", body = crate::http::openapi::ErrorResponse),
        (status = 404, description = "Unknown node", body = crate::http::openapi::ErrorResponse),
    ),
    security(("token" = []))
)]
async fn leave(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let token = bearer(&headers)
        .ok_or_else(|| ApiError::Unauthorized("needs the node token or the admin token".into()))?;
    let found = find_node(&state, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound("unknown node".into()))?;
    let node = found.node();
    let is_admin = crate::auth::admin::authenticate(&state, token)
        .await?
        .is_some();
    if !is_admin && !secrets_match(&hash_secret(token), &node.token_hash) {
        return Err(ApiError::Unauthorized(
            "token is not valid for this node".into(),
        ));
    }
    // Out of selection at once; calls already made still bring their votes.
    node.left.store(true, Ordering::Relaxed);
    state.registry.changed();
    store::mark_left(&state.db, &id, state.clock.now_ms()).await?;
    if is_admin {
        crate::nodes::admin::security_event("node_removed", &id);
    }
    tracing::info!(node.id = %id, node.name = %node.name, "node left");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Nodes per page (1-1000, default 100).
    limit: Option<usize>,
    /// From `X-Next-Cursor` of the previous page.
    cursor: Option<String>,
    /// Only nodes with this status: online, offline, quarantined, busy or maintenance.
    status: Option<String>,
}

const STATUSES: &[&str] = &["online", "offline", "quarantined", "busy", "maintenance"];

/// The public node list, ordered by name then id, paged: the next page's cursor comes in the
/// `X-Next-Cursor` header (and a `Link: rel="next"`), absent on the last page.
#[utoipa::path(
    get, path = "/api/nodes", tag = "nodes",
    params(ListQuery),
    responses(
        (status = 200, description = "Nodes (no secrets) by name, with status, weight, reputation, latency, agreement and probation; the next page's cursor is in `X-Next-Cursor`", body = Vec<NodeInfo>,
            headers(("x-next-cursor" = String, description = "Cursor of the next page; absent on the last page"))),
        (status = 400, description = "A control character in the query", body = crate::http::openapi::ErrorResponse),
        (status = 422, description = "Bad limit, status or cursor", body = crate::http::openapi::ErrorResponse),
    )
)]
async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(query) = query.map_err(|e| ApiError::Unprocessable(e.body_text()))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::Unprocessable(
            "limit must be between 1 and 1000".into(),
        ));
    }
    if let Some(status) = &query.status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(ApiError::Unprocessable(format!(
            "status must be one of {}",
            STATUSES.join(", ")
        )));
    }
    let after = match &query.cursor {
        Some(c) => Some(decode_cursor(c)?),
        None => None,
    };
    let now = state.clock.now_ms();
    let offline_after = state.nodes.offline_after_ms();
    let mut nodes: Vec<NodeInfo> = state
        .registry
        .all()
        .iter()
        .map(|n| n.info(now, offline_after))
        .filter(|n| query.status.as_deref().is_none_or(|s| n.status == s))
        .filter(|n| {
            after
                .as_ref()
                .is_none_or(|(name, id)| (&n.name, &n.id) > (name, id))
        })
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    let more = nodes.len() > limit;
    nodes.truncate(limit);
    let mut response = Json(&nodes).into_response();
    if more && let Some(last) = nodes.last() {
        let cursor = encode_cursor(&last.name, &last.id);
        if let Ok(value) = HeaderValue::from_str(&cursor) {
            response.headers_mut().insert("x-next-cursor", value);
        }
        let mut link = format!("</api/nodes?limit={limit}&cursor={cursor}");
        if let Some(status) = &query.status {
            link.push_str("&status=");
            link.push_str(status);
        }
        link.push_str(">; rel=\"next\"");
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert("link", value);
        }
    }
    Ok(response)
}

fn encode_cursor(name: &str, id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{id}\n{name}"))
}

fn decode_cursor(cursor: &str) -> Result<(String, String), ApiError> {
    use base64::Engine;
    let bad = || ApiError::Unprocessable("cursor is not one this server issued".into());
    if cursor.len() > 512 {
        return Err(bad());
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (id, name) = text.split_once('\n').ok_or_else(bad)?;
    if uuid::Uuid::parse_str(id).is_err() || name.chars().any(char::is_control) {
        return Err(bad());
    }
    Ok((name.to_string(), id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_forgeries() {
        let id = "7f9c2ba4-e88f-4a5c-9b1e-3f1e2d3c4b5a";
        let c = encode_cursor("node a", id);
        assert_eq!(
            decode_cursor(&c).unwrap(),
            ("node a".to_string(), id.to_string())
        );
        assert!(decode_cursor("!!").is_err());
        use base64::Engine;
        let nul = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("\u{0}\nx");
        assert!(decode_cursor(&nul).is_err());
    }

    #[test]
    fn control_characters_are_refused_in_every_field() {
        let reg = |f: &dyn Fn(&mut NodeRegistration)| {
            let mut r: NodeRegistration =
                serde_json::from_str(r#"{"name":"n","url":"http://8.8.8.8"}"#).unwrap();
            f(&mut r);
            check_registration(&r)
        };
        assert!(reg(&|_| {}).is_ok());
        assert!(reg(&|r| r.name = "a\u{0}b".into()).is_err());
        assert!(reg(&|r| r.api_key = Some("k\u{0}".into())).is_err());
        assert!(reg(&|r| r.operator = Some("o\u{1b}".into())).is_err());
        assert!(reg(&|r| r.backend = Some("\u{0}".into())).is_err());
        assert!(reg(&|r| r.version = Some("1\n".into())).is_err());
        // A line break at either end of a name (trimmed, it passed) forged log lines.
        assert!(reg(&|r| r.name = "\nFAKE LOG LINE  INFO admin: granted".into()).is_err());
        assert!(reg(&|r| r.name = "node\n".into()).is_err());
        // Bidirectional and zero-width characters make one name read as another.
        assert!(reg(&|r| r.name = "\u{202E}good-node".into()).is_err());
        assert!(reg(&|r| r.backend = Some("sim\u{200B}".into())).is_err());
    }
}
