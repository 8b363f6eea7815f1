//! Battle history: a player's battles (`GET /api/v1/battles?mine=true`) and a character's
//! (`GET /api/v1/characters/{id}/battles`), newest first, one index walk each.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::{IntoParams, ToSchema};

use crate::auth::CurrentPlayer;
use crate::http::ApiError;
use crate::http::error::ApiResult;
use crate::http::keyset::{Key, ListQuery};
use crate::http::openapi::ErrorResponse;
use crate::http::paging::{self, ApiQuery, Page, PageQuery};
use crate::state::AppState;

/// One battle from one side's point of view.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct BattleSummary {
    pub battle_id: String,
    /// PENDING, RUNNING, COMPLETED or ERROR.
    pub status: String,
    /// `attacker` (this player started it) or `defender`.
    pub side: String,
    pub character_id: String,
    pub opponent_character_id: String,
    /// `win`, `loss`, `error`, or null while the battle runs.
    pub outcome: Option<String>,
    pub winner_id: Option<String>,
    pub energy_spent: i64,
    pub created_at_ms: i64,
    pub settled_at_ms: Option<i64>,
}

/// Whose battles to list.
pub enum By<'a> {
    Player(&'a str),
    Character(&'a str),
}

pub async fn list(
    state: &AppState,
    by: By<'_>,
    page: &PageQuery,
) -> ApiResult<Page<BattleSummary>> {
    let limit = page.limit()?;
    let filter = match by {
        By::Player(p) => ("g.player_id", p),
        By::Character(c) => ("g.character_id", c),
    };
    let list = ListQuery {
        select: "SELECT g.battle_id, g.side, g.character_id, g.opponent_character_id, \
                 g.energy_spent, g.outcome, g.created_at_ms, b.status, b.winner_id, \
                 b.settled_at_ms FROM game_battles g JOIN battles b ON b.id = g.battle_id",
        filters: &[filter],
        keys: &[
            Key::desc_int("g.created_at_ms"),
            Key::desc_text("g.battle_id"),
        ],
    };
    let (rows, _) = list.page(&state.db, page, 2).await?;
    let items = rows
        .iter()
        .map(BattleSummary::from_row)
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Page::from_rows(items, limit, |b| {
        paging::cursor(&[&b.created_at_ms.to_string(), &b.battle_id])
    }))
}

/// `GET /api/v1/battles` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MineQuery {
    /// Must be `true`: the list holds the player's own battles.
    pub mine: Option<bool>,
    pub cursor: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    pub limit: Option<i64>,
}

#[utoipa::path(
    get, path = "/api/v1/battles", tag = "battles",
    params(MineQuery),
    responses(
        (status = 200, description = "The player's battles (as attacker or defender), newest first", body = Page<BattleSummary>),
        (status = 422, description = "`mine=true` missing, or a bad cursor or limit", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn mine(
    State(state): State<AppState>,
    player: CurrentPlayer,
    ApiQuery(query): ApiQuery<MineQuery>,
) -> ApiResult<Json<Page<BattleSummary>>> {
    if query.mine != Some(true) {
        return Err(ApiError::Unprocessable(
            "list your own battles with ?mine=true; read any battle with /api/v1/battles/{id}"
                .into(),
        ));
    }
    let page = PageQuery {
        cursor: query.cursor,
        limit: query.limit,
    };
    list(&state, By::Player(&player.id), &page).await.map(Json)
}
