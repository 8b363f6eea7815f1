//! The player's own profile (`GET /api/v1/players/me`), the one-time nickname change
//! (`PATCH /api/v1/players/me`) and the player's ledger (`GET /api/v1/players/me/ledger`).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::CurrentPlayer;
use crate::auth::store::{self as accounts, PlayerView};
use crate::http::error::ApiResult;
use crate::http::openapi::ErrorResponse;
use crate::http::paging::{ApiQuery, Page, PageQuery};
use crate::http::{ApiError, ApiJson};
use crate::ledger::history::{self, LedgerEntry};
use crate::state::AppState;

pub const NICKNAME_MAX_CHARS: usize = 32;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me, rename))
        .routes(routes!(ledger))
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
    accounts::load(
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

/// Names of the house's own accounts (the ladder's bookmaker): no player takes them.
const RESERVED_NICKNAMES: [&str; 1] = ["The House"];

/// Whether `nickname` reads as one of [`RESERVED_NICKNAMES`]: compared case-folded, with
/// spaces, `-` and `_` runs as one space.
fn is_reserved(nickname: &str) -> bool {
    let plain = |s: &str| {
        accounts::nickname_key(s)
            .split(|c: char| c.is_whitespace() || c == '-' || c == '_')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    RESERVED_NICKNAMES
        .iter()
        .any(|r| plain(r) == plain(nickname))
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
    if is_reserved(nickname) {
        return Err(ApiError::Conflict(format!(
            "nickname {nickname:?} is taken"
        )));
    }
    let now = state.clock.now_ms();
    let mut tx = state.db.begin_write().await?;
    let changed = accounts::rename_once(&mut tx, &player.id, nickname)
        .await
        .map_err(|e| {
            if crate::db::is_unique_violation(&e) {
                ApiError::Conflict(format!("nickname {nickname:?} is taken"))
            } else {
                ApiError::Database(e)
            }
        })?;
    if !changed {
        return Err(ApiError::Conflict(
            "the nickname can be changed only once".into(),
        ));
    }
    let view = accounts::load(&mut *tx, &player.id, state.game.ledger.energy_regen_ms, now).await?;
    tx.commit().await?;
    view.map(Json)
        .ok_or_else(|| ApiError::NotFound("no such player".into()))
}

#[utoipa::path(
    get, path = "/api/v1/players/me/ledger", tag = "players",
    params(PageQuery),
    responses(
        (status = 200, description = "Ledger entries, newest first", body = Page<LedgerEntry>),
        (status = 401, description = "No valid access token", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn ledger(
    State(state): State<AppState>,
    player: CurrentPlayer,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<LedgerEntry>>> {
    Ok(Json(history::page(&state.db, &player.id, &page).await?))
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
}
