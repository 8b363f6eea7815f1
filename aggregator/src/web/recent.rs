//! `GET /api/battles/recent`: the latest battles of the whole network with every node's vote,
//! and how the settled ones were settled (quorum or fallback). Read-only and public, like each
//! battle is; the operator view of the page shows it.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};

use crate::http::ApiError;
use crate::http::error::ApiResult;
use crate::http::paging::ApiQuery;
use crate::state::AppState;

/// Most battles of each list one answer holds.
pub const MAX_RECENT: i64 = 50;

/// `GET /api/battles/recent` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecentQuery {
    /// Battles per list, 1 to 50 (default 20).
    pub limit: Option<i64>,
}

/// One fighter of a battle, as the list shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecentFighter {
    pub id: String,
    pub name: String,
    pub rarity: u32,
}

/// One node's vote on a battle.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct BattleVoteSummary {
    #[serde(skip)]
    pub battle_id: String,
    pub node_id: String,
    pub node_name: Option<String>,
    /// `selected`, `replacement` or `shadow`.
    pub role: String,
    pub voted_winner_id: Option<String>,
    #[sqlx(try_from = "crate::db::Flag")]
    pub is_valid: bool,
    /// Whether a valid vote named the final winner (null for invalid votes).
    #[sqlx(try_from = "crate::db::MaybeFlag")]
    pub agrees: Option<bool>,
    pub response_time_ms: i64,
}

/// A battle with its votes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecentBattle {
    pub id: String,
    /// PENDING, RUNNING, COMPLETED or ERROR.
    pub status: String,
    /// Who started it: `player`, `ladder` or `admin` (null when unknown).
    pub origin: Option<String>,
    pub fighters: Vec<RecentFighter>,
    pub winner_id: Option<String>,
    /// `quorum` or `fallback` once settled.
    pub settled_by: Option<String>,
    pub fallback_engine: Option<String>,
    pub created_at_ms: i64,
    pub settled_at_ms: Option<i64>,
    pub votes: Vec<BattleVoteSummary>,
}

/// How the settled battles of the answer were settled.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SettledSummary {
    /// Settled battles in the answer.
    pub battles: u64,
    pub by_quorum: u64,
    pub by_fallback: u64,
    /// Battles that ended in ERROR.
    pub errors: u64,
    /// `by_fallback / (by_quorum + by_fallback)`; null when none has a verdict.
    pub fallback_rate: Option<f64>,
}

/// The latest battles.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecentBattles {
    /// Battles not settled yet (PENDING, RUNNING), newest first.
    pub in_flight: Vec<RecentBattle>,
    /// The latest settled battles (COMPLETED, ERROR), latest verdict first.
    pub settled: Vec<RecentBattle>,
    pub summary: SettledSummary,
}

const SELECT: &str = "SELECT id, status, fighters_json, winner_id, settled_by, fallback_engine, \
     created_by, created_at_ms, settled_at_ms FROM battles";

fn origin(created_by: Option<String>) -> Option<String> {
    let created_by = created_by?;
    Some(
        if created_by.starts_with("admin:") || created_by == "admin" {
            "admin"
        } else if created_by == crate::ladder::CREATOR {
            "ladder"
        } else {
            "player"
        }
        .to_owned(),
    )
}

fn battle(row: &sqlx::any::AnyRow) -> Result<RecentBattle, sqlx::Error> {
    let fighters: Vec<hero_protocol::Fighter> =
        serde_json::from_str(&row.try_get::<String, _>("fighters_json")?)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(RecentBattle {
        id: row.try_get("id")?,
        status: row.try_get("status")?,
        origin: origin(row.try_get("created_by")?),
        fighters: fighters
            .into_iter()
            .map(|f| RecentFighter {
                id: f.id,
                name: f.name,
                rarity: f.rarity,
            })
            .collect(),
        winner_id: row.try_get("winner_id")?,
        settled_by: row.try_get("settled_by")?,
        fallback_engine: row.try_get("fallback_engine")?,
        created_at_ms: row.try_get("created_at_ms")?,
        settled_at_ms: row.try_get("settled_at_ms")?,
        votes: Vec::new(),
    })
}

/// Fills in the votes of `battles` with one query.
async fn add_votes(state: &AppState, battles: &mut [RecentBattle]) -> Result<(), sqlx::Error> {
    if battles.is_empty() {
        return Ok(());
    }
    let placeholders: Vec<String> = (1..=battles.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT v.battle_id, v.node_id, n.name AS node_name, v.role, v.voted_winner_id, \
             v.is_valid, v.agrees, v.response_time_ms \
         FROM battle_votes v LEFT JOIN nodes n ON n.id = v.node_id \
         WHERE v.battle_id IN ({}) ORDER BY v.battle_id, v.created_at_ms, v.node_id",
        placeholders.join(", ")
    );
    let mut query = sqlx::query_as::<_, BattleVoteSummary>(&sql);
    for b in battles.iter() {
        query = query.bind(b.id.clone());
    }
    let votes = query.fetch_all(&state.db.pool).await?;
    let mut by_battle: HashMap<String, Vec<BattleVoteSummary>> = HashMap::new();
    for vote in votes {
        by_battle
            .entry(vote.battle_id.clone())
            .or_default()
            .push(vote);
    }
    for b in battles.iter_mut() {
        b.votes = by_battle.remove(&b.id).unwrap_or_default();
    }
    Ok(())
}

fn summary(settled: &[RecentBattle]) -> SettledSummary {
    let count = |f: &dyn Fn(&RecentBattle) -> bool| settled.iter().filter(|b| f(b)).count() as u64;
    let by_quorum = count(&|b| b.settled_by.as_deref() == Some("quorum"));
    let by_fallback = count(&|b| b.settled_by.as_deref() == Some("fallback"));
    let with_verdict = by_quorum + by_fallback;
    SettledSummary {
        battles: settled.len() as u64,
        by_quorum,
        by_fallback,
        errors: count(&|b| b.status == "ERROR"),
        fallback_rate: (with_verdict > 0).then(|| by_fallback as f64 / with_verdict as f64),
    }
}

/// The latest battles of the network with their votes, and how the settled ones were settled.
#[utoipa::path(
    get, path = "/api/battles/recent", tag = "battles",
    params(RecentQuery),
    responses(
        (status = 200, description = "Battles in flight and the latest settled ones, each with every node's vote; the quorum/fallback split of the settled ones", body = RecentBattles),
        (status = 422, description = "limit out of range", body = crate::http::openapi::ErrorResponse),
    )
)]
pub async fn recent(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<RecentQuery>,
) -> ApiResult<Json<RecentBattles>> {
    let limit = match query.limit {
        None => 20,
        Some(n) if (1..=MAX_RECENT).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::Unprocessable(format!(
                "limit must be between 1 and {MAX_RECENT}"
            )));
        }
    };
    // Both walk an index: (status, created_at_ms) and (settled_at_ms).
    let in_flight = sqlx::query(&format!(
        "{SELECT} WHERE status IN ('PENDING', 'RUNNING') ORDER BY created_at_ms DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(&state.db.pool)
    .await?;
    let settled = sqlx::query(&format!(
        "{SELECT} WHERE settled_at_ms IS NOT NULL ORDER BY settled_at_ms DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(&state.db.pool)
    .await?;
    let mut in_flight = in_flight
        .iter()
        .map(battle)
        .collect::<Result<Vec<_>, _>>()?;
    let mut settled = settled.iter().map(battle).collect::<Result<Vec<_>, _>>()?;
    add_votes(&state, &mut in_flight).await?;
    add_votes(&state, &mut settled).await?;
    Ok(Json(RecentBattles {
        summary: summary(&settled),
        in_flight,
        settled,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settled(status: &str, by: Option<&str>) -> RecentBattle {
        RecentBattle {
            id: "b".into(),
            status: status.into(),
            origin: None,
            fighters: Vec::new(),
            winner_id: None,
            settled_by: by.map(str::to_owned),
            fallback_engine: None,
            created_at_ms: 0,
            settled_at_ms: Some(1),
            votes: Vec::new(),
        }
    }

    #[test]
    fn the_fallback_rate_counts_verdicts_only() {
        let s = summary(&[
            settled("COMPLETED", Some("quorum")),
            settled("COMPLETED", Some("quorum")),
            settled("COMPLETED", Some("quorum")),
            settled("COMPLETED", Some("fallback")),
            settled("ERROR", None),
        ]);
        assert_eq!(
            (s.battles, s.by_quorum, s.by_fallback, s.errors),
            (5, 3, 1, 1)
        );
        assert_eq!(s.fallback_rate, Some(0.25));
        assert_eq!(summary(&[settled("ERROR", None)]).fallback_rate, None);
    }

    #[test]
    fn origins_name_no_one() {
        assert_eq!(origin(Some("admin:alice".into())).as_deref(), Some("admin"));
        assert_eq!(origin(Some("ladder".into())).as_deref(), Some("ladder"));
        assert_eq!(origin(Some("5cb84429".into())).as_deref(), Some("player"));
        assert_eq!(origin(None), None);
    }
}
