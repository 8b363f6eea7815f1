//! Players: creation with the seed's starting resources, the profile (`GET /api/v1/players/me`)
//! and the one-time nickname change (`PATCH /api/v1/players/me`).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use super::energy;
use crate::auth::CurrentPlayer;
use crate::db::Tx;
use crate::http::error::ApiResult;
use crate::http::openapi::ErrorResponse;
use crate::http::{ApiError, ApiJson};
use crate::ledger::{Change, Ledger, Resource};
use crate::state::AppState;

/// What a new player starts with (the seed's defaults).
pub const STARTING_RESOURCES: [(Resource, i64); 5] = [
    (Resource::Gold, 1000),
    (Resource::Prompt, 10),
    (Resource::PromptPower, 5),
    (Resource::ExpPotion, 100),
    (Resource::Energy, 100),
];
pub const MAX_ENERGY: i64 = 100;
pub const NICKNAME_MAX_CHARS: usize = 32;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/players/me", get(me).patch(rename))
}

/// Creates a player with a generated nickname; the starting resources are ledger credits.
pub async fn create(
    tx: &mut Tx,
    ledger: &Ledger,
    login_method: &str,
    now_ms: i64,
) -> Result<String, sqlx::Error> {
    let id = uuid::Uuid::new_v4();
    let nickname = format!("Hero-{}", &id.simple().to_string()[..10]);
    let id = id.to_string();
    sqlx::query(
        "INSERT INTO players (id, nickname, nickname_key, login_method, gold, prompt, \
             prompt_power, exp_potion, energy, max_energy, energy_updated_at_ms, created_at_ms, \
             last_login_at_ms) VALUES ($1, $2, $3, $4, 0, 0, 0, 0, 0, $5, $6, $6, $6)",
    )
    .bind(&id)
    .bind(&nickname)
    .bind(nickname.to_lowercase())
    .bind(login_method)
    .bind(MAX_ENERGY)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    for (resource, amount) in STARTING_RESOURCES {
        let change = Change {
            player: &id,
            resource,
            delta: amount,
            reason: "signup",
            reference: None,
        };
        ledger.credit(tx, change, now_ms).await?;
    }
    Ok(id)
}

/// A player's own profile and balances.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlayerView {
    pub id: String,
    pub nickname: String,
    /// Whether the one allowed nickname change was used.
    pub nickname_changed: bool,
    pub login_method: String,
    pub gold: i64,
    pub prompt: i64,
    pub prompt_power: i64,
    pub exp_potion: i64,
    /// Energy now, regeneration included.
    pub energy: i64,
    pub max_energy: i64,
    /// When the next point of energy arrives (null at the maximum).
    pub next_energy_at_ms: Option<i64>,
    pub wins: i64,
    pub losses: i64,
    pub created_at_ms: i64,
}

/// Loads a player's profile, with energy regenerated up to `now_ms` (nothing is written).
pub async fn load<'e, E>(
    executor: E,
    id: &str,
    regen_ms: i64,
    now_ms: i64,
) -> Result<Option<PlayerView>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let Some(r) = sqlx::query(
        "SELECT id, nickname, nickname_changed, login_method, gold, prompt, prompt_power, \
             exp_potion, energy, max_energy, energy_updated_at_ms, wins, losses, created_at_ms \
         FROM players WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(executor)
    .await?
    else {
        return Ok(None);
    };
    let max: i64 = r.try_get("max_energy")?;
    let (energy, since) = energy::regenerate(
        r.try_get("energy")?,
        max,
        r.try_get("energy_updated_at_ms")?,
        now_ms,
        regen_ms,
    );
    Ok(Some(PlayerView {
        id: r.try_get("id")?,
        nickname: r.try_get("nickname")?,
        nickname_changed: r.try_get::<i64, _>("nickname_changed")? == 1,
        login_method: r.try_get("login_method")?,
        gold: r.try_get("gold")?,
        prompt: r.try_get("prompt")?,
        prompt_power: r.try_get("prompt_power")?,
        exp_potion: r.try_get("exp_potion")?,
        energy,
        max_energy: max,
        next_energy_at_ms: energy::next_point_at(energy, max, since, regen_ms),
        wins: r.try_get("wins")?,
        losses: r.try_get("losses")?,
        created_at_ms: r.try_get("created_at_ms")?,
    }))
}

#[utoipa::path(
    get, path = "/api/v1/players/me", tag = "players",
    responses(
        (status = 200, description = "The player's profile and balances", body = PlayerView),
        (status = 401, description = "No valid access token", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn me(
    State(state): State<AppState>,
    player: CurrentPlayer,
) -> ApiResult<Json<PlayerView>> {
    let ledger = state.game.ledger;
    load(
        &state.db.pool,
        &player.id,
        ledger.energy_regen_ms,
        state.clock.now_ms(),
    )
    .await?
    .map(Json)
    .ok_or_else(|| ApiError::NotFound("no such player".into()))
}

/// `PATCH /api/v1/players/me` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlayerPatch {
    /// 2–32 letters (any script), digits, spaces, `-` or `_`; unique regardless of case;
    /// can be changed once.
    pub nickname: String,
}

/// Whether `nickname` follows the naming rules (the character-name alphabet, 2–32 chars).
pub fn is_valid_nickname(nickname: &str) -> bool {
    nickname.chars().count() <= NICKNAME_MAX_CHARS
        && hero_engine::CharacterText::is_valid_name(nickname)
}

#[utoipa::path(
    patch, path = "/api/v1/players/me", tag = "players",
    request_body = PlayerPatch,
    responses(
        (status = 200, description = "Nickname changed", body = PlayerView),
        (status = 409, description = "Nickname taken, or already changed once", body = ErrorResponse),
        (status = 422, description = "Nickname breaks the naming rules", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn rename(
    State(state): State<AppState>,
    player: CurrentPlayer,
    ApiJson(patch): ApiJson<PlayerPatch>,
) -> ApiResult<Json<PlayerView>> {
    let nickname = patch.nickname.trim();
    if !is_valid_nickname(nickname) {
        return Err(ApiError::Unprocessable(format!(
            "nickname must be 2-{NICKNAME_MAX_CHARS} letters, digits, spaces, - or _"
        )));
    }
    let now = state.clock.now_ms();
    let mut tx = state.db.begin_write().await?;
    let updated = sqlx::query(
        "UPDATE players SET nickname = $2, nickname_key = $3, nickname_changed = 1 \
         WHERE id = $1 AND nickname_changed = 0",
    )
    .bind(&player.id)
    .bind(nickname)
    .bind(nickname.to_lowercase())
    .execute(&mut *tx)
    .await
    .map_err(|e| {
        if crate::db::is_unique_violation(&e) {
            ApiError::Conflict(format!("nickname {nickname:?} is taken"))
        } else {
            ApiError::Database(e)
        }
    })?;
    if updated.rows_affected() != 1 {
        return Err(ApiError::Conflict(
            "the nickname can be changed only once".into(),
        ));
    }
    let view = load(&mut *tx, &player.id, state.game.ledger.energy_regen_ms, now).await?;
    tx.commit().await?;
    view.map(Json)
        .ok_or_else(|| ApiError::NotFound("no such player".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicknames_follow_the_seed_rules() {
        for good in ["Li", "Night Owl", "玩家一号", "x_y-z"] {
            assert!(is_valid_nickname(good), "{good}");
        }
        let long = "n".repeat(33);
        for bad in ["A", "", "bob!", "<b>", long.as_str(), " pad"] {
            assert!(!is_valid_nickname(bad), "{bad:?}");
        }
    }

    #[test]
    fn starting_resources_are_the_seeds() {
        let total: Vec<i64> = STARTING_RESOURCES.iter().map(|(_, n)| *n).collect();
        assert_eq!(total, vec![1000, 10, 5, 100, 100]);
    }
}
