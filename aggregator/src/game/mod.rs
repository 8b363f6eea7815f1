//! The game the frontend talks to: players, characters, player battles through consensus,
//! rewards, daily quests, energy and the leaderboard.

pub mod battles;
pub mod characters;
pub mod leaderboard;
pub mod players;
pub mod quests;
pub mod rewards;
pub mod settings;

use utoipa_axum::router::OpenApiRouter;

pub use settings::GameArgs;

use crate::db::Dialect;
use crate::ledger::Ledger;
use crate::state::AppState;

/// The game's rules, shared by its routes and the battle worker.
#[derive(Debug, Clone)]
pub struct Game {
    pub ledger: Ledger,
    /// Energy one battle costs.
    pub battle_energy_cost: i64,
    /// Battles per UTC day against one opponent player (0: no limit).
    pub battles_per_opponent_per_day: i64,
}

impl Game {
    pub fn new(args: &GameArgs, dialect: Dialect) -> Game {
        Game {
            ledger: Ledger {
                dialect,
                energy_regen_ms: i64::try_from(args.energy_regen_secs)
                    .unwrap_or(360)
                    .saturating_mul(1000),
            },
            battle_energy_cost: i64::try_from(args.battle_energy_cost).unwrap_or(10),
            battles_per_opponent_per_day: i64::try_from(args.battles_per_opponent_per_day)
                .unwrap_or(5),
        }
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(players::router())
        .merge(characters::router())
        .merge(battles::router())
        .merge(quests::router())
        .merge(leaderboard::router())
}
