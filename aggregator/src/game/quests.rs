//! Daily quests (the seed's DailyQuest / PlayerDailyQuest): progress moved by game events,
//! claimed once per UTC day for a ledger reward. The day comes from the clock, so quests
//! "reset" at UTC midnight without any job: a new day simply has no progress rows yet.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::CurrentPlayer;
use crate::db::Tx;
use crate::http::ApiError;
use crate::http::error::ApiResult;
use crate::http::openapi::ErrorResponse;
use crate::ledger::{Change, Resource};
use crate::state::AppState;

pub const DAY_MS: i64 = 86_400_000;

/// A game event that moves quests of its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuestKind {
    /// A battle the player started was won.
    Win,
    /// A battle the player started was completed.
    Fight,
    Summon,
    Upgrade,
}

impl QuestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QuestKind::Win => "win",
            QuestKind::Fight => "fight",
            QuestKind::Summon => "summon",
            QuestKind::Upgrade => "upgrade",
        }
    }
}

/// The UTC day (days since the Unix epoch) of `now_ms`.
pub fn day_of(now_ms: i64) -> i64 {
    now_ms.div_euclid(DAY_MS)
}

/// When the quests of the day of `now_ms` reset: the next UTC midnight.
pub fn resets_at(now_ms: i64) -> i64 {
    (day_of(now_ms) + 1) * DAY_MS
}

/// Adds `amount` to today's progress of every quest of `kind` for `player`.
pub async fn progress(
    tx: &mut Tx,
    player: &str,
    kind: QuestKind,
    amount: i64,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO player_quests (player_id, quest_id, day, progress) \
         SELECT $1, id, $2, $3 FROM quests WHERE kind = $4 \
         ON CONFLICT (player_id, quest_id, day) \
         DO UPDATE SET progress = player_quests.progress + excluded.progress",
    )
    .bind(player)
    .bind(day_of(now_ms))
    .bind(amount)
    .bind(kind.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(claim))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QuestReward {
    pub resource: String,
    pub amount: i64,
}

/// One daily quest and the player's progress on it today.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QuestView {
    pub id: String,
    /// `win`, `fight`, `summon` or `upgrade`.
    pub kind: String,
    pub title: String,
    pub target: i64,
    /// Today's progress, at most `target`.
    pub progress: i64,
    pub completed: bool,
    pub claimed: bool,
    pub reward: QuestReward,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QuestBoard {
    /// UTC day, in days since 1970-01-01.
    pub day: i64,
    /// Next UTC midnight, when progress starts over.
    pub resets_at_ms: i64,
    pub quests: Vec<QuestView>,
}

const QUEST_SELECT: &str = "SELECT q.id, q.kind, q.title, q.target, q.reward_resource, \
         q.reward_amount, pq.progress, pq.claimed_at_ms \
     FROM quests q LEFT JOIN player_quests pq \
         ON pq.quest_id = q.id AND pq.player_id = $1 AND pq.day = $2";

fn quest_from_row(r: &AnyRow) -> Result<QuestView, sqlx::Error> {
    let target: i64 = r.try_get("target")?;
    let progress = r.try_get::<Option<i64>, _>("progress")?.unwrap_or(0);
    Ok(QuestView {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        title: r.try_get("title")?,
        target,
        progress: progress.min(target),
        completed: progress >= target,
        claimed: r.try_get::<Option<i64>, _>("claimed_at_ms")?.is_some(),
        reward: QuestReward {
            resource: r.try_get("reward_resource")?,
            amount: r.try_get("reward_amount")?,
        },
    })
}

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
    let quests = sqlx::query(&format!("{QUEST_SELECT} ORDER BY q.sort_order"))
        .bind(&player.id)
        .bind(day_of(now))
        .fetch_all(&state.db.pool)
        .await?
        .iter()
        .map(quest_from_row)
        .collect::<Result<Vec<_>, _>>()?;
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
    let quest = sqlx::query(&format!("{QUEST_SELECT} WHERE q.id = $3"))
        .bind(&player.id)
        .bind(day)
        .bind(&id)
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(quest_from_row)
        .transpose()?
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
    let claimed = sqlx::query(
        "UPDATE player_quests SET claimed_at_ms = $4 \
         WHERE player_id = $1 AND quest_id = $2 AND day = $3 AND claimed_at_ms IS NULL \
             AND progress >= $5",
    )
    .bind(&player.id)
    .bind(&id)
    .bind(day)
    .bind(now)
    .bind(quest.target)
    .execute(&mut *tx)
    .await?;
    if claimed.rows_affected() != 1 {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_turn_at_utc_midnight() {
        let midnight = 19_000 * DAY_MS;
        assert_eq!(day_of(midnight - 1), 18_999);
        assert_eq!(day_of(midnight), 19_000);
        assert_eq!(resets_at(midnight - 1), midnight);
        assert_eq!(resets_at(midnight), midnight + DAY_MS);
        // Before 1970 the day still turns at midnight, not at zero.
        assert_eq!(day_of(-1), -1);
    }
}
