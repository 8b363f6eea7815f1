//! The OpenAPI document, served at `GET /api/openapi.json`: the game API from its handlers'
//! `#[utoipa::path]` annotations, plus the node-protocol, admin and operations routes, which
//! are described here by hand. A test checks that every route the code registers is listed.

use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::openapi::path::{HttpMethod, OperationBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, ObjectBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::state::AppState;

/// The error body every endpoint answers with on failure.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorResponse {
    pub error: ErrorDetail,
    /// The message again, for FastAPI-style clients.
    pub detail: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// `bad_request`, `unauthorized`, `forbidden`, `not_found`, `method_not_allowed`, `conflict`,
    /// `payload_too_large`, `invalid_request`, `rate_limited`, `unavailable`, `internal`.
    pub code: String,
    pub message: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "AI Hero Battle API",
        description = "Game API for the frontend (`/api/v1`), the node protocol (`/api/nodes`) and operations. \
            Errors are always `{\"error\": {\"code\", \"message\"}}`. Player endpoints need \
            `Authorization: Bearer <access_token>` from `/api/v1/auth/guest` or `/api/v1/auth/device`."
    ),
    paths(
        crate::auth::routes::guest,
        crate::auth::routes::device,
        crate::auth::routes::refresh,
        crate::auth::routes::logout,
        crate::game::players::me,
        crate::game::players::rename,
        crate::game::players::ledger,
        crate::game::characters::summon::summon,
        crate::game::characters::routes::list,
        crate::game::characters::routes::show,
        crate::game::characters::routes::rename,
        crate::game::characters::routes::remove,
        crate::game::characters::routes::upgrade,
        crate::game::characters::routes::history,
        crate::game::battles::create::create,
        crate::game::battles::history::mine,
        crate::game::battles::replay::replay,
        crate::game::quests::list,
        crate::game::quests::claim,
        crate::game::leaderboard::leaderboard,
    ),
    components(schemas(ErrorResponse, ErrorDetail)),
    modifiers(&Security, &HandWritten),
    tags(
        (name = "auth", description = "Guest and device logins, token refresh, logout"),
        (name = "players", description = "The player's profile, balances and ledger"),
        (name = "characters", description = "Summon, list, rename, delete and upgrade characters"),
        (name = "battles", description = "Player battles, settled by the nodes' consensus"),
        (name = "quests", description = "Daily quests, reset at UTC midnight"),
        (name = "leaderboard", description = "Characters and players by wins"),
        (name = "nodes", description = "Node protocol v1"),
        (name = "admin", description = "Operator endpoints (admin token)"),
        (name = "operations", description = "Health, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub fn router() -> Router<AppState> {
    Router::new().route("/api/openapi.json", get(serve))
}

async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("Player access token (JWT, HS256)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("Admin, enrollment or node token"))
                    .build(),
            ),
        );
    }
}

/// Routes whose handlers live outside the game API, described by hand.
struct HandWritten;

/// (method, path, tag, summary, needs a token, success status, success description)
const HAND_WRITTEN: &[(HttpMethod, &str, &str, &str, bool, &str, &str)] = &[
    (
        HttpMethod::Get,
        "/api/nodes",
        "nodes",
        "List registered nodes (no secrets), paged: `limit` (1-1000, default 100), `cursor`, \
         `status` (online, offline, quarantined, busy, maintenance); the next page's cursor is \
         in the `X-Next-Cursor` header",
        false,
        "200",
        "Nodes with status, weight, reputation, latency, agreement, probation",
    ),
    (
        HttpMethod::Post,
        "/api/nodes/register",
        "nodes",
        "Register a node with its operator's enrollment token; signed with the node's Ed25519 \
         key (`X-Hero-Timestamp`, `X-Node-Signature`); 409 when its URL or key belongs to \
         another node, 429 when one address registers too often",
        true,
        "200",
        "`{node_id, node_token, heartbeat_interval_secs}`",
    ),
    (
        HttpMethod::Post,
        "/api/v1/admin/operators",
        "admin",
        "Create a node operator `{name, max_nodes=10, max_weight=1}`",
        true,
        "201",
        "The operator with its `enrollment_token` (shown once)",
    ),
    (
        HttpMethod::Get,
        "/api/v1/admin/operators",
        "admin",
        "List node operators (never their tokens)",
        true,
        "200",
        "Operators",
    ),
    (
        HttpMethod::Delete,
        "/api/v1/admin/operators/{name}",
        "admin",
        "Revoke an operator's token; its nodes leave selection",
        true,
        "200",
        "`{operator, nodes_removed}`",
    ),
    (
        HttpMethod::Get,
        "/api/v1/admin/nodes/{id}",
        "admin",
        "A node's details and its 50 most recent votes",
        true,
        "200",
        "The node",
    ),
    (
        HttpMethod::Patch,
        "/api/v1/admin/nodes/{id}",
        "admin",
        "Change a node: `{weight?, maintenance?, lift_quarantine?, probation?, reset_key?}`",
        true,
        "200",
        "The node as changed",
    ),
    (
        HttpMethod::Post,
        "/api/nodes/heartbeat",
        "nodes",
        "Heartbeat `{node_id, current_requests}` with the node token",
        true,
        "200",
        "Acknowledged; 404 makes the node register again",
    ),
    (
        HttpMethod::Delete,
        "/api/nodes/{id}",
        "nodes",
        "Leave the network (node token or admin token)",
        true,
        "204",
        "Removed",
    ),
    (
        HttpMethod::Post,
        "/api/v1/admin/battles",
        "admin",
        "Create a battle between two inline fighters",
        true,
        "202",
        "`{battle_id, status}`",
    ),
    (
        HttpMethod::Get,
        "/api/v1/battles/{id}",
        "battles",
        "A battle: status, winner, settled_by, the full log and every vote",
        false,
        "200",
        "The battle",
    ),
    (
        HttpMethod::Get,
        "/api/health",
        "operations",
        "Database and node-pool health",
        false,
        "200",
        "`{status, database, nodes, version}` (503 when the database is down)",
    ),
    (
        HttpMethod::Get,
        "/metrics",
        "operations",
        "Prometheus metrics",
        false,
        "200",
        "Prometheus text format",
    ),
    (
        HttpMethod::Get,
        "/api/openapi.json",
        "operations",
        "This document",
        false,
        "200",
        "OpenAPI 3.1 JSON",
    ),
];

impl Modify for HandWritten {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (method, path, tag, summary, token, status, description) in HAND_WRITTEN {
            let error = ResponseBuilder::new()
                .description("Error")
                .content(
                    "application/json",
                    Content::new(Some(Ref::from_schema_name("ErrorResponse"))),
                )
                .build();
            let mut operation = OperationBuilder::new()
                .tag(*tag)
                .summary(Some(*summary))
                .response(
                    *status,
                    ResponseBuilder::new()
                        .description(*description)
                        .content(
                            "application/json",
                            Content::new(Some(ObjectBuilder::new().build())),
                        )
                        .build(),
                )
                .response("default", error);
            if *token {
                operation =
                    operation.security(SecurityRequirement::new("token", Vec::<String>::new()));
            }
            openapi
                .paths
                .add_path_operation(path, vec![method.clone()], operation.build());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `(method, path)` registered with `.route(...)` anywhere in the crate's source.
    fn routes_in_source() -> Vec<(String, String)> {
        let needle = format!(".{}(", "route");
        let mut found = Vec::new();
        let mut dirs = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src"
        ))];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let mut rest = text.as_str();
                while let Some(at) = rest.find(&needle) {
                    let call = rest[at + needle.len()..].trim_start();
                    let Some(after) = call.strip_prefix('"') else {
                        rest = call;
                        continue;
                    };
                    let end = after.find('"').unwrap();
                    let route = after[..end].to_string();
                    // The handlers: up to the `)` closing `.route(`.
                    let mut depth = 1;
                    let mut close = 0;
                    for (i, ch) in after[end..].char_indices() {
                        match ch {
                            '(' => depth += 1,
                            ')' => depth -= 1,
                            _ => {}
                        }
                        if depth == 0 {
                            close = end + i;
                            break;
                        }
                    }
                    let handlers = &after[end..close];
                    for method in ["get", "post", "put", "patch", "delete"] {
                        let call = format!("{method}(");
                        let present = handlers.match_indices(&call).any(|(i, _)| {
                            i == 0
                                || !handlers[..i]
                                    .ends_with(|c: char| c.is_alphanumeric() || c == '_')
                        });
                        if present {
                            found.push((method.to_string(), route.clone()));
                        }
                    }
                    rest = &after[close..];
                }
            }
        }
        found
    }

    #[test]
    fn every_route_in_the_code_is_documented() {
        let doc = serde_json::to_value(document()).unwrap();
        let routes = routes_in_source();
        assert!(routes.len() >= 29, "found only {routes:?}");
        for (method, path) in routes {
            assert!(
                doc["paths"][&path][&method].is_object(),
                "{} {path} is routed but missing from the OpenAPI document",
                method.to_uppercase()
            );
        }
    }

    #[test]
    fn document_has_security_and_error_schema() {
        let doc = serde_json::to_value(document()).unwrap();
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        assert!(doc["components"]["schemas"]["ErrorResponse"].is_object());
        assert!(doc["paths"]["/api/v1/battles"]["post"]["security"].is_array());
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    }
}
