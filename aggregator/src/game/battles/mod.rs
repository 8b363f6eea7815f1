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

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/battles", get(history::mine).post(create::create))
        .route("/api/v1/battles/{id}/replay", get(replay::replay))
}
