//! What the battle code calls to tell the hub what happens: one [`BattleFeed`] per settling
//! attempt, made only when someone listens, numbering its events within the attempt.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::consensus::{RoundWatcher, Verdict, Vote};
use crate::db::Db;
use crate::events::hub::{ATTEMPT_SPAN, CREATED_ID, Event, Hub, Kind};

/// The events of one attempt at settling one battle.
#[derive(Clone)]
pub struct BattleFeed {
    hub: Arc<Hub>,
    battle_id: Arc<str>,
    next: Arc<AtomicU64>,
    base: u64,
    route: Arc<Route>,
}

/// Who else sees a battle's events besides its own subscribers.
#[derive(Debug, Default, Clone)]
pub struct Route {
    pub players: Vec<String>,
    pub ladder: bool,
}

impl Route {
    /// The players of a player battle and whether it is a ladder battle.
    pub async fn of(db: &Db, battle_id: &str) -> Result<Route, sqlx::Error> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT player_id, 0 FROM game_battles WHERE battle_id = $1 \
             UNION ALL SELECT red_player_id, 1 FROM scheduled_battles WHERE battle_id = $1 \
             UNION ALL SELECT blue_player_id, 1 FROM scheduled_battles WHERE battle_id = $1",
        )
        .bind(battle_id)
        .fetch_all(&db.pool)
        .await?;
        let ladder = rows.iter().any(|(_, ladder)| *ladder == 1);
        let mut players: Vec<String> = rows.into_iter().map(|(p, _)| p).collect();
        players.sort();
        players.dedup();
        Ok(Route { players, ladder })
    }
}

impl BattleFeed {
    /// A feed for `attempt` of `battle_id`. Each event is built only when someone listens at
    /// that moment (a viewer who arrives mid-battle sees the rest of it live); who else sees
    /// the battle (its players, the ladder) is looked up only when someone listens at the
    /// start.
    pub async fn open(hub: &Arc<Hub>, db: &Db, battle_id: &str, attempt: i64) -> Option<Self> {
        let route = if hub.wanted() {
            Route::of(db, battle_id).await.unwrap_or_else(|e| {
                tracing::debug!(error = %e, "no event routing for the battle");
                Route::default()
            })
        } else {
            Route::default()
        };
        let base = u64::try_from(attempt.max(1)).unwrap_or(1) * ATTEMPT_SPAN;
        Some(BattleFeed {
            hub: Arc::clone(hub),
            battle_id: battle_id.into(),
            next: Arc::new(AtomicU64::new(1)),
            base,
            route: Arc::new(route),
        })
    }

    fn emit(&self, kind: Kind, data: Value) {
        self.emit_to(kind, data, None);
    }

    /// `owner`: an event only that player (and the admin) may see.
    fn emit_to(&self, kind: Kind, data: Value, owner: Option<String>) {
        let id = if kind == Kind::End {
            self.base + ATTEMPT_SPAN - 1
        } else {
            self.base
                + self
                    .next
                    .fetch_add(1, Ordering::Relaxed)
                    .min(ATTEMPT_SPAN - 2)
        };
        self.hub.publish(Event {
            battle_id: self.battle_id.to_string(),
            id,
            kind,
            players: self.route.players.clone(),
            ladder: self.route.ladder,
            owner,
            data,
        });
    }

    /// The verdict as written, each vote marked agreeing or not; then the rewards of a
    /// player battle. [`BattleFeed::end`] follows once the late votes are in.
    pub async fn settled(&self, db: &Db, verdict: &Verdict, votes: &[Vote]) {
        if !self.listened() {
            return;
        }
        let winner = verdict.winner();
        let settled_by = super::SettledBy::of(verdict).map(super::SettledBy::as_str);
        let (status, engine, error) = match verdict {
            Verdict::Quorum { .. } => ("COMPLETED", None, None),
            Verdict::Fallback { engine, reason, .. } => {
                ("COMPLETED", Some(engine.as_str()), Some(reason.as_str()))
            }
            Verdict::Error(e) => ("ERROR", None, Some(e.as_str())),
        };
        let votes: Vec<Value> = votes
            .iter()
            .map(|v| {
                json!({
                    "node_id": v.node_id,
                    "valid": v.valid,
                    "voted_winner_id": v.winner,
                    "agrees": v.valid_winner().is_some() && v.valid_winner() == winner,
                    "error": v.error,
                })
            })
            .collect();
        self.emit(
            Kind::Verdict,
            json!({
                "battle_id": &*self.battle_id,
                "status": status,
                "settled_by": settled_by,
                "winner_id": winner,
                "fallback_engine": engine,
                "error": error,
                "votes": votes,
            }),
        );
        if !self.route.players.is_empty() {
            match rewards(db, &self.battle_id).await {
                Ok(rewards) => {
                    for (player, reward) in rewards {
                        self.emit_to(Kind::Rewards, reward, Some(player));
                    }
                }
                Err(e) => tracing::debug!(error = %e, "rewards of the battle not read"),
            }
        }
    }

    /// No more events: the verdict is out and every call of the round has ended.
    pub fn end(&self) {
        if !self.listened() {
            return;
        }
        self.emit(Kind::End, json!({"battle_id": &*self.battle_id}));
    }
}

impl RoundWatcher for BattleFeed {
    fn listened(&self) -> bool {
        self.hub.wanted()
    }

    fn node_selected(&self, node_id: &str, node_name: &str, role: &str) {
        if !self.listened() {
            return;
        }
        self.emit(
            Kind::NodeSelected,
            json!({"battle_id": &*self.battle_id, "node_id": node_id, "node_name": node_name, "role": role}),
        );
    }

    /// A vote arrived. Before the verdict (`late` false) it says who answered and whether
    /// the answer is valid, never what it says: a node on probation could otherwise copy
    /// the leading winner. The `verdict` event tells every vote's winner; late votes (after
    /// the verdict) tell theirs at once.
    fn vote(&self, vote: &Vote, node_name: &str, late: bool) {
        if !self.listened() {
            return;
        }
        let (winner, error) = if late {
            (vote.winner.as_deref(), vote.error.as_deref())
        } else {
            (None, None)
        };
        self.emit(
            Kind::Vote,
            json!({
                "battle_id": &*self.battle_id,
                "node_id": vote.node_id,
                "node_name": node_name,
                "role": vote.role.as_str(),
                "valid": vote.valid,
                "voted_winner_id": winner,
                "response_time_ms": vote.latency_ms,
                "error": error,
                "late": late,
            }),
        );
    }
}

/// What each player of a settled player battle earned, from its ledger entries.
async fn rewards(db: &Db, battle_id: &str) -> Result<Vec<(String, Value)>, sqlx::Error> {
    use sqlx::Row;
    let sides = sqlx::query(
        "SELECT player_id, character_id, outcome FROM game_battles WHERE battle_id = $1 \
         ORDER BY player_id",
    )
    .bind(battle_id)
    .fetch_all(&db.pool)
    .await?;
    let credits = sqlx::query(
        "SELECT player_id, resource, CAST(SUM(delta) AS BIGINT) AS delta FROM ledger \
         WHERE reference = $1 AND delta > 0 GROUP BY player_id, resource",
    )
    .bind(battle_id)
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::new();
    for side in sides {
        let player: String = side.try_get("player_id")?;
        let earned = |resource: &str| -> i64 {
            credits
                .iter()
                .filter(|c| {
                    c.try_get::<String, _>("player_id").ok().as_deref() == Some(player.as_str())
                        && c.try_get::<String, _>("resource").ok().as_deref() == Some(resource)
                })
                .filter_map(|c| c.try_get::<i64, _>("delta").ok())
                .sum()
        };
        out.push((
            player.clone(),
            json!({
                "battle_id": battle_id,
                "player_id": player,
                "character_id": side.try_get::<String, _>("character_id")?,
                "outcome": side.try_get::<Option<String>, _>("outcome")?,
                "gold": earned("gold"),
                "exp_potion": earned("exp_potion"),
            }),
        ));
    }
    Ok(out)
}

/// `created`, published by whoever created the battle once it is committed; `status` is the
/// one it was committed with (RUNNING when it was handed off to this replica's worker).
pub fn created(
    hub: &Hub,
    battle_id: &str,
    status: crate::battles::Status,
    fighters: &[hero_protocol::Fighter],
    route: Route,
) {
    if !hub.wanted() {
        return;
    }
    let fighters: Vec<Value> = fighters
        .iter()
        .map(|f| json!({"id": f.id, "name": f.name}))
        .collect();
    hub.publish(Event {
        battle_id: battle_id.to_owned(),
        id: CREATED_ID,
        kind: Kind::Created,
        players: route.players,
        ladder: route.ladder,
        owner: None,
        data: json!({"battle_id": battle_id, "status": status.as_str(), "fighters": fighters}),
    });
}

/// A battle to announce with `created` once the transaction that made it commits.
#[derive(Debug, Clone)]
pub struct Announce {
    pub battle_id: String,
    pub status: crate::battles::Status,
    pub fighters: Vec<hero_protocol::Fighter>,
    pub route: Route,
}

impl Announce {
    pub fn publish(self, hub: &Hub) {
        created(
            hub,
            &self.battle_id,
            self.status,
            &self.fighters,
            self.route,
        );
    }
}
