//! Where a client starts: the battle as `GET /api/v1/battles/{id}` shows it, or the events it
//! missed since its `Last-Event-ID` when this replica still holds them.

use std::sync::Arc;

use crate::battles::store::{self, BattleView};
use crate::db::Db;
use crate::events::hub::{ATTEMPT_SPAN, Event, Hub, Kind};

/// What a new or resuming subscription is sent first.
pub enum Start {
    /// The battle now, with the id to resume from after it; `settled` when nothing follows.
    Snapshot {
        view: Box<BattleView>,
        id: u64,
        settled: bool,
    },
    /// The events missed since the client's last one (possibly none).
    Missed(Vec<Arc<Event>>),
}

impl Start {
    /// Whether the battle's stream is over once this is sent.
    pub fn ends(&self) -> bool {
        match self {
            Start::Snapshot { settled, .. } => *settled,
            Start::Missed(events) => events.iter().any(|e| e.kind == Kind::End),
        }
    }
}

/// `None` when there is no such battle.
pub async fn start(
    hub: &Hub,
    db: &Db,
    battle_id: &str,
    after: Option<u64>,
) -> Result<Option<Start>, sqlx::Error> {
    if let Some(missed) = after.and_then(|a| hub.since(battle_id, a)) {
        return Ok(Some(Start::Missed(missed)));
    }
    snapshot(hub.last_id(battle_id), db, battle_id).await
}

/// The battle from the database, whatever this replica holds.
pub async fn start_fresh(db: &Db, battle_id: &str) -> Result<Option<Start>, sqlx::Error> {
    snapshot(None, db, battle_id).await
}

async fn snapshot(
    last_kept: Option<u64>,
    db: &Db,
    battle_id: &str,
) -> Result<Option<Start>, sqlx::Error> {
    let Some(view) = store::get(db, battle_id).await? else {
        return Ok(None);
    };
    let settled = view.status == "COMPLETED" || view.status == "ERROR";
    let attempts = u64::try_from(view.attempts.max(0)).unwrap_or(0);
    let id = if settled {
        attempts.max(1) * ATTEMPT_SPAN + ATTEMPT_SPAN - 1
    } else {
        last_kept.unwrap_or(attempts * ATTEMPT_SPAN)
    };
    Ok(Some(Start::Snapshot {
        view: Box::new(view),
        id,
        settled,
    }))
}

/// Whether the battle is settled (a light look, for streams that heard nothing for a while).
pub async fn settled(db: &Db, battle_id: &str) -> Result<bool, sqlx::Error> {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM battles WHERE id = $1")
        .bind(battle_id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(matches!(status.as_deref(), Some("COMPLETED" | "ERROR")))
}
