//! Scheduled battles: made by `pair-battles`, started by `start-battles` (every minute by
//! default) at their start time as ordinary battles through consensus, with the fighters as
//! they were paired; their verdict moves
//! rank points and settles the bets ([`super::verdicts`]).
//! `GET /api/v1/scheduled-battles` and `GET /api/v1/scheduled-battles/{id}` show them.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::seasons::parse_id;
use super::{Ladder, bets};
use crate::auth::CurrentPlayer;
use crate::battles::store::{self as battle_store, NewBattle};
use crate::db::{Db, Dialect, Lock, Tx};
use crate::game::characters::store as characters;
use crate::http::ApiError;
use crate::http::error::ApiResult;
use crate::http::keyset::{Key, ListQuery};
use crate::http::openapi::ErrorResponse;
use crate::http::paging::{self, ApiQuery, Page, PageQuery};
use crate::state::AppState;

/// Battles one `start-battles` run starts at most; the rest wait for the next run.
const START_BATCH: i64 = 200;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get))
}

/// Where a scheduled battle's betting window is at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Betting {
    NotOpen,
    Open,
    Closed,
}

impl Betting {
    pub fn at(opens_ms: i64, closes_ms: i64, status: &str, now_ms: i64) -> Betting {
        if status != "scheduled" || now_ms >= closes_ms {
            Betting::Closed
        } else if now_ms < opens_ms {
            Betting::NotOpen
        } else {
            Betting::Open
        }
    }
}

/// One ladder battle and its pools. `red` is the higher-ranked side when paired.
#[derive(Debug, Clone, Serialize, ToSchema, FromRow)]
pub struct ScheduledBattle {
    pub id: String,
    pub season_id: String,
    pub red_player_id: String,
    pub red_character_id: String,
    pub blue_player_id: String,
    pub blue_character_id: String,
    pub starts_at_ms: i64,
    pub betting_opens_at_ms: i64,
    pub betting_closes_at_ms: i64,
    /// `scheduled` → `running` (a consensus battle) → `settled`; `void` when it could not be
    /// fought (every stake refunded).
    pub status: String,
    /// The battle through consensus, once started.
    pub battle_id: Option<String>,
    /// `red` or `blue` once settled.
    pub winner_side: Option<String>,
    /// Gold staked on each side.
    pub red_pool: i64,
    pub blue_pool: i64,
    /// The house's cut and rounding remainder, once settled.
    pub house_take: i64,
    /// Why the bets were refunded (fallback verdict, ERROR, a missing fighter, season closed).
    pub void_reason: Option<String>,
    pub created_at_ms: i64,
    pub settled_at_ms: Option<i64>,
    /// Betting window at the time of the answer.
    #[sqlx(skip)]
    pub betting: Option<Betting>,
}

pub const COLUMNS: &str = "id, season_id, red_player_id, red_character_id, blue_player_id, \
    blue_character_id, starts_at_ms, betting_opens_at_ms, betting_closes_at_ms, status, \
    battle_id, winner_side, red_pool, blue_pool, house_take, void_reason, created_at_ms, \
    settled_at_ms";

impl ScheduledBattle {
    fn at(mut self, now_ms: i64) -> ScheduledBattle {
        self.betting = Some(Betting::at(
            self.betting_opens_at_ms,
            self.betting_closes_at_ms,
            &self.status,
            now_ms,
        ));
        self
    }
}

pub async fn find(db: &Db, id: &str) -> Result<Option<ScheduledBattle>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM scheduled_battles WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&db.pool)
    .await
}

/// Loads and locks one scheduled battle in a write transaction.
pub async fn lock(
    tx: &mut Tx,
    dialect: Dialect,
    filter: &str,
    value: &str,
) -> Result<Option<ScheduledBattle>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM scheduled_battles WHERE {filter} = $1{}",
        dialect.lock(Lock::Update)
    ))
    .bind(value)
    .fetch_optional(&mut **tx)
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScheduledFilter {
    /// Only this season's battles.
    pub season: Option<String>,
    /// Only battles in this status: `scheduled`, `running`, `settled` or `void`.
    pub status: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/scheduled-battles", tag = "ladder",
    params(ScheduledFilter, PageQuery),
    responses(
        (status = 200, description = "Ladder battles, latest start first, keyset-paged", body = Page<ScheduledBattle>),
        (status = 401, description = "No valid access token", body = ErrorResponse),
        (status = 422, description = "Bad status, season, cursor or limit", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
async fn list(
    _: CurrentPlayer,
    State(state): State<AppState>,
    ApiQuery(filter): ApiQuery<ScheduledFilter>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<ScheduledBattle>>> {
    let mut filters: Vec<(&'static str, &str)> = Vec::new();
    if let Some(season) = &filter.season {
        if uuid::Uuid::parse_str(season).is_err() {
            return Err(ApiError::Unprocessable("season: a season id (UUID)".into()));
        }
        filters.push(("season_id", season));
    }
    if let Some(status) = &filter.status {
        if !["scheduled", "running", "settled", "void"].contains(&status.as_str()) {
            return Err(ApiError::Unprocessable(
                "status: one of scheduled, running, settled, void".into(),
            ));
        }
        filters.push(("status", status));
    }
    let select = format!("SELECT {COLUMNS} FROM scheduled_battles");
    let list = ListQuery {
        select: &select,
        filters: &filters,
        keys: &[Key::desc_int("starts_at_ms"), Key::desc_text("id")],
    };
    let limit = page.limit()?;
    let (rows, _) = list.page(&state.db, &page, 2).await?;
    let now = state.clock.now_ms();
    let battles = rows
        .iter()
        .map(|r| ScheduledBattle::from_row(r).map(|b| b.at(now)))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Json(Page::from_rows(battles, limit, |b| {
        paging::cursor(&[&b.starts_at_ms.to_string(), &b.id])
    })))
}

#[utoipa::path(
    get, path = "/api/v1/scheduled-battles/{id}", tag = "ladder",
    params(("id" = String, Path, description = "Scheduled battle id")),
    responses(
        (status = 200, description = "The scheduled battle, its pools and betting window", body = ScheduledBattle),
        (status = 401, description = "No valid access token", body = ErrorResponse),
        (status = 404, description = "No such scheduled battle", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
async fn get(
    _: CurrentPlayer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ScheduledBattle>> {
    Ok(Json(
        existing(&state.db, &id).await?.at(state.clock.now_ms()),
    ))
}

/// The scheduled battle `id`, or a 404 that says why.
pub async fn existing(db: &Db, id: &str) -> Result<ScheduledBattle, ApiError> {
    parse_id("scheduled battle", id)?;
    find(db, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no scheduled battle with id {id}")))
}

/// The `start-battles` task: every scheduled battle whose start time has come becomes a
/// battle through consensus, with its fighters as snapshotted at pairing; a battle whose fighter is
/// gone (deleted, or no longer the player's) is voided and its stakes refunded.
pub struct StartBattles {
    pub ladder: Ladder,
    pub wake: Arc<crate::battles::handoff::Wake>,
    /// Where the `created` events of the battles started go.
    pub events: Arc<crate::events::Hub>,
    /// The battles the current run started, announced once it commits.
    pub started: std::sync::Mutex<Vec<crate::battles::feed::Announce>>,
    /// The current run inserted battles: the worker is woken once it commits.
    pub inserted: std::sync::atomic::AtomicBool,
}

impl StartBattles {
    fn started(&self) -> std::sync::MutexGuard<'_, Vec<crate::battles::feed::Announce>> {
        self.started
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl crate::scheduler::Task for StartBattles {
    fn name(&self) -> &'static str {
        "start-battles"
    }

    async fn run(&self, tx: &mut Tx, _slot_ms: i64, now_ms: i64) -> anyhow::Result<String> {
        let dialect = self.ladder.ledger.dialect;
        let due: Vec<ScheduledBattle> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM scheduled_battles \
             WHERE status = 'scheduled' AND starts_at_ms <= $1 ORDER BY starts_at_ms, id LIMIT $2{}",
            dialect.lock(Lock::Update)
        ))
        .bind(now_ms)
        .bind(START_BATCH)
        .fetch_all(&mut **tx)
        .await?;
        let (mut started, mut voided) = (0, 0);
        // A run that does not commit announces nothing.
        self.started().clear();
        self.inserted
            .store(false, std::sync::atomic::Ordering::Relaxed);
        for s in &due {
            let mut ids = [s.red_character_id.as_str(), s.blue_character_id.as_str()];
            ids.sort_unstable();
            let mut found = Vec::with_capacity(2);
            for id in ids {
                if let Some(c) = characters::lock(tx, dialect, id, Lock::Share).await? {
                    found.push(c);
                }
            }
            let still_theirs =
                |id: &str, player: &str| found.iter().any(|c| c.id == id && c.player_id == player);
            // They fight as they were paired (what the bettors saw), not as upgraded since.
            let snapshot: String =
                sqlx::query_scalar("SELECT fighters_json FROM scheduled_battles WHERE id = $1")
                    .bind(&s.id)
                    .fetch_one(&mut **tx)
                    .await?;
            let fighters: Vec<hero_protocol::Fighter> =
                serde_json::from_str(&snapshot).unwrap_or_default();
            if fighters.len() != 2
                || !still_theirs(&s.red_character_id, &s.red_player_id)
                || !still_theirs(&s.blue_character_id, &s.blue_player_id)
            {
                bets::settle::void(
                    tx,
                    &self.ladder,
                    s,
                    "a fighter left before the start",
                    now_ms,
                )
                .await?;
                voided += 1;
                continue;
            };
            let prompt = hero_engine::request_prompt(&fighters);
            let battle_id = battle_store::insert(
                tx,
                &NewBattle {
                    fighters: &fighters,
                    seed: battle_store::random_seed(),
                    prompt: &prompt,
                    created_by: Some(super::CREATOR),
                },
                now_ms,
            )
            .await?;
            self.inserted
                .store(true, std::sync::atomic::Ordering::Relaxed);
            sqlx::query(
                "UPDATE scheduled_battles SET status = 'running', battle_id = $2 \
                 WHERE id = $1 AND status = 'scheduled'",
            )
            .bind(&s.id)
            .bind(&battle_id)
            .execute(&mut **tx)
            .await?;
            if self.events.wanted() {
                let mut players = vec![s.red_player_id.clone(), s.blue_player_id.clone()];
                players.sort();
                self.started().push(crate::battles::feed::Announce {
                    battle_id: battle_id.clone(),
                    status: crate::battles::Status::Pending,
                    fighters: fighters.clone(),
                    route: crate::battles::feed::Route {
                        players,
                        ladder: true,
                    },
                });
            }
            started += 1;
        }
        Ok(format!("started {started} battles, voided {voided}"))
    }

    fn after_commit(&self) {
        for announce in self.started().drain(..) {
            announce.publish(&self.events);
        }
        if self
            .inserted
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            self.wake.pending();
        }
    }
}
