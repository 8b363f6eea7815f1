//! The OpenAPI document's frame: title, tags, security schemes and the error shape. The paths
//! come from the routes themselves: every handler carries `#[utoipa::path]` and every domain
//! router is a `utoipa_axum` `OpenApiRouter`, so a route cannot exist undocumented
//! (`crate::router` assembles both and serves `GET /api/openapi.json`).

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

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
    components(schemas(ErrorResponse, ErrorDetail)),
    modifiers(&Security),
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
