//! `GET /api/v1/scheduled-battles/{id}/odds`: live parimutuel odds from the pools.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use super::Side;
use super::payout::payout_per_gold;
use crate::auth::CurrentPlayer;
use crate::http::error::ApiResult;
use crate::http::openapi::ErrorResponse;
use crate::ladder::scheduled::{self, Betting};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Odds {
    pub scheduled_battle_id: String,
    pub betting: Betting,
    pub red_pool: i64,
    pub blue_pool: i64,
    pub red_bettors: i64,
    pub blue_bettors: i64,
    /// The house cut of a settled pool, in basis points.
    pub house_cut_bp: i64,
    /// Gold paid back per gold staked on red if red wins at the current pools (null while
    /// nobody backs red; 1.0 while nobody backs blue: a one-sided pool is refunded).
    pub red_payout_per_gold: Option<f64>,
    pub blue_payout_per_gold: Option<f64>,
}

#[utoipa::path(
    get, path = "/api/v1/scheduled-battles/{id}/odds", tag = "ladder",
    params(("id" = String, Path, description = "Scheduled battle id")),
    responses(
        (status = 200, description = "Pools, bettors and the payout per gold of each side", body = Odds),
        (status = 401, description = "No valid access token", body = ErrorResponse),
        (status = 404, description = "No such scheduled battle", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn odds(
    _: CurrentPlayer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Odds>> {
    let s = scheduled::existing(&state.db, &id).await?;
    let rows = sqlx::query(
        "SELECT side, COUNT(DISTINCT player_id) AS n FROM bets \
         WHERE scheduled_battle_id = $1 GROUP BY side",
    )
    .bind(&id)
    .fetch_all(&state.db.pool)
    .await?;
    let mut bettors = (0, 0);
    for row in &rows {
        let n: i64 = row.try_get("n")?;
        match row.try_get::<String, _>("side")?.as_str() {
            "red" => bettors.0 = n,
            _ => bettors.1 = n,
        }
    }
    let cut = state.ladder.args.house_cut_bp;
    let now = state.clock.now_ms();
    Ok(Json(Odds {
        betting: Betting::at(
            s.betting_opens_at_ms,
            s.betting_closes_at_ms,
            &s.status,
            now,
        ),
        red_payout_per_gold: payout_per_gold(s.red_pool, s.blue_pool, Side::Red, cut),
        blue_payout_per_gold: payout_per_gold(s.red_pool, s.blue_pool, Side::Blue, cut),
        scheduled_battle_id: s.id,
        red_pool: s.red_pool,
        blue_pool: s.blue_pool,
        red_bettors: bettors.0,
        blue_bettors: bettors.1,
        house_cut_bp: cut,
    }))
}
