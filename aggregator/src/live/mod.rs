//! Live battle events for clients: `GET /api/v1/battles/{id}/events` (Server-Sent Events,
//! [`sse`]) and `GET /api/v1/ws` (a WebSocket with subscriptions, [`ws`]), each starting from a
//! [`snapshot`] of the battle and fed by the hub (`crate::events`). See the README's "Live
//! events".

pub mod snapshot;
pub mod sse;
pub mod ws;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sse::battle_events))
        .routes(routes!(ws::socket))
}
