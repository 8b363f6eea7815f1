//! `/api/v1/characters/...`: list, get, rename, delete, upgrade and battle history of the
//! player's own characters. Another player's character answers 404, as if it did not exist.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::odds;
use super::store::{self, COLUMNS, CharacterView, Lock};
use crate::auth::CurrentPlayer;
use crate::game::battles::{self, BattleSummary};
use crate::game::quests::{self, QuestKind};
use crate::http::error::ApiResult;
use crate::http::idempotency::{self, IdempotencyKey};
use crate::http::keyset::{Key, ListQuery};
use crate::http::openapi::ErrorResponse;
use crate::http::paging::{self, ApiQuery, Page, PageQuery};
use crate::http::spend::spend;
use crate::http::{ApiError, ApiJson};
use crate::ledger::{Change, Resource};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, super::summon::summon))
        .routes(routes!(show, rename, remove))
        .routes(routes!(upgrade))
        .routes(routes!(history))
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("you have no character with id {id}"))
}

#[utoipa::path(
    get, path = "/api/v1/characters", tag = "characters",
    params(PageQuery),
    responses((status = 200, description = "The player's characters, newest first", body = Page<CharacterView>)),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    player: CurrentPlayer,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<CharacterView>>> {
    let limit = page.limit()?;
    let select = format!("SELECT {COLUMNS} FROM characters");
    let list = ListQuery {
        select: &select,
        filters: &[("player_id", &player.id)],
        keys: &[Key::desc_int("created_at_ms"), Key::desc_text("id")],
    };
    let (rows, _) = list.page(&state.db, &page, 2).await?;
    let items = rows
        .iter()
        .map(CharacterView::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(Page::from_rows(items, limit, |c| {
        paging::cursor(&[&c.created_at_ms.to_string(), &c.id])
    })))
}

#[utoipa::path(
    get, path = "/api/v1/characters/{id}", tag = "characters",
    params(("id" = String, Path, description = "Character id")),
    responses(
        (status = 200, description = "The character", body = CharacterView),
        (status = 404, description = "No such character of this player", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    player: CurrentPlayer,
    Path(id): Path<String>,
) -> ApiResult<Json<CharacterView>> {
    store::owned(&state.db.pool, &player.id, &id)
        .await?
        .map(Json)
        .ok_or_else(|| not_found(&id))
}

/// `PATCH /api/v1/characters/{id}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CharacterPatch {
    /// 2–50 letters (any script, CJK included), digits, spaces, `-` or `_`.
    pub name: String,
}

#[utoipa::path(
    patch, path = "/api/v1/characters/{id}", tag = "characters",
    params(("id" = String, Path, description = "Character id")),
    request_body = CharacterPatch,
    responses(
        (status = 200, description = "Renamed", body = CharacterView),
        (status = 404, description = "No such character of this player", body = ErrorResponse),
        (status = 422, description = "Name breaks the naming rules", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn rename(
    State(state): State<AppState>,
    player: CurrentPlayer,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<CharacterPatch>,
) -> ApiResult<Json<CharacterView>> {
    let name = patch.name.trim();
    if !hero_engine::CharacterText::is_valid_name(name) {
        return Err(ApiError::Unprocessable(
            "name must be 2-50 letters, digits, spaces, - or _".into(),
        ));
    }
    let now = state.clock.now_ms();
    let mut tx = state.db.begin_write().await?;
    if !store::rename(&mut tx, &player.id, &id, name, now).await? {
        return Err(not_found(&id));
    }
    let view = store::owned(&mut *tx, &player.id, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    tx.commit().await?;
    Ok(Json(view))
}

#[utoipa::path(
    delete, path = "/api/v1/characters/{id}", tag = "characters",
    params(("id" = String, Path, description = "Character id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such character of this player", body = ErrorResponse),
        (status = 409, description = "The character is in a battle that has not ended", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn remove(
    State(state): State<AppState>,
    player: CurrentPlayer,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let mut tx = state.db.begin_write().await?;
    let character = store::lock(&mut tx, state.db.dialect, &id, Lock::Delete).await?;
    if character.is_none_or(|c| c.player_id != player.id) {
        return Err(not_found(&id));
    }
    if store::in_unfinished_battle(&mut tx, &id).await? {
        return Err(ApiError::Conflict(
            "this character is in a battle that has not ended yet".into(),
        ));
    }
    store::delete(&mut tx, &player.id, &id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The upgrade request has no body; the route and character identify it for idempotency.
#[derive(Serialize)]
struct UpgradeFingerprint<'a> {
    character_id: &'a str,
}

#[utoipa::path(
    post, path = "/api/v1/characters/{id}/upgrade", tag = "characters",
    params(
        ("id" = String, Path, description = "Character id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response instead of charging twice"),
    ),
    responses(
        (status = 200, description = "One level up: costs 100×level gold and 20×level exp_potion; each stat +(2 + rarity)", body = CharacterView),
        (status = 404, description = "No such character of this player", body = ErrorResponse),
        (status = 409, description = "At the maximum level, or not enough gold / exp_potion", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn upgrade(
    State(state): State<AppState>,
    player: CurrentPlayer,
    key: IdempotencyKey,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let route = "POST /api/v1/characters/{id}/upgrade";
    let request = idempotency::Request::new(
        &player.id,
        &key,
        route,
        &UpgradeFingerprint { character_id: &id },
    );
    let now = state.clock.now_ms();
    let ledger = state.game.ledger;
    let (state, player, id) = (&state, &player, &id);
    spend(
        &state.db,
        &request,
        now,
        StatusCode::OK,
        || async { Ok(()) },
        |mut tx| async move {
            let character = store::lock(&mut tx, state.db.dialect, id, Lock::Update)
                .await?
                .filter(|c| c.player_id == player.id)
                .ok_or_else(|| not_found(id))?;
            if character.level >= odds::MAX_LEVEL {
                return Err(ApiError::Conflict(format!(
                    "already at the maximum level {}",
                    odds::MAX_LEVEL
                )));
            }
            let (gold, exp) = odds::upgrade_cost(character.level);
            quests::progress(&mut tx, &player.id, QuestKind::Upgrade, 1, now).await?;
            for (resource, cost) in [(Resource::Gold, gold), (Resource::ExpPotion, exp)] {
                let change = Change {
                    player: &player.id,
                    resource,
                    delta: -cost,
                    reason: "upgrade",
                    reference: Some(id),
                };
                ledger.apply(&mut tx, change, now).await?;
            }
            let gain = odds::stat_gain_per_level(character.rarity);
            if !store::level_up(&mut tx, id, character.level, gain, now).await? {
                return Err(ApiError::Conflict(
                    "the character changed meanwhile; try again".into(),
                ));
            }
            let view = store::owned(&mut *tx, &player.id, id)
                .await?
                .ok_or_else(|| not_found(id))?;
            Ok((tx, view))
        },
    )
    .await
}

#[utoipa::path(
    get, path = "/api/v1/characters/{id}/battles", tag = "characters",
    params(("id" = String, Path, description = "Character id"), PageQuery),
    responses(
        (status = 200, description = "The character's battles, newest first", body = Page<BattleSummary>),
        (status = 404, description = "No such character of this player", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn history(
    State(state): State<AppState>,
    player: CurrentPlayer,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<BattleSummary>>> {
    if store::owned(&state.db.pool, &player.id, &id)
        .await?
        .is_none()
    {
        return Err(not_found(&id));
    }
    battles::history::list(&state, battles::history::By::Character(&id), &page)
        .await
        .map(Json)
}
