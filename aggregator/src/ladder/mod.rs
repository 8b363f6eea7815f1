//! The competitive loop: seasons (admin), ladder entries and stored ranks, battles the
//! scheduler pairs and starts, and parimutuel bets on them. Rank points and bet payouts are
//! effects of a verdict ([`verdicts::LadderVerdicts`] on the settlement port), so they commit
//! with the verdict, once.

pub mod bets;
pub mod pairing;
pub mod prizes;
pub mod ranks;
pub mod scheduled;
pub mod seasons;
pub mod settings;
pub mod verdicts;

use utoipa_axum::router::OpenApiRouter;

pub use settings::LadderArgs;

use crate::ledger::Ledger;
use crate::state::AppState;

/// `created_by` of every battle the ladder schedules (and of no other battle: players are
/// UUIDs, admins `admin:<name>`).
pub const CREATOR: &str = "ladder";

/// Rank points of a new ladder entry.
pub const START_POINTS: i64 = 1000;
/// `current_rank` of an entry no recompute has ranked yet.
pub const UNRANKED: i64 = 999_999;

/// The ladder's rules, shared by its routes, tasks and verdict effect.
#[derive(Debug, Clone)]
pub struct Ladder {
    pub ledger: Ledger,
    pub args: LadderArgs,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(seasons::router())
        .merge(ranks::router())
        .merge(scheduled::router())
        .merge(bets::router())
}
