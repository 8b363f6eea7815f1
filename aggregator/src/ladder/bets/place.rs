//! `POST /api/v1/scheduled-battles/{id}/bets`: a stake on one side while betting is open,
//! debited through the ledger to the house, at most once per `Idempotency-Key`; and
//! `GET /api/v1/players/me/bets`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, Row};
use utoipa::ToSchema;

use super::{BET_COLUMNS, Bet, HOUSE, Side, flags};
use crate::auth::CurrentPlayer;
use crate::http::error::ApiResult;
use crate::http::idempotency::{self, IdempotencyKey};
use crate::http::keyset::{Key, ListQuery};
use crate::http::openapi::ErrorResponse;
use crate::http::paging::{self, ApiQuery, Page, PageQuery};
use crate::http::spend::spend;
use crate::http::{ApiError, ApiJson};
use crate::ladder::scheduled::{self, Betting};
use crate::ladder::seasons::parse_id;
use crate::ledger::{Change, Resource};
use crate::state::AppState;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceBet {
    /// `red` or `blue`.
    pub side: Side,
    /// Gold, 1 to `--bet-max` (1000 by default).
    pub amount: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BetPlaced {
    pub bet: Bet,
    /// The player's gold after the stake.
    pub gold_left: i64,
    /// The pools after this bet.
    pub red_pool: i64,
    pub blue_pool: i64,
}

#[utoipa::path(
    post, path = "/api/v1/scheduled-battles/{id}/bets", tag = "ladder",
    params(
        ("id" = String, Path, description = "Scheduled battle id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response instead of staking twice"),
    ),
    request_body = PlaceBet,
    responses(
        (status = 201, description = "Staked: the gold moved to the house until settlement", body = BetPlaced),
        (status = 401, description = "No valid access token", body = ErrorResponse),
        (status = 403, description = "The player's own character fights in this battle", body = ErrorResponse),
        (status = 404, description = "No such scheduled battle", body = ErrorResponse),
        (status = 409, description = "Betting not open yet or closed, battle started or finished, the other side backed already, the per-battle limit reached, or not enough gold", body = ErrorResponse),
        (status = 422, description = "Amount not between 1 and the per-bet limit, or a side other than red or blue", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn place(
    State(state): State<AppState>,
    player: CurrentPlayer,
    key: IdempotencyKey,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PlaceBet>,
) -> ApiResult<Response> {
    parse_id("scheduled battle", &id)?;
    let args = &state.ladder.args;
    if !(1..=args.bet_max).contains(&body.amount) {
        return Err(ApiError::Unprocessable(format!(
            "amount: 1 to {} gold per bet",
            args.bet_max
        )));
    }
    let route = format!("POST /api/v1/scheduled-battles/{id}/bets");
    let request = idempotency::Request::new(&player.id, &key, &route, &body);
    let now = state.clock.now_ms();
    let (state, player, body, id) = (&state, &player, &body, &id);
    spend(&state.db, &request, now, StatusCode::CREATED, || async { Ok(()) }, |mut tx| async move {
        let ladder = &state.ladder;
        let dialect = ladder.ledger.dialect;
        let s = scheduled::lock(&mut tx, dialect, "id", id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no scheduled battle with id {id}")))?;
        // The window is judged now that the battle is locked, not when the request arrived.
        let now = state.clock.now_ms();
        match Betting::at(s.betting_opens_at_ms, s.betting_closes_at_ms, &s.status, now) {
            Betting::Open => {}
            Betting::NotOpen => {
                return Err(ApiError::Conflict(format!(
                    "betting on this battle opens at {} (in {} s)",
                    s.betting_opens_at_ms,
                    (s.betting_opens_at_ms - now + 999) / 1000
                )));
            }
            Betting::Closed if s.status == "scheduled" => {
                return Err(ApiError::Conflict(format!(
                    "betting on this battle closed at {}",
                    s.betting_closes_at_ms
                )));
            }
            Betting::Closed => {
                return Err(ApiError::Conflict(format!(
                    "this battle is {}: betting is closed",
                    s.status
                )));
            }
        }
        if player.id == s.red_player_id || player.id == s.blue_player_id {
            return Err(ApiError::Forbidden(
                "your own character fights in this battle: you cannot bet on it".into(),
            ));
        }
        let mine = sqlx::query(
            "SELECT side, CAST(SUM(amount) AS BIGINT) AS staked FROM bets \
             WHERE scheduled_battle_id = $1 AND player_id = $2 GROUP BY side",
        )
        .bind(id)
        .bind(&player.id)
        .fetch_all(&mut *tx)
        .await?;
        let mut staked = 0;
        for row in &mine {
            let side: String = row.try_get("side")?;
            if side != body.side.as_str() {
                return Err(ApiError::Conflict(format!(
                    "you backed {side} in this battle already: one side per battle"
                )));
            }
            staked += row.try_get::<i64, _>("staked")?;
        }
        if staked + body.amount > ladder.args.bet_max_per_battle {
            return Err(ApiError::Conflict(format!(
                "at most {} gold per battle: you staked {staked} already",
                ladder.args.bet_max_per_battle
            )));
        }
        let bet_id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO bets (id, scheduled_battle_id, player_id, side, amount, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&bet_id)
        .bind(id)
        .bind(&player.id)
        .bind(body.side.as_str())
        .bind(body.amount)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let column = match body.side {
            Side::Red => "red_pool",
            Side::Blue => "blue_pool",
        };
        let (red_pool, blue_pool): (i64, i64) = sqlx::query_as(&format!(
            "UPDATE scheduled_battles SET {column} = {column} + $2 WHERE id = $1 \
             RETURNING red_pool, blue_pool"
        ))
        .bind(id)
        .bind(body.amount)
        .fetch_one(&mut *tx)
        .await?;
        // The player's row before the house's: the lock order.
        let stake = |player, delta, reason| Change {
            player,
            resource: Resource::Gold,
            delta,
            reason,
            reference: Some(id.as_str()),
        };
        let gold_left = ladder
            .ledger
            .apply(&mut tx, stake(&player.id, -body.amount, "bet"), now)
            .await?;
        ladder
            .ledger
            .credit(&mut tx, stake(HOUSE, body.amount, "bet_stake"), now)
            .await?;
        flags::check(&mut tx, &ladder.args, &player.id, id, body.side, now).await?;
        let bet: Bet = sqlx::query_as(&format!("SELECT {BET_COLUMNS} FROM bets WHERE id = $1"))
            .bind(&bet_id)
            .fetch_one(&mut *tx)
            .await?;
        tracing::debug!(bet.id = %bet_id, scheduled.id = %id, player.id = %player.id, "bet placed");
        Ok((
            tx,
            BetPlaced {
                bet,
                gold_left,
                red_pool,
                blue_pool,
            },
        ))
    })
    .await
}

#[utoipa::path(
    get, path = "/api/v1/players/me/bets", tag = "ladder",
    params(PageQuery),
    responses(
        (status = 200, description = "The player's bets, newest first, keyset-paged", body = Page<Bet>),
        (status = 401, description = "No valid access token", body = ErrorResponse),
        (status = 422, description = "Bad cursor or limit", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn mine(
    player: CurrentPlayer,
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Bet>>> {
    let select = format!("SELECT {BET_COLUMNS} FROM bets");
    let list = ListQuery {
        select: &select,
        filters: &[("player_id", &player.id)],
        keys: &[Key::desc_int("created_at_ms"), Key::desc_text("id")],
    };
    let limit = page.limit()?;
    let (rows, _) = list.page(&state.db, &page, 2).await?;
    let bets = rows
        .iter()
        .map(Bet::from_row)
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Json(Page::from_rows(bets, limit, |b| {
        paging::cursor(&[&b.created_at_ms.to_string(), &b.id])
    })))
}
