//! Parimutuel bets on scheduled battles: placing one (`POST …/bets`, with an
//! `Idempotency-Key`), the live odds, the player's own bets, settlement as part of the verdict
//! ([`settle`]) and suspicious patterns flagged for the admin ([`flags`]). Every stake moves
//! to the house account and every payout or refund comes back from it, through the ledger.

pub mod flags;
pub mod odds;
pub mod payout;
pub mod place;
pub mod settle;

use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// The ledger account that holds stakes and keeps the cut.
pub const HOUSE: &str = "house";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(place::place))
        .routes(routes!(odds::odds))
        .routes(routes!(place::mine))
        .routes(routes!(flags::list))
}

/// A side of a scheduled battle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Red,
    Blue,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Red => "red",
            Side::Blue => "blue",
        }
    }
}

impl TryFrom<String> for Side {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "red" => Ok(Side::Red),
            "blue" => Ok(Side::Blue),
            _ => Err(format!("not a side: {s:?}")),
        }
    }
}

/// One bet as its player sees it.
#[derive(Debug, Clone, Serialize, ToSchema, FromRow)]
pub struct Bet {
    pub id: String,
    pub scheduled_battle_id: String,
    /// `red` or `blue`.
    pub side: String,
    pub amount: i64,
    /// `open`, `won`, `lost` or `refunded`.
    pub status: String,
    /// Gold paid back at settlement (0 while open or lost).
    pub payout: i64,
    pub created_at_ms: i64,
    pub settled_at_ms: Option<i64>,
}

pub const BET_COLUMNS: &str =
    "id, scheduled_battle_id, side, amount, status, payout, created_at_ms, settled_at_ms";
