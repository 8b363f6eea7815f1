//! Bets settled inside the verdict's transaction (or the void of a battle that never ran):
//! each bet's fate is written, each player is credited once (in player id order, the lock
//! order) and the house is debited what it pays, last. Guarded by the scheduled battle's
//! status, so a battle's bets settle exactly once.

use super::payout::{self, Fate, Settlement, Stake};
use super::{HOUSE, Side};
use crate::db::Tx;
use crate::ladder::Ladder;
use crate::ladder::scheduled::ScheduledBattle;
use crate::ledger::{Change, Resource};

async fn open_stakes(tx: &mut Tx, scheduled: &str) -> Result<Vec<Stake>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, player_id, side, amount FROM bets \
         WHERE scheduled_battle_id = $1 AND status = 'open' ORDER BY player_id, id",
    )
    .bind(scheduled)
    .fetch_all(&mut **tx)
    .await
}

/// Pays the bets of a battle `winner` won by quorum.
pub async fn pay(
    tx: &mut Tx,
    ladder: &Ladder,
    s: &ScheduledBattle,
    winner: Side,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let stakes = open_stakes(tx, &s.id).await?;
    let settlement = payout::settle(&stakes, winner, ladder.args.house_cut_bp);
    let reason = settlement
        .no_contest
        .then_some("one side had no stakes: no contest, stakes refunded");
    write(
        tx,
        ladder,
        s,
        &stakes,
        &settlement,
        Some(winner),
        reason,
        now_ms,
    )
    .await
}

/// Refunds every stake of a battle that was settled without a quorum (`winner` known) or
/// not at all.
pub async fn refund(
    tx: &mut Tx,
    ladder: &Ladder,
    s: &ScheduledBattle,
    winner: Option<Side>,
    reason: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let stakes = open_stakes(tx, &s.id).await?;
    let settlement = payout::refund(&stakes);
    write(
        tx,
        ladder,
        s,
        &stakes,
        &settlement,
        winner,
        Some(reason),
        now_ms,
    )
    .await
}

/// Voids a battle: no winner, every stake refunded.
pub async fn void(
    tx: &mut Tx,
    ladder: &Ladder,
    s: &ScheduledBattle,
    reason: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    refund(tx, ladder, s, None, reason, now_ms).await
}

/// Voids the season's battles that have not started (the season closed).
pub async fn void_unstarted(
    tx: &mut Tx,
    ladder: &Ladder,
    season: &str,
    now_ms: i64,
) -> Result<usize, sqlx::Error> {
    let dialect = ladder.ledger.dialect;
    let unstarted: Vec<ScheduledBattle> = sqlx::query_as(&format!(
        "SELECT {} FROM scheduled_battles WHERE season_id = $1 AND status = 'scheduled' \
         ORDER BY id{}",
        crate::ladder::scheduled::COLUMNS,
        dialect.lock(crate::db::Lock::Update)
    ))
    .bind(season)
    .fetch_all(&mut **tx)
    .await?;
    for s in &unstarted {
        void(
            tx,
            ladder,
            s,
            "the season closed before the battle started",
            now_ms,
        )
        .await?;
    }
    Ok(unstarted.len())
}

#[allow(clippy::too_many_arguments)]
async fn write(
    tx: &mut Tx,
    ladder: &Ladder,
    s: &ScheduledBattle,
    stakes: &[Stake],
    settlement: &Settlement,
    winner: Option<Side>,
    reason: Option<&str>,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let status = if winner.is_some() { "settled" } else { "void" };
    let updated = sqlx::query(
        "UPDATE scheduled_battles SET status = $2, winner_side = $3, house_take = $4, \
             void_reason = $5, settled_at_ms = $6 \
         WHERE id = $1 AND status IN ('scheduled', 'running')",
    )
    .bind(&s.id)
    .bind(status)
    .bind(winner.map(Side::as_str))
    .bind(settlement.house_take)
    .bind(reason)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() != 1 {
        // Settled by someone else first: nothing more to do.
        return Ok(());
    }
    let mut credits: Vec<(&str, i64)> = Vec::new();
    for (stake, (fate, paid)) in stakes.iter().zip(&settlement.bets) {
        sqlx::query(
            "UPDATE bets SET status = $2, payout = $3, settled_at_ms = $4 \
             WHERE id = $1 AND status = 'open'",
        )
        .bind(&stake.id)
        .bind(fate.as_str())
        .bind(*paid)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
        if *paid > 0 {
            match credits.last_mut() {
                Some((player, total)) if *player == stake.player_id => *total += paid,
                _ => credits.push((&stake.player_id, *paid)),
            }
        }
    }
    let refunded = settlement.bets.iter().any(|(f, _)| *f == Fate::Refunded);
    let (credit_reason, debit_reason) = if refunded {
        ("bet_refund", "bet_refunds")
    } else {
        ("bet_payout", "bet_payouts")
    };
    // `stakes` come in player id order, so the credits do too; the house sorts last.
    let mut total = 0;
    for (player, amount) in credits {
        total += amount;
        ladder
            .ledger
            .credit(
                tx,
                Change {
                    player,
                    resource: Resource::Gold,
                    delta: amount,
                    reason: credit_reason,
                    reference: Some(&s.id),
                },
                now_ms,
            )
            .await?;
    }
    if total > 0 {
        ladder
            .ledger
            .apply(
                tx,
                Change {
                    player: HOUSE,
                    resource: Resource::Gold,
                    delta: -total,
                    reason: debit_reason,
                    reference: Some(&s.id),
                },
                now_ms,
            )
            .await
            .map_err(|e| sqlx::Error::Protocol(format!("the house cannot pay {total}: {e}")))?;
    }
    tracing::debug!(scheduled.id = %s.id, status, paid = total, house_take = settlement.house_take,
        "bets settled");
    Ok(())
}
