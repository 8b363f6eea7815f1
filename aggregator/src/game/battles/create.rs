//! `POST /api/v1/battles`: a player's character against a chosen or matched opponent.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::matchmaking;
use crate::auth::{Bucket, CurrentPlayer};
use crate::battles::store::{self as battle_store, NewBattle};
use crate::game::characters::store::{self, CharacterView, Lock};
use crate::http::error::ApiResult;
use crate::http::idempotency::{self, IdempotencyKey};
use crate::http::openapi::ErrorResponse;
use crate::http::spend::spend;
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
    let request = idempotency::Request::new(&player.id, &key, "POST /api/v1/battles", &body);
    let mine_missing = || {
        ApiError::NotFound(format!(
            "you have no character with id {}",
            body.character_id
        ))
    };
    let opponent_id = match &body.opponent_id {
        Some(id) => id.clone(),
        None => {
            let mine = store::owned(&state.db.pool, &player.id, &body.character_id)
                .await?
                .ok_or_else(mine_missing)?;
            matchmaking::find_opponent(
                &state.db,
                &player.id,
                mine.rating,
                state.game.battles_per_opponent_per_day,
                state.clock.now_ms(),
            )
            .await?
            .ok_or_else(|| {
                ApiError::Conflict("no opponent is available yet; try again later".into())
            })?
        }
    };
    if opponent_id == body.character_id {
        return Err(ApiError::Unprocessable(
            "a character cannot fight itself".into(),
        ));
    }
    let now = state.clock.now_ms();
    // What the live `created` event says, once the battle is committed.
    let created: std::sync::Mutex<Option<crate::battles::feed::Announce>> =
        std::sync::Mutex::default();
    let (state, player, body, opponent_id, created_ref) =
        (&state, &player, &body, &opponent_id, &created);
    let limit = || player.limit(state, Bucket::Battles);
    let response = spend(&state.db, &request, now, StatusCode::ACCEPTED, limit, |mut tx| async move {
        // Lock both fighters in id order (shared), so deletes wait and nothing deadlocks.
        let ids = [body.character_id.as_str(), opponent_id.as_str()];
        let locked: Vec<CharacterView> =
            store::lock_all(&mut tx, state.db.dialect, &ids, Lock::Share).await?;
        let take = |id: &str| locked.iter().find(|c| c.id == id).cloned();
        let mine = take(&body.character_id)
            .filter(|c| c.player_id == player.id)
            .ok_or_else(mine_missing)?;
        let opponent = take(opponent_id)
            .ok_or_else(|| ApiError::NotFound(format!("no character with id {opponent_id}")))?;
        if opponent.player_id == player.id {
            return Err(ApiError::Unprocessable(
                "you cannot fight your own character; pick another player's".into(),
            ));
        }
        super::pairs::count(
            &mut tx,
            &player.id,
            &opponent.player_id,
            state.game.battles_per_opponent_per_day,
            now,
        )
        .await?;
        let fighters = [mine.fighter(), opponent.fighter()];
        let prompt = hero_engine::request_prompt(&fighters);
        let battle_id = battle_store::insert(
            &mut tx,
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
        let energy_left = state.game.ledger.apply(&mut tx, change, now).await?;
        super::store::insert_sides(&mut tx, &battle_id, [&mine, &opponent], cost, now).await?;
        if let Ok(mut slot) = created_ref.lock() {
            let mut players = vec![player.id.clone(), opponent.player_id.clone()];
            players.sort();
            *slot = Some(crate::battles::feed::Announce {
                battle_id: battle_id.clone(),
                fighters: fighters.to_vec(),
                route: crate::battles::feed::Route {
                    players,
                    ladder: false,
                },
            });
        }
        tracing::debug!(battle.id = %battle_id, player.id = %player.id, "player battle created");
        let started = BattleStarted {
            battle_id,
            status: crate::battles::Status::Pending,
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
        Ok((tx, started))
    })
    .await?;
    // Announced before the worker wakes, so `created` comes before the battle's other events.
    if let Some(announce) = created.into_inner().ok().flatten() {
        announce.publish(&state.events.hub);
    }
    state.battle_wake.notify_one();
    Ok(response)
}
