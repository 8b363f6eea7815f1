//! Player battles: start one against a chosen or matched opponent (spending energy), list a
//! player's battles, and replay a battle round by round with its votes. Settling stays with
//! the consensus worker; `crate::game::rewards` applies the game effects of its verdict.

pub(crate) mod create;
pub mod history;
pub mod matchmaking;
pub(crate) mod replay;

use axum::Router;
use axum::routing::get;

pub use history::BattleSummary;

/// Which side of a player battle a character fights on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The player who started the battle (and paid its energy).
    Attacker,
    /// The opponent's owner.
    Defender,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Attacker => "attacker",
            Side::Defender => "defender",
        }
    }
}

impl TryFrom<String> for Side {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "attacker" => Ok(Side::Attacker),
            "defender" => Ok(Side::Defender),
            _ => Err(format!("not a battle side: {s:?}")),
        }
    }
}

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/battles", get(history::mine).post(create::create))
        .route("/api/v1/battles/{id}/replay", get(replay::replay))
}
