//! The live-event hub (plumbing): every event of a battle — created, each node selected, each
//! vote, the verdict, the rewards — passes through [`Hub`] on its way to the live connections
//! (`live/`: Server-Sent Events and the WebSocket), and across replicas through PostgreSQL's
//! `LISTEN`/`NOTIFY` ([`bridge`]). The battles domain emits (`battles::feed`); this module
//! knows no domain.
//!
//! Bounded everywhere: at most `--live-connections` connections per replica (503 beyond),
//! a fixed buffer per connection (a client that does not keep up is disconnected, never
//! buffered without limit), a fixed number of recent events kept for resuming clients.

pub mod bridge;
pub mod hub;

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use hub::{Event, Hub, Kind};

use crate::http::ApiError;

/// The hub and the connection limit, shared by the routes.
pub struct Events {
    pub hub: Arc<Hub>,
    connections: Arc<Semaphore>,
    max_connections: usize,
    /// How often a WebSocket checks its token again (logout, expiry, revoked admin).
    pub token_recheck: std::time::Duration,
    /// Cancelled when the HTTP server begins to stop: streams end so the drain is quick.
    pub stop: tokio_util::sync::CancellationToken,
}

impl Events {
    pub fn new(
        hub: Arc<Hub>,
        max_connections: usize,
        token_recheck: std::time::Duration,
        stop: tokio_util::sync::CancellationToken,
    ) -> Self {
        Events {
            hub,
            connections: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            token_recheck,
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
