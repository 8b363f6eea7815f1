//! An HTTP/1.1 accept loop for our axum routers that holds up against slow and abusive
//! clients: connection caps in all and per client address, a deadline for request headers
//! (also between kept-alive requests) and for answers the client stops reading, and graceful
//! shutdown.
//!
//! `axum::serve` has none of these: a client can hold any number of connections open for
//! ever by sending nothing, or one byte at a time. Use [`serve`] in its place; handlers see
//! [`axum::extract::ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo) as with
//! `into_make_service_with_connect_info`.

mod caps;
mod client_ip;
mod json_errors;
mod server;
mod telemetry;
mod unread_body;

use std::time::Duration;

pub use client_ip::{client_ip, parse_cidr};
pub use json_errors::plain_errors_as_json;
pub use server::serve;
pub use telemetry::{describe_metrics, keep_drained};
pub use unread_body::close_if_body_unread;

/// How much a server lets its clients hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most open connections in all; further connections are accepted and closed at once.
    pub max_connections: usize,
    /// Most open connections from one client IP address (IPv6: per /64); further ones are
    /// accepted and closed at once.
    pub max_connections_per_ip: usize,
    /// Longest a client may take to send a request's headers (also while a kept-alive
    /// connection idles before its next request), and longest it may leave an answer unread
    /// (a write that makes no progress for this long closes the connection).
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_connections_per_ip: 256,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}
