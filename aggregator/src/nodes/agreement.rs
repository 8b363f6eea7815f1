//! `GET /api/nodes/agreement`: how often the votes of each backend and model agreed with the
//! verdict, so an operator can see which models reach consensus and which drift.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(agreement))
}

/// One backend and model, over every node in the registry that registered them (offline ones
/// included; nodes silent past `--node-retention-secs` leave the registry, and the sum).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ModelAgreement {
    /// `sim`, `gemini`, `openai`, or absent when the nodes did not say.
    pub backend: Option<String>,
    /// Absent for `sim` and for nodes that did not say.
    pub model: Option<String>,
    pub nodes: u64,
    /// Of those, how many are online now.
    pub online: u64,
    /// Votes that passed validation.
    pub valid_votes: u64,
    /// Valid votes that agreed with the verdict.
    pub agreed_votes: u64,
    /// `agreed_votes / valid_votes`; absent before the first valid vote.
    pub agreement_rate: Option<f64>,
}

/// Agreement per backend and model, ordered by backend then model.
pub fn by_model(state: &AppState) -> Vec<ModelAgreement> {
    let now = state.clock.now_ms();
    let offline_after = state.nodes.offline_after_ms();
    let mut groups: BTreeMap<(Option<String>, Option<String>), ModelAgreement> = BTreeMap::new();
    for node in state.registry.all().iter() {
        let key = (node.backend.clone(), node.model.clone());
        let group = groups.entry(key).or_insert_with(|| ModelAgreement {
            backend: node.backend.clone(),
            model: node.model.clone(),
            nodes: 0,
            online: 0,
            valid_votes: 0,
            agreed_votes: 0,
            agreement_rate: None,
        });
        let counters = node.snapshot_counters();
        group.nodes += 1;
        if node.status(now, offline_after) == "online" {
            group.online += 1;
        }
        group.valid_votes += counters.valid_votes;
        group.agreed_votes += counters.agreed_votes;
    }
    groups
        .into_values()
        .map(|mut g| {
            g.agreement_rate =
                (g.valid_votes > 0).then(|| g.agreed_votes as f64 / g.valid_votes as f64);
            g
        })
        .collect()
}

/// Agreement with the verdict per backend and model, over all registered nodes.
#[utoipa::path(
    get, path = "/api/nodes/agreement", tag = "nodes",
    responses(
        (status = 200, description = "Per backend and model: nodes, online nodes, valid votes, agreeing votes and the agreement rate", body = Vec<ModelAgreement>),
    )
)]
async fn agreement(State(state): State<AppState>) -> Json<Vec<ModelAgreement>> {
    Json(by_model(&state))
}
