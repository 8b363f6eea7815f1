//! `AppState`: the cheap handles every route and background task shares, and the config
//! sections handlers need (each extractable on its own through `FromRef`).

use std::sync::Arc;

use axum::extract::FromRef;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::admin::AdminSettings;
use crate::clock::SharedClock;
use crate::consensus::ConsensusSettings;
use crate::db::Db;
use crate::http::net::NetArgs;
use crate::nodes::{NodeRegistry, NodesPolicy};

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub registry: Arc<NodeRegistry>,
    pub clock: SharedClock,
    /// Who may join the network and how nodes are judged.
    pub nodes: Arc<NodesPolicy>,
    /// k, timeouts and replacements of consensus rounds.
    pub consensus: Arc<ConsensusSettings>,
    /// Who may call admin endpoints.
    pub admin: Arc<AdminSettings>,
    /// Connection limits, timeouts and trusted proxies.
    pub net: Arc<NetArgs>,
    /// Wakes the battle worker when a battle is created.
    pub battle_wake: Arc<crate::battles::handoff::Wake>,
    pub metrics: PrometheusHandle,
    /// Writes character text with the configured LLM (Gemini with `--gemini-api-key`);
    /// `None` without one. Use `hero_engine::summon_from_templates` then, and also when the
    /// summoner fails (record that the templates were used).
    pub summoner: Option<Arc<dyn hero_engine::Summoner>>,
    /// Player logins: token keys and per-player rate limits.
    pub auth: Arc<crate::auth::Auth>,
    /// The game's rules: the ledger, battle cost, energy regeneration.
    pub game: Arc<crate::game::Game>,
    /// Idempotent requests running in this process (a duplicate waits for the first).
    pub in_flight: Arc<crate::http::idempotency::InFlight>,
    /// Per-address limits of the unauthenticated endpoints.
    pub ip_limiter: Arc<crate::http::ip_limit::IpLimiter>,
    /// The ladder's rules: scheduled battle times, bet limits, the house cut.
    pub ladder: Arc<crate::ladder::Ladder>,
    /// Live battle events: the hub and the connection limit.
    pub events: Arc<crate::events::Events>,
    /// The scheduler's beat table (for `GET /api/v1/admin/tasks`).
    pub tasks: Arc<crate::scheduler::BeatTable>,
    /// Inserts the admin endpoint's new battles, group-committed.
    pub intake: Arc<crate::battles::intake::Intake>,
    /// Starts player battles group-committed (SQLite; `None` on PostgreSQL).
    pub player_intake: Option<Arc<crate::game::battles::intake::PlayerIntake>>,
    /// Battles that can no longer change, served from memory.
    pub battle_cache: Arc<crate::battles::cache::BattleCache>,
    /// Leaderboard pages, kept for a moment.
    pub board_cache: Arc<crate::game::leaderboard::BoardCache>,
}

macro_rules! section {
    ($($field:ident: $ty:ty),* $(,)?) => {$(
        impl FromRef<AppState> for $ty {
            fn from_ref(state: &AppState) -> Self {
                state.$field.clone()
            }
        }
    )*};
}

section! {
    db: Db,
    registry: Arc<NodeRegistry>,
    clock: SharedClock,
    nodes: Arc<NodesPolicy>,
    consensus: Arc<ConsensusSettings>,
    admin: Arc<AdminSettings>,
    net: Arc<NetArgs>,
    auth: Arc<crate::auth::Auth>,
    game: Arc<crate::game::Game>,
}
