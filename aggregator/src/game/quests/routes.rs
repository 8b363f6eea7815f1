//! `GET /api/v1/quests` (today's board) and `POST /api/v1/quests/{id}/claim`.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;

use super::store::{self, QuestBoard, QuestView};
use super::{day_of, resets_at};
use crate::auth::CurrentPlayer;
use crate::http::ApiError;
use crate::http::error::ApiResult;
use crate::http::openapi::ErrorResponse;
use crate::ledger::{Change, Resource};
use crate::state::AppState;

#[utoipa::path(
    get, path = "/api/v1/quests", tag = "quests",
    responses((status = 200, description = "Today's quests with the player's progress", body = QuestBoard)),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    player: CurrentPlayer,
) -> ApiResult<Json<QuestBoard>> {
    let now = state.clock.now_ms();
    let quests = store::board(&state.db, &player.id, day_of(now)).await?;
    Ok(Json(QuestBoard {
        day: day_of(now),
        resets_at_ms: resets_at(now),
        quests,
    }))
}

/// A claimed reward.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QuestClaimed {
    pub quest: QuestView,
    /// The rewarded resource's balance after the reward.
    pub balance_after: i64,
}

#[utoipa::path(
    post, path = "/api/v1/quests/{id}/claim", tag = "quests",
    params(("id" = String, Path, description = "Quest id")),
    responses(
        (status = 200, description = "Reward paid through the ledger", body = QuestClaimed),
        (status = 404, description = "No such quest", body = ErrorResponse),
        (status = 409, description = "Not complete yet, or already claimed today", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn claim(
    State(state): State<AppState>,
    player: CurrentPlayer,
    Path(id): Path<String>,
) -> ApiResult<Json<QuestClaimed>> {
    let now = state.clock.now_ms();
    let day = day_of(now);
    let mut tx = state.db.begin_write().await?;
    let quest = store::find(&mut tx, &player.id, day, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no quest with id {id}")))?;
    if quest.claimed {
        return Err(ApiError::Conflict(
            "this quest was already claimed today".into(),
        ));
    }
    if !quest.completed {
        return Err(ApiError::Conflict(format!(
            "quest not complete yet ({}/{})",
            quest.progress, quest.target
        )));
    }
    if !store::mark_claimed(&mut tx, &player.id, &quest, day, now).await? {
        return Err(ApiError::Conflict(
            "this quest was already claimed today".into(),
        ));
    }
    let resource = Resource::parse(&quest.reward.resource)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("quest {id} has an unknown reward")))?;
    let reference = format!("{id}@{day}");
    let balance_after = state
        .game
        .ledger
        .credit(
            &mut tx,
            Change {
                player: &player.id,
                resource,
                delta: quest.reward.amount,
                reason: "quest_reward",
                reference: Some(&reference),
            },
            now,
        )
        .await?;
    tx.commit().await?;
    Ok(Json(QuestClaimed {
        quest: QuestView {
            claimed: true,
            ..quest
        },
        balance_after,
    }))
}
