//! Node protocol v1: the JSON exchanged between `hero-node` and `hero-aggregator`.
//!
//! Wire-compatible with the seed's FastAPI node: every field we added is optional, unknown
//! fields are ignored when decoding, so a Python node and a Rust node can share a network.

mod battle;
mod error;
mod node;
pub mod signing;

pub use battle::{BattleLogEntry, BattleRequest, BattleResult, Fighter, MAX_LOG_ENTRIES};
pub use error::{ErrorBody, ErrorDetail};
pub use node::{
    Heartbeat, HeartbeatReply, NodeHealth, NodeInfo, NodeRegistration, NodeStats, RegistrationReply,
};

/// Version of the node protocol spoken by this crate.
pub const PROTOCOL_VERSION: &str = "1";
