//! `GET /api/v1/battles/{id}/replay`: the battle log grouped round by round, with every vote.
//! Battles are public, like `GET /api/v1/battles/{id}`: anyone may watch a replay.

use axum::Json;
use axum::extract::{Path, State};
use hero_protocol::{BattleLogEntry, Fighter};
use serde::Serialize;
use utoipa::ToSchema;

use crate::battles::store::{self, VoteView};
use crate::http::ApiError;
use crate::http::error::ApiResult;
use crate::http::openapi::ErrorResponse;
use crate::state::AppState;

/// The actions of one round, in order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReplayRound {
    pub round: u32,
    /// Log entries: round, actor, target, action, damage, target_hp, text.
    #[schema(value_type = Vec<Object>)]
    pub entries: Vec<BattleLogEntry>,
}

/// A battle ready to be watched.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Replay {
    pub battle_id: String,
    pub status: String,
    /// The fighters as they were when the battle was created.
    #[schema(value_type = Vec<Object>)]
    pub fighters: Vec<Fighter>,
    pub winner_id: Option<String>,
    /// `quorum` or `fallback`.
    pub settled_by: Option<String>,
    pub description: Option<String>,
    pub rounds: Vec<ReplayRound>,
    /// Every node's vote, valid or not.
    #[schema(value_type = Vec<Object>)]
    pub votes: Vec<VoteView>,
}

/// Groups consecutive log entries by their round number.
pub fn rounds(log: Vec<BattleLogEntry>) -> Vec<ReplayRound> {
    let mut out: Vec<ReplayRound> = Vec::new();
    for entry in log {
        match out.last_mut() {
            Some(last) if last.round == entry.round => last.entries.push(entry),
            _ => out.push(ReplayRound {
                round: entry.round,
                entries: vec![entry],
            }),
        }
    }
    out
}

#[utoipa::path(
    get, path = "/api/v1/battles/{id}/replay", tag = "battles",
    params(("id" = String, Path, description = "Battle id")),
    responses(
        (status = 200, description = "Rounds and votes (empty rounds until the battle settles)", body = Replay),
        (status = 404, description = "No such battle", body = ErrorResponse),
    )
)]
pub async fn replay(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Replay>> {
    let battle = store::get(&state.db, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no battle with id {id}")))?;
    Ok(Json(Replay {
        battle_id: battle.id,
        status: battle.status,
        fighters: battle.fighters,
        winner_id: battle.winner_id,
        settled_by: battle.settled_by,
        description: battle.battle_description,
        rounds: rounds(battle.battle_log),
        votes: battle.votes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(round: u32, actor: &str) -> BattleLogEntry {
        BattleLogEntry {
            round,
            actor: actor.into(),
            ..Default::default()
        }
    }

    #[test]
    fn entries_are_grouped_by_round_in_order() {
        let grouped = rounds(vec![
            entry(1, "a"),
            entry(1, "b"),
            entry(2, "a"),
            entry(3, "b"),
        ]);
        let shape: Vec<(u32, usize)> = grouped.iter().map(|r| (r.round, r.entries.len())).collect();
        assert_eq!(shape, vec![(1, 2), (2, 1), (3, 1)]);
        assert_eq!(grouped[0].entries[1].actor, "b");
        assert!(rounds(Vec::new()).is_empty());
    }
}
