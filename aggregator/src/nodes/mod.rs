//! Nodes: registration, heartbeats, the in-memory registry, selection and node health.

pub mod maintenance;
pub mod registry;
pub mod reputation;
mod routes;
pub mod sampler;
pub mod selection;
pub mod store;
pub mod url_policy;

pub use registry::{Assignment, NodeEntry, NodeRegistry};
pub use routes::router;
