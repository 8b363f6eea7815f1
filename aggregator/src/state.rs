//! `AppState`: the cheap handles every route and background task shares.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Notify;

use crate::cli::ServeArgs;
use crate::clock::SharedClock;
use crate::db::Db;
use crate::nodes::NodeRegistry;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub registry: Arc<NodeRegistry>,
    pub clock: SharedClock,
    pub settings: Arc<ServeArgs>,
    /// Wakes the battle worker when a battle is created.
    pub battle_wake: Arc<Notify>,
    pub metrics: PrometheusHandle,
    /// Writes character text with the configured LLM (Gemini with `--gemini-api-key`);
    /// `None` without one. Use `hero_engine::summon_from_templates` then, and also when the
    /// summoner fails (record that the templates were used).
    pub summoner: Option<Arc<dyn hero_engine::Summoner>>,
    /// Player logins: token keys and per-player rate limits.
    pub auth: Arc<crate::auth::Auth>,
    /// The game's rules: the ledger, battle cost, energy regeneration.
    pub game: Arc<crate::game::Game>,
    /// Per-address limits of the unauthenticated endpoints.
    pub ip_limiter: Arc<crate::http::ip_limit::IpLimiter>,
}
