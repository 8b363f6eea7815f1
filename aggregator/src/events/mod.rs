//! Live battle events: what happens to a battle — created, each node selected, each vote as
//! it arrives, the verdict, the rewards — pushed to clients over Server-Sent Events
//! (`GET /api/v1/battles/{id}/events`) and a WebSocket (`GET /api/v1/ws`), and across
//! replicas through PostgreSQL's `LISTEN`/`NOTIFY` ([`bridge`]).
//!
//! Bounded everywhere: at most `--live-connections` connections per replica (503 beyond),
//! a fixed buffer per connection (a client that does not keep up is disconnected, never
//! buffered without limit), a fixed number of recent events kept for resuming clients.

pub mod bridge;
pub mod feed;
pub mod hub;
pub mod snapshot;
pub mod sse;
pub mod ws;

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use feed::{Announce, BattleFeed, Route};
pub use hub::{Event, Hub, Kind};

use crate::http::ApiError;
use crate::state::AppState;

/// The hub and the connection limit, shared by the routes.
pub struct Events {
    pub hub: Arc<Hub>,
    connections: Arc<Semaphore>,
    max_connections: usize,
    /// Cancelled when the HTTP server begins to stop: streams end so the drain is quick.
    pub stop: tokio_util::sync::CancellationToken,
}

impl Events {
    pub fn new(
        hub: Arc<Hub>,
        max_connections: usize,
        stop: tokio_util::sync::CancellationToken,
    ) -> Self {
        Events {
            hub,
            connections: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            stop,
        }
    }

    /// A place for one more live connection, or 503.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        Arc::clone(&self.connections)
            .try_acquire_owned()
            .map_err(|_| {
                dropped("connection_limit");
                ApiError::Unavailable(format!(
                    "{} live connections are open, the most this replica serves; try again later",
                    self.max_connections
                ))
            })
    }
}

/// Counts an event or a connection given up, by reason.
pub fn dropped(reason: &'static str) {
    metrics::counter!(crate::http::metrics::EVENTS_DROPPED, "reason" => reason).increment(1);
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sse::battle_events))
        .routes(routes!(ws::socket))
}
