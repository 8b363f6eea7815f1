//! Seasons: an admin creates one (draft), activates it (one active at a time) and closes it,
//! which pays the prize pool by the prize table through the ledger, once. The `close-seasons`
//! task closes the active season when its end passes.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, Row};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::prizes::{self, Prize};
use super::{Ladder, bets, ranks};
use crate::auth::CurrentPlayer;
use crate::auth::admin::Admin;
use crate::db::{Db, Tx};
use crate::http::error::ApiResult;
use crate::http::openapi::ErrorResponse;
use crate::http::{ApiError, ApiJson};
use crate::ledger::{Change, Resource};
use crate::state::AppState;

/// Largest prize pool, in gold.
pub const MAX_PRIZE_POOL: i64 = 1_000_000_000_000;
pub const NAME_MAX_CHARS: usize = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list_all))
        .routes(routes!(activate))
        .routes(routes!(close))
        .routes(routes!(list))
}

#[derive(Debug, Clone, Serialize, ToSchema, FromRow)]
pub struct Season {
    pub id: String,
    pub name: String,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    /// `draft`, `active` or `closed`.
    pub status: String,
    /// Gold paid at close by the prize table.
    pub prize_pool: i64,
    pub created_at_ms: i64,
    pub activated_at_ms: Option<i64>,
    pub closed_at_ms: Option<i64>,
}

const COLUMNS: &str = "id, name, starts_at_ms, ends_at_ms, status, prize_pool, created_at_ms, \
                       activated_at_ms, closed_at_ms";

/// A path id that is not a UUID names nothing.
pub fn parse_id(kind: &str, id: &str) -> Result<(), ApiError> {
    if uuid::Uuid::parse_str(id).is_err() || id.len() != 36 {
        return Err(ApiError::NotFound(format!(
            "no {kind} with id {id:?} (ids are UUIDs)"
        )));
    }
    Ok(())
}

pub async fn find(db: &Db, id: &str) -> Result<Option<Season>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM seasons WHERE id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
}

/// The active season, read from the pool (routes) or inside a task's transaction.
pub async fn active<'e, E>(executor: E) -> Result<Option<Season>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM seasons WHERE status = 'active'"
    ))
    .fetch_optional(executor)
    .await
}

/// The season named by `?season=`, or the active one.
pub async fn chosen(db: &Db, season: Option<&str>) -> Result<Season, ApiError> {
    match season {
        Some(id) => {
            parse_id("season", id)?;
            find(db, id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("no season with id {id}")))
        }
        None => active(&db.pool)
            .await?
            .ok_or_else(|| ApiError::NotFound("no season is active; pass ?season=".into())),
    }
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSeason {
    /// 1 to 100 characters.
    pub name: String,
    /// Ms since the Unix epoch.
    pub starts_at_ms: i64,
    /// After `starts_at_ms`; the `close-seasons` task closes the season when it passes.
    pub ends_at_ms: i64,
    /// Gold paid at close (0 to 10^12).
    #[serde(default)]
    pub prize_pool: i64,
}

#[utoipa::path(
    post, path = "/api/v1/admin/seasons", tag = "ladder",
    request_body = NewSeason,
    responses(
        (status = 201, description = "The season, as a draft", body = Season),
        (status = 401, description = "No or wrong admin token", body = ErrorResponse),
        (status = 403, description = "Admin endpoints are off (no --admin-token)", body = ErrorResponse),
        (status = 422, description = "Bad name, times or prize pool", body = ErrorResponse),
    ),
    security(("token" = []))
)]
async fn create(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewSeason>,
) -> ApiResult<(StatusCode, Json<Season>)> {
    let name = body.name.trim();
    if name.is_empty()
        || name.chars().count() > NAME_MAX_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(ApiError::Unprocessable(format!(
            "name: 1 to {NAME_MAX_CHARS} printable characters"
        )));
    }
    if body.starts_at_ms < 0 || body.ends_at_ms <= body.starts_at_ms {
        return Err(ApiError::Unprocessable(
            "ends_at_ms must be after starts_at_ms (both ms since the Unix epoch)".into(),
        ));
    }
    if !(0..=MAX_PRIZE_POOL).contains(&body.prize_pool) {
        return Err(ApiError::Unprocessable(format!(
            "prize_pool: 0 to {MAX_PRIZE_POOL} gold"
        )));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let now = state.clock.now_ms();
    sqlx::query(
        "INSERT INTO seasons (id, name, starts_at_ms, ends_at_ms, prize_pool, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(name)
    .bind(body.starts_at_ms)
    .bind(body.ends_at_ms)
    .bind(body.prize_pool)
    .bind(now)
    .execute(&state.db.writer)
    .await?;
    tracing::info!(season.id = %id, name, "season created");
    let season = find(&state.db, &id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("season {id} vanished after insert")))?;
    Ok((StatusCode::CREATED, Json(season)))
}

#[utoipa::path(
    get, path = "/api/v1/admin/seasons", tag = "ladder",
    responses(
        (status = 200, description = "Every season, drafts included, newest first (at most 500)", body = Vec<Season>),
        (status = 401, description = "No or wrong admin token", body = ErrorResponse),
        (status = 403, description = "Admin endpoints are off (no --admin-token)", body = ErrorResponse),
    ),
    security(("token" = []))
)]
async fn list_all(_: Admin, State(state): State<AppState>) -> ApiResult<Json<Vec<Season>>> {
    Ok(Json(listed(&state.db, false).await?))
}

#[utoipa::path(
    get, path = "/api/v1/seasons", tag = "ladder",
    responses(
        (status = 200, description = "Active and closed seasons, newest first (at most 500)", body = Vec<Season>),
        (status = 401, description = "No valid access token", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
async fn list(_: CurrentPlayer, State(state): State<AppState>) -> ApiResult<Json<Vec<Season>>> {
    Ok(Json(listed(&state.db, true).await?))
}

async fn listed(db: &Db, public: bool) -> Result<Vec<Season>, sqlx::Error> {
    let filter = if public {
        "WHERE status <> 'draft' "
    } else {
        ""
    };
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM seasons {filter}ORDER BY created_at_ms DESC, id LIMIT 500"
    ))
    .fetch_all(&db.pool)
    .await
}

#[utoipa::path(
    post, path = "/api/v1/admin/seasons/{id}/activate", tag = "ladder",
    params(("id" = String, Path, description = "Season id")),
    responses(
        (status = 200, description = "The season, now active: players may enter and the scheduler pairs them", body = Season),
        (status = 401, description = "No or wrong admin token", body = ErrorResponse),
        (status = 403, description = "Admin endpoints are off (no --admin-token)", body = ErrorResponse),
        (status = 404, description = "No such season", body = ErrorResponse),
        (status = 409, description = "Not a draft, already ended, or another season is active", body = ErrorResponse),
    ),
    security(("token" = []))
)]
async fn activate(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Season>> {
    parse_id("season", &id)?;
    let season = find(&state.db, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no season with id {id}")))?;
    let now = state.clock.now_ms();
    if season.status != "draft" {
        return Err(ApiError::Conflict(format!(
            "season {id} is {}; only a draft can be activated",
            season.status
        )));
    }
    if season.ends_at_ms <= now {
        return Err(ApiError::Conflict(format!("season {id} has already ended")));
    }
    if let Some(other) = active(&state.db.pool).await? {
        return Err(ApiError::Conflict(format!(
            "season {} ({}) is active; close it first",
            other.id, other.name
        )));
    }
    // The unique index on active seasons settles a race between two activations.
    let updated = sqlx::query(
        "UPDATE seasons SET status = 'active', activated_at_ms = $2 \
         WHERE id = $1 AND status = 'draft'",
    )
    .bind(&id)
    .bind(now)
    .execute(&state.db.writer)
    .await;
    match updated {
        Ok(done) if done.rows_affected() == 1 => {}
        Ok(_) => {
            return Err(ApiError::Conflict(format!(
                "season {id} is no longer a draft"
            )));
        }
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(ApiError::Conflict(
                "another season was activated first".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(season.id = %id, "season activated");
    Ok(Json(find(&state.db, &id).await?.unwrap_or(season)))
}

/// A closed season and what it paid.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeasonClosed {
    pub season: Season,
    pub prizes: Vec<Prize>,
    /// Scheduled battles of the season that had not started: voided, stakes refunded.
    pub battles_voided: usize,
}

#[utoipa::path(
    post, path = "/api/v1/admin/seasons/{id}/close", tag = "ladder",
    params(("id" = String, Path, description = "Season id")),
    responses(
        (status = 200, description = "Closed: final ranks stored, prizes paid through the ledger, unstarted battles voided", body = SeasonClosed),
        (status = 401, description = "No or wrong admin token", body = ErrorResponse),
        (status = 403, description = "Admin endpoints are off (no --admin-token)", body = ErrorResponse),
        (status = 404, description = "No such season", body = ErrorResponse),
        (status = 409, description = "The season is not active", body = ErrorResponse),
    ),
    security(("token" = []))
)]
async fn close(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<SeasonClosed>> {
    parse_id("season", &id)?;
    let season = find(&state.db, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no season with id {id}")))?;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin_write().await?;
    let Some((prizes, battles_voided)) = close_in(&mut tx, &state.ladder, &season, now).await?
    else {
        return Err(ApiError::Conflict(format!(
            "season {id} is {}; only the active season can be closed",
            season.status
        )));
    };
    tx.commit().await?;
    let season = find(&state.db, &id).await?.unwrap_or(season);
    Ok(Json(SeasonClosed {
        season,
        prizes,
        battles_voided,
    }))
}

/// Closes `season` if it is still active: stores the final ranks, voids the battles that have
/// not started, pays the prizes. `None` when it was not active (someone closed it first).
pub async fn close_in(
    tx: &mut Tx,
    ladder: &Ladder,
    season: &Season,
    now_ms: i64,
) -> Result<Option<(Vec<Prize>, usize)>, sqlx::Error> {
    let closed = sqlx::query(
        "UPDATE seasons SET status = 'closed', closed_at_ms = $2 WHERE id = $1 AND status = 'active'",
    )
    .bind(&season.id)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    if closed.rows_affected() != 1 {
        return Ok(None);
    }
    // Ranks before any bet or player row (the lock order).
    let dialect = ladder.ledger.dialect;
    ranks::recompute(
        tx,
        dialect,
        &season.id,
        now_ms,
        ladder.args.ladder_idle_after,
    )
    .await?;
    let voided = bets::settle::void_unstarted(tx, ladder, &season.id, now_ms).await?;
    let rows = sqlx::query(
        "SELECT player_id, current_rank FROM ladder_ranks \
         WHERE season_id = $1 AND wins + losses > 0 ORDER BY current_rank LIMIT $2",
    )
    .bind(&season.id)
    .bind(i64::try_from(prizes::TABLE_BP.len()).unwrap_or(3))
    .fetch_all(&mut **tx)
    .await?;
    let ranked: Vec<(String, i64)> = rows
        .iter()
        .map(|r| Ok((r.try_get("player_id")?, r.try_get("current_rank")?)))
        .collect::<Result<_, sqlx::Error>>()?;
    let mut prizes = prizes::plan(season.prize_pool, &ranked);
    // Credits in player id order: the global lock order.
    prizes.sort_by(|a, b| a.player_id.cmp(&b.player_id));
    for prize in &prizes {
        ladder
            .ledger
            .credit(
                tx,
                Change {
                    player: &prize.player_id,
                    resource: Resource::Gold,
                    delta: prize.gold,
                    reason: "season_prize",
                    reference: Some(&season.id),
                },
                now_ms,
            )
            .await?;
    }
    prizes.sort_by_key(|p| p.rank);
    tracing::info!(season.id = %season.id, prizes = prizes.len(), voided, "season closed");
    Ok(Some((prizes, voided)))
}

/// The `close-seasons` task: closes the active season once its end has passed.
pub struct CloseSeasons {
    pub ladder: Ladder,
}

#[async_trait::async_trait]
impl crate::scheduler::Task for CloseSeasons {
    fn name(&self) -> &'static str {
        "close-seasons"
    }

    async fn run(&self, tx: &mut Tx, _slot_ms: i64, now_ms: i64) -> anyhow::Result<String> {
        let Some(season) = active(&mut **tx).await? else {
            return Ok("no active season".into());
        };
        if season.ends_at_ms > now_ms {
            return Ok(format!(
                "season {} runs until {}",
                season.id, season.ends_at_ms
            ));
        }
        Ok(match close_in(tx, &self.ladder, &season, now_ms).await? {
            Some((prizes, voided)) => format!(
                "closed season {}: {} prizes paid, {voided} battles voided",
                season.id,
                prizes.len()
            ),
            None => format!("season {} was closed already", season.id),
        })
    }
}
