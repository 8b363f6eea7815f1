//! Nodes: operators, registration, heartbeats, the in-memory registry, selection and node
//! health.

pub mod admin;
pub mod agreement;
pub mod enroll;
pub mod entry;
pub mod maintenance;
pub mod operators;
pub mod policy;
pub mod registry;
pub mod reputation;
mod routes;
pub mod sampler;
pub mod selection;
mod start;
pub mod store;
pub mod url_policy;
mod url_proof;

pub use policy::NodesPolicy;
pub use registry::{Assignment, NodeEntry, NodeRegistry};
pub use routes::UNSIGNED_OFFLINE_AFTER_MS;
pub use start::{Nodes, start};

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// The node protocol and the admin routes over operators and nodes.
pub fn router() -> OpenApiRouter<AppState> {
    routes::router()
        .merge(agreement::router())
        .merge(admin::router())
}
