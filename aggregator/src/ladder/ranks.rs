//! Ladder entries and ranks: a player enters the active season with one character
//! (`POST /api/v1/ladder/entries`); rank points move with every ladder verdict; the
//! `update-ranks` task stores each entry's rank and eligibility, so reads are an index walk
//! (`GET /api/v1/ladder`, `GET /api/v1/ladder/me`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::seasons::{self, chosen};
use super::{START_POINTS, UNRANKED};
use crate::auth::CurrentPlayer;
use crate::db::{Db, Dialect, Flag, Lock, Tx};
use crate::game::characters::store as characters;
use crate::http::error::ApiResult;
use crate::http::keyset::{Key, ListQuery};
use crate::http::openapi::ErrorResponse;
use crate::http::paging::{self, ApiQuery, Page, PageQuery};
use crate::http::{ApiError, ApiJson};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enter))
        .routes(routes!(ladder))
        .routes(routes!(mine))
}

/// One player's standing in one season.
#[derive(Debug, Clone, Serialize, ToSchema, FromRow)]
pub struct LadderRank {
    pub season_id: String,
    pub player_id: String,
    pub nickname: String,
    pub character_id: String,
    /// Stored by the `update-ranks` task (hourly at :30); 999999 until the first one.
    pub current_rank: i64,
    /// Start at 1000; Elo with K = 32 after each ladder battle.
    pub rank_points: i64,
    pub wins: i64,
    pub losses: i64,
    /// Paired by the scheduler: the character is still the player's and the player is not
    /// idle.
    #[sqlx(try_from = "Flag")]
    pub is_eligible: bool,
    pub last_battle_at_ms: Option<i64>,
    pub created_at_ms: i64,
}

const SELECT: &str = "SELECT r.season_id, r.player_id, p.nickname, r.character_id, \
    r.current_rank, r.rank_points, r.wins, r.losses, r.is_eligible, r.last_battle_at_ms, \
    r.created_at_ms FROM ladder_ranks r JOIN players p ON p.id = r.player_id";

async fn one(db: &Db, season: &str, player: &str) -> Result<Option<LadderRank>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE r.season_id = $1 AND r.player_id = $2"
    ))
    .bind(season)
    .bind(player)
    .fetch_optional(&db.pool)
    .await
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEntry {
    /// One of the player's characters; it fights every ladder battle of the season.
    pub character_id: String,
}

#[utoipa::path(
    post, path = "/api/v1/ladder/entries", tag = "ladder",
    request_body = NewEntry,
    responses(
        (status = 201, description = "Entered the active season with 1000 rank points", body = LadderRank),
        (status = 401, description = "No valid access token", body = ErrorResponse),
        (status = 404, description = "No such character of this player", body = ErrorResponse),
        (status = 409, description = "No active season, it has ended, or the player entered already", body = ErrorResponse),
        (status = 422, description = "Malformed body", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
async fn enter(
    State(state): State<AppState>,
    player: CurrentPlayer,
    ApiJson(body): ApiJson<NewEntry>,
) -> ApiResult<(StatusCode, Json<LadderRank>)> {
    if body.character_id.len() > 64 {
        return Err(ApiError::Unprocessable(
            "character_id: at most 64 characters".into(),
        ));
    }
    let now = state.clock.now_ms();
    let season = seasons::active(&state.db.pool).await?.ok_or_else(|| {
        ApiError::Conflict("no season is active; entries open with the next one".into())
    })?;
    if season.ends_at_ms <= now {
        return Err(ApiError::Conflict(format!(
            "season {} has ended",
            season.name
        )));
    }
    characters::owned(&state.db.pool, &player.id, &body.character_id)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "you have no character with id {}",
                body.character_id
            ))
        })?;
    let inserted = sqlx::query(
        "INSERT INTO ladder_ranks (season_id, player_id, character_id, current_rank, \
             rank_points, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $6) \
         ON CONFLICT (season_id, player_id) DO NOTHING",
    )
    .bind(&season.id)
    .bind(&player.id)
    .bind(&body.character_id)
    .bind(UNRANKED)
    .bind(START_POINTS)
    .bind(now)
    .execute(&state.db.writer)
    .await?;
    let entry = one(&state.db, &season.id, &player.id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("ladder entry vanished")))?;
    if inserted.rows_affected() != 1 {
        return Err(ApiError::Conflict(format!(
            "you entered season {} already, with character {}",
            season.name, entry.character_id
        )));
    }
    tracing::debug!(season.id = %season.id, player.id = %player.id, "ladder entry");
    Ok((StatusCode::CREATED, Json(entry)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeasonQuery {
    /// A season id; the active season when absent.
    pub season: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/ladder", tag = "ladder",
    params(SeasonQuery, PageQuery),
    responses(
        (status = 200, description = "Entries by stored rank (unranked entries last), keyset-paged", body = Page<LadderRank>),
        (status = 401, description = "No valid access token", body = ErrorResponse),
        (status = 404, description = "No such season, or none active", body = ErrorResponse),
        (status = 422, description = "Bad cursor or limit", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
async fn ladder(
    _: CurrentPlayer,
    State(state): State<AppState>,
    ApiQuery(season): ApiQuery<SeasonQuery>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<LadderRank>>> {
    let season = chosen(&state.db, season.season.as_deref()).await?;
    let list = ListQuery {
        select: SELECT,
        filters: &[("r.season_id", &season.id)],
        keys: &[Key::asc_int("r.current_rank"), Key::asc_text("r.player_id")],
    };
    let limit = page.limit()?;
    let (rows, _) = list.page(&state.db, &page, 2).await?;
    let entries = rows
        .iter()
        .map(LadderRank::from_row)
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Json(Page::from_rows(entries, limit, |e| {
        paging::cursor(&[&e.current_rank.to_string(), &e.player_id])
    })))
}

#[utoipa::path(
    get, path = "/api/v1/ladder/me", tag = "ladder",
    params(SeasonQuery),
    responses(
        (status = 200, description = "The player's own standing", body = LadderRank),
        (status = 401, description = "No valid access token", body = ErrorResponse),
        (status = 404, description = "No such season, none active, or the player has not entered it", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
async fn mine(
    player: CurrentPlayer,
    State(state): State<AppState>,
    ApiQuery(season): ApiQuery<SeasonQuery>,
) -> ApiResult<Json<LadderRank>> {
    let season = chosen(&state.db, season.season.as_deref()).await?;
    one(&state.db, &season.id, &player.id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("you have not entered season {}", season.name)))
}

/// Stores every entry's eligibility (character still the player's, player seen within
/// `idle_after_ms`) and rank (points, then wins, then player id). Returns (entries, eligible).
pub async fn recompute(
    tx: &mut Tx,
    dialect: Dialect,
    season: &str,
    now_ms: i64,
    idle_after_ms: i64,
) -> Result<(u64, u64), sqlx::Error> {
    // Rows locked in player id order first (the order a verdict locks its two), so the
    // season-wide updates below never cross a verdict on PostgreSQL.
    sqlx::query(&format!(
        "SELECT player_id FROM ladder_ranks WHERE season_id = $1 ORDER BY player_id{}",
        dialect.lock(Lock::Update)
    ))
    .bind(season)
    .fetch_all(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE ladder_ranks SET is_eligible = CASE WHEN \
             EXISTS (SELECT 1 FROM characters c WHERE c.id = ladder_ranks.character_id \
                     AND c.player_id = ladder_ranks.player_id) \
             AND EXISTS (SELECT 1 FROM players p WHERE p.id = ladder_ranks.player_id \
                     AND p.last_login_at_ms >= $2) THEN 1 ELSE 0 END \
         WHERE season_id = $1",
    )
    .bind(season)
    .bind(now_ms - idle_after_ms)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE ladder_ranks SET current_rank = ranked.rank, updated_at_ms = $2 \
         FROM (SELECT player_id, ROW_NUMBER() OVER \
                 (ORDER BY rank_points DESC, wins DESC, player_id) AS rank \
               FROM ladder_ranks WHERE season_id = $1) ranked \
         WHERE ladder_ranks.season_id = $1 AND ladder_ranks.player_id = ranked.player_id \
           AND ladder_ranks.current_rank <> ranked.rank",
    )
    .bind(season)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    let (entries, eligible): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(is_eligible), 0) AS BIGINT) FROM ladder_ranks \
         WHERE season_id = $1",
    )
    .bind(season)
    .fetch_one(&mut **tx)
    .await?;
    Ok((entries.max(0) as u64, eligible.max(0) as u64))
}

/// The `update-ranks` task (hourly at :30 by default).
pub struct UpdateRanks {
    pub idle_after_ms: i64,
    pub dialect: Dialect,
}

#[async_trait::async_trait]
impl crate::scheduler::Task for UpdateRanks {
    fn name(&self) -> &'static str {
        "update-ranks"
    }

    async fn run(&self, tx: &mut Tx, _slot_ms: i64, now_ms: i64) -> anyhow::Result<String> {
        let Some(season) = seasons::active(&mut **tx).await? else {
            return Ok("no active season".into());
        };
        let (entries, eligible) =
            recompute(tx, self.dialect, &season.id, now_ms, self.idle_after_ms).await?;
        Ok(format!(
            "ranked {entries} entries of season {} ({eligible} eligible)",
            season.id
        ))
    }
}
