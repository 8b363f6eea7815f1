//! `POST /api/v1/battles`: a player's character against a chosen or matched opponent.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::matchmaking::{self, Matched};
use crate::auth::{Bucket, CurrentPlayer};
use crate::battles::feed::{Announce, Route};
use crate::battles::store::{self as battle_store, NewBattle};
use crate::db::Tx;
use crate::game::characters::store::{self, CharacterView, Lock};
use crate::http::error::ApiResult;
use crate::http::idempotency::{self, IdempotencyKey};
use crate::http::openapi::ErrorResponse;
use crate::http::{ApiError, ApiJson};
use crate::ledger::{Change, Resource};
use crate::state::AppState;

/// `POST /api/v1/battles` body.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBattle {
    /// One of the player's characters.
    pub character_id: String,
    /// Another player's character; matched by rating when absent.
    #[serde(default)]
    pub opponent_id: Option<String>,
}

/// The opponent as the attacker may see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Opponent {
    pub character_id: String,
    pub name: String,
    pub rarity: i64,
    pub level: i64,
    pub rating: i64,
}

/// A battle that was created and waits for the nodes' consensus.
#[derive(Debug, Serialize, ToSchema)]
pub struct BattleStarted {
    pub battle_id: String,
    pub status: crate::battles::Status,
    pub character_id: String,
    pub opponent: Opponent,
    pub energy_spent: i64,
    /// The player's energy after paying for this battle.
    pub energy_left: i64,
}

#[utoipa::path(
    post, path = "/api/v1/battles", tag = "battles",
    request_body = StartBattle,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response instead of charging twice")),
    responses(
        (status = 202, description = "Created; spends energy (10 by default); settles through consensus", body = BattleStarted),
        (status = 404, description = "No such character of this player, or no such opponent", body = ErrorResponse),
        (status = 409, description = "Not enough energy, or no opponent available", body = ErrorResponse),
        (status = 422, description = "The opponent is the player's own character", body = ErrorResponse),
        (status = 429, description = "More than the hourly battle limit, or the daily limit against this opponent's player; see Retry-After", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    player: CurrentPlayer,
    key: IdempotencyKey,
    ApiJson(body): ApiJson<StartBattle>,
) -> ApiResult<Response> {
    if body.character_id.len() > 64 || body.opponent_id.as_ref().is_some_and(|o| o.len() > 64) {
        return Err(ApiError::Unprocessable(
            "ids are at most 64 characters".into(),
        ));
    }
    let mine_missing = || {
        ApiError::NotFound(format!(
            "you have no character with id {}",
            body.character_id
        ))
    };
    let opponent_id = match &body.opponent_id {
        Some(id) => id.clone(),
        None => match matchmaking::find_opponent(
            &state.db,
            &player.id,
            &body.character_id,
            state.game.battles_per_opponent_per_day,
            state.clock.now_ms(),
        )
        .await?
        {
            Matched::Opponent(id) => id,
            Matched::NotYours => return Err(mine_missing()),
            Matched::Nobody => {
                return Err(ApiError::Conflict(
                    "no opponent is available yet; try again later".into(),
                ));
            }
        },
    };
    if opponent_id == body.character_id {
        return Err(ApiError::Unprocessable(
            "a character cannot fight itself".into(),
        ));
    }
    let ask = Ask {
        player,
        key,
        body,
        opponent_id,
        limit_counted: false,
    };
    // Through the intake the battle is announced there, once its batch is committed.
    let (response, created) = match &state.player_intake {
        Some(intake) => intake.start(state.clone(), ask).await?,
        None => state.db.write(alone(state.clone(), ask)).await?,
    };
    // Announced before the worker wakes, so `created` comes before the battle's other events.
    // (Through the intake, both were done there.)
    if let Some(announce) = created {
        announce.publish(&state.events.hub);
        state.battle_wake.pending();
    }
    Ok(response)
}

/// A battle a player asked for, its opponent chosen.
pub struct Ask {
    pub player: CurrentPlayer,
    pub key: IdempotencyKey,
    pub body: StartBattle,
    pub opponent_id: String,
    /// The battle rate limit was already counted for it (by the intake).
    pub limit_counted: bool,
}

/// The answer, and what the live `created` event says once the battle is committed.
pub type Started = (Response, Option<Announce>);

/// `ask` in a write transaction of its own.
pub async fn alone(state: AppState, ask: Ask) -> ApiResult<Started> {
    let mut tx = state.db.begin_write().await?;
    let started = start(&mut tx, &state, &ask).await;
    match started {
        Ok(started) => {
            tx.commit().await?;
            Ok(started)
        }
        Err(e) => {
            // The refusal is the answer; a rollback that fails changes nothing kept.
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

/// Starts the battle in `tx` (claims the `Idempotency-Key`, counts the rate limit, locks both
/// fighters, counts the pair, creates the battle, spends the energy, records the sides, stores
/// the answer under the key), without committing. A replay is answered with nothing written.
pub async fn start(tx: &mut Tx, state: &AppState, ask: &Ask) -> ApiResult<Started> {
    let Ask {
        player,
        key,
        body,
        opponent_id,
        limit_counted,
    } = ask;
    let now = state.clock.now_ms();
    let request = idempotency::Request::new(&player.id, key, "POST /api/v1/battles", body);
    if let Some(replay) = request.claim(tx, now).await? {
        return Ok((replay, None));
    }
    if !limit_counted {
        player.limit(state, Bucket::Battles).await?;
    }
    // Lock both fighters in id order (shared), so deletes wait and nothing deadlocks.
    let ids = [body.character_id.as_str(), opponent_id.as_str()];
    let locked: Vec<CharacterView> =
        store::lock_all(tx, state.db.dialect, &ids, Lock::Share).await?;
    let (mine, opponent) = fighters_of(&locked, ask)?;
    super::pairs::count(
        tx,
        &player.id,
        &opponent.player_id,
        state.game.battles_per_opponent_per_day,
        now,
    )
    .await?;
    let fighters = [mine.fighter(), opponent.fighter()];
    let prompt = hero_engine::request_prompt(&fighters);
    let battle_id = battle_store::insert(
        tx,
        &NewBattle {
            fighters: &fighters,
            seed: battle_store::random_seed(),
            prompt: &prompt,
            created_by: Some(&player.id),
        },
        now,
    )
    .await?;
    let cost = state.game.battle_energy_cost;
    let change = Change {
        player: &player.id,
        resource: Resource::Energy,
        delta: -cost,
        reason: "battle",
        reference: Some(&battle_id),
    };
    let energy_left = state.game.ledger.apply(tx, change, now).await?;
    super::store::insert_sides(tx, &battle_id, [&mine, &opponent], cost, now).await?;
    tracing::debug!(battle.id = %battle_id, player.id = %player.id, "player battle created");
    let (started, announce) = answer(
        ask,
        (&mine, &opponent),
        battle_id,
        crate::battles::Status::Pending,
        &fighters,
        cost,
        energy_left,
    );
    let response = request.store(tx, StatusCode::ACCEPTED, &started).await?;
    Ok((response, Some(announce)))
}

/// The player's character and the opponent among the `locked` characters, or why the battle
/// cannot be.
pub fn fighters_of(
    locked: &[CharacterView],
    ask: &Ask,
) -> ApiResult<(CharacterView, CharacterView)> {
    let take = |id: &str| locked.iter().find(|c| c.id == id).cloned();
    let mine = take(&ask.body.character_id)
        .filter(|c| c.player_id == ask.player.id)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "you have no character with id {}",
                ask.body.character_id
            ))
        })?;
    let opponent = take(&ask.opponent_id)
        .ok_or_else(|| ApiError::NotFound(format!("no character with id {}", ask.opponent_id)))?;
    if opponent.player_id == ask.player.id {
        return Err(ApiError::Unprocessable(
            "you cannot fight your own character; pick another player's".into(),
        ));
    }
    Ok((mine, opponent))
}

/// What the player is told, and what the live `created` event says; `status` is the one the
/// battle was inserted with.
pub fn answer(
    ask: &Ask,
    (mine, opponent): (&CharacterView, &CharacterView),
    battle_id: String,
    status: crate::battles::Status,
    fighters: &[hero_protocol::Fighter],
    cost: i64,
    energy_left: i64,
) -> (BattleStarted, Announce) {
    let mut players = vec![ask.player.id.clone(), opponent.player_id.clone()];
    players.sort();
    let announce = Announce {
        battle_id: battle_id.clone(),
        status,
        fighters: fighters.to_vec(),
        route: Route {
            players,
            ladder: false,
        },
    };
    let started = BattleStarted {
        battle_id,
        status,
        character_id: mine.id.clone(),
        opponent: Opponent {
            character_id: opponent.id.clone(),
            name: opponent.name.clone(),
            rarity: opponent.rarity,
            level: opponent.level,
            rating: opponent.rating,
        },
        energy_spent: cost,
        energy_left,
    };
    (started, announce)
}
