//! [`LadderVerdicts`]: what a verdict changes for a ladder battle, in the verdict's own
//! transaction (the settlement port): rank points by Elo (K = 32) for both entries, then the
//! bets — paid from the pool after a quorum verdict, refunded after a fallback verdict or an
//! ERROR. The scheduled battle leaves `running` in the same transaction, so all of it happens
//! exactly once whatever retries, restarts or replicas do.

use sqlx::Row;

use super::scheduled::{self, ScheduledBattle};
use super::{Ladder, bets};
use crate::battles::{Settled, VerdictEffect};
use crate::consensus::Verdict;
use crate::db::{Dialect, Lock, Tx};
use crate::game::rewards::elo_gain;

pub struct LadderVerdicts {
    pub ladder: Ladder,
}

#[async_trait::async_trait]
impl VerdictEffect for LadderVerdicts {
    fn name(&self) -> &'static str {
        "ladder"
    }

    async fn apply(&self, tx: &mut Tx, settled: &Settled<'_>) -> Result<(), sqlx::Error> {
        // Only the ladder's own battles have a scheduled battle: the others need no lookup (a
        // batch of player verdicts would otherwise look once per battle).
        if settled.created_by != Some(super::CREATOR) {
            return Ok(());
        }
        let dialect = self.ladder.ledger.dialect;
        let Some(s) = scheduled::lock(tx, dialect, "battle_id", settled.battle_id).await? else {
            return Ok(());
        };
        if s.status != "running" {
            return Ok(());
        }
        let now = settled.now_ms;
        let winner_side = match settled.verdict.winner() {
            Some(w) if w == s.red_character_id => Some(bets::Side::Red),
            Some(w) if w == s.blue_character_id => Some(bets::Side::Blue),
            _ => None,
        };
        let Some(side) = winner_side else {
            return bets::settle::void(tx, &self.ladder, &s, "the battle ended in ERROR", now)
                .await;
        };
        move_points(tx, dialect, &s, side, now).await?;
        match settled.verdict {
            Verdict::Quorum { .. } => bets::settle::pay(tx, &self.ladder, &s, side, now).await,
            _ => {
                bets::settle::refund(
                    tx,
                    &self.ladder,
                    &s,
                    Some(side),
                    "settled by fallback, not by the nodes' quorum: stakes refunded",
                    now,
                )
                .await
            }
        }
    }
}

/// Elo on the two entries, when their season is still active. Rows are locked in player id
/// order (the lock order).
async fn move_points(
    tx: &mut Tx,
    dialect: Dialect,
    s: &ScheduledBattle,
    winner: bets::Side,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    // Shared lock: a close waits for this verdict, or this verdict sees the season closed.
    let active: Option<String> = sqlx::query_scalar(&format!(
        "SELECT status FROM seasons WHERE id = $1 AND status = 'active'{}",
        dialect.lock(Lock::Share)
    ))
    .bind(&s.season_id)
    .fetch_optional(&mut **tx)
    .await?;
    if active.is_none() {
        return Ok(());
    }
    let (w, l) = match winner {
        bets::Side::Red => (&s.red_player_id, &s.blue_player_id),
        bets::Side::Blue => (&s.blue_player_id, &s.red_player_id),
    };
    let mut players = [w, l];
    players.sort();
    let mut points = Vec::with_capacity(2);
    for player in players {
        let row = sqlx::query(&format!(
            "SELECT rank_points FROM ladder_ranks WHERE season_id = $1 AND player_id = $2{}",
            dialect.lock(Lock::Update)
        ))
        .bind(&s.season_id)
        .bind(player)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(row) = row {
            points.push((player, row.try_get::<i64, _>("rank_points")?));
        }
    }
    let of = |p: &String| points.iter().find(|(id, _)| *id == p).map(|(_, v)| *v);
    let (Some(wp), Some(lp)) = (of(w), of(l)) else {
        return Ok(());
    };
    let gain = elo_gain(wp, lp);
    let mut changes = [(w, gain, "wins"), (l, -gain, "losses")];
    changes.sort_by(|a, b| a.0.cmp(b.0));
    for (player, delta, column) in changes {
        sqlx::query(&format!(
            "UPDATE ladder_ranks SET rank_points = rank_points + $3, {column} = {column} + 1, \
                 last_battle_at_ms = $4, updated_at_ms = $4 \
             WHERE season_id = $1 AND player_id = $2"
        ))
        .bind(&s.season_id)
        .bind(player)
        .bind(delta)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
