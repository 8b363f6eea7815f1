//! Player battles: start one against a chosen or matched opponent (spending energy), list a
//! player's battles, and replay a battle round by round with its votes. Settling stays with
//! the consensus worker; `crate::game::rewards` applies the game effects of its verdict.

pub(crate) mod create;
pub mod history;
pub mod intake;
pub mod matchmaking;
pub mod pairs;
pub(crate) mod replay;
pub mod store;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(history::mine, create::create))
        .routes(routes!(replay::replay))
}
