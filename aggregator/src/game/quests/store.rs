//! Quest rows: the quests, and each player's progress and claims per UTC day.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::{QuestKind, day_of};
use crate::db::{Db, Tx};

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

/// Adds to today's progress of several players at once: `(player, kind, amount)`, each pair
/// of player and kind at most once, in one statement (rows in player and quest id order).
pub async fn progress_many(
    tx: &mut Tx,
    progress: &[(&str, QuestKind, i64)],
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    if progress.is_empty() {
        return Ok(());
    }
    let mut params = crate::db::Params::of(tx);
    let cte = crate::db::values_cte(
        &mut params,
        &[("pid", "TEXT"), ("kind", "TEXT"), ("n", "BIGINT")],
        progress.len(),
    );
    // `WHERE true` tells SQLite the `ON` that follows starts the upsert, not a join.
    let sql = format!(
        "{cte} INSERT INTO player_quests (player_id, quest_id, day, progress) \
         SELECT v.pid, q.id, {}, v.n FROM v JOIN quests q ON q.kind = v.kind \
         WHERE true ORDER BY v.pid, q.id \
         ON CONFLICT (player_id, quest_id, day) \
         DO UPDATE SET progress = player_quests.progress + excluded.progress",
        params.take()
    );
    let mut insert = crate::db::one_off(&sql);
    for (player, kind, amount) in progress {
        insert = insert.bind(*player).bind(kind.as_str()).bind(*amount);
    }
    insert.bind(day_of(now_ms)).execute(&mut **tx).await?;
    Ok(())
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

/// Every quest with `player`'s progress on `day`, in display order.
pub async fn board(db: &Db, player: &str, day: i64) -> Result<Vec<QuestView>, sqlx::Error> {
    sqlx::query(&format!("{QUEST_SELECT} ORDER BY q.sort_order"))
        .bind(player)
        .bind(day)
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(quest_from_row)
        .collect()
}

/// Quest `id` with `player`'s progress on `day`.
pub async fn find(
    tx: &mut Tx,
    player: &str,
    day: i64,
    id: &str,
) -> Result<Option<QuestView>, sqlx::Error> {
    sqlx::query(&format!("{QUEST_SELECT} WHERE q.id = $3"))
        .bind(player)
        .bind(day)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .as_ref()
        .map(quest_from_row)
        .transpose()
}

/// Marks the quest claimed for the day; false when it was claimed already or is not complete.
pub async fn mark_claimed(
    tx: &mut Tx,
    player: &str,
    quest: &QuestView,
    day: i64,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "UPDATE player_quests SET claimed_at_ms = $4 \
         WHERE player_id = $1 AND quest_id = $2 AND day = $3 AND claimed_at_ms IS NULL \
             AND progress >= $5",
    )
    .bind(player)
    .bind(&quest.id)
    .bind(day)
    .bind(now_ms)
    .bind(quest.target)
    .execute(&mut **tx)
    .await?;
    Ok(claimed.rows_affected() == 1)
}
