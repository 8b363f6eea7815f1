//! What a settled player battle changes, applied in the verdict's own transaction: win/loss
//! counts, ratings, rewards through the ledger and quest progress; an ERROR refunds the energy.
//! Battles without players (admin battles) change nothing.
//!
//! Rows are touched in one global order (characters, then quest rows, then players, each
//! sorted by id) so concurrent settlements and spends never deadlock on PostgreSQL.

use sqlx::Row;

use super::quests::{self, QuestKind};
use crate::consensus::Verdict;
use crate::db::Tx;
use crate::ledger::{Change, Ledger, Resource};

/// Paid to the owner of the winning character: (gold, exp_potion).
pub const WIN_REWARD: (i64, i64) = (50, 20);
/// Paid to the owner of the losing character: (gold, exp_potion).
pub const LOSS_REWARD: (i64, i64) = (10, 5);
/// Elo K-factor of character ratings.
pub const ELO_K: f64 = 32.0;

/// The rating change of the winner (the loser loses the same), by the Elo formula.
pub fn elo_gain(winner: i64, loser: i64) -> i64 {
    let expected = 1.0 / (1.0 + 10f64.powf((loser - winner) as f64 / 400.0));
    // At most K, so the cast cannot overflow.
    (ELO_K * (1.0 - expected)).round() as i64
}

/// Wins per battle in basis points.
pub fn win_rate_bp(wins: i64, losses: i64) -> i64 {
    if wins + losses == 0 {
        0
    } else {
        wins * 10_000 / (wins + losses)
    }
}

struct Side {
    player: String,
    character: String,
    attacker: bool,
    energy_spent: i64,
}

/// Applies the game effects of `verdict` on battle `battle_id`, inside the settling transaction.
pub async fn on_settled(
    tx: &mut Tx,
    ledger: &Ledger,
    battle_id: &str,
    verdict: &Verdict,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let sides = sqlx::query(
        "SELECT player_id, character_id, side, energy_spent FROM game_battles \
         WHERE battle_id = $1 ORDER BY character_id",
    )
    .bind(battle_id)
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|r| {
        Ok(Side {
            player: r.try_get("player_id")?,
            character: r.try_get("character_id")?,
            attacker: r.try_get::<String, _>("side")? == "attacker",
            energy_spent: r.try_get("energy_spent")?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    if sides.is_empty() {
        return Ok(());
    }
    let Some(winner) = verdict.winner() else {
        return refund(tx, ledger, battle_id, &sides, now_ms).await;
    };
    let ratings = sqlx::query("SELECT id, rating FROM characters WHERE id = $1 OR id = $2")
        .bind(&sides[0].character)
        .bind(sides.get(1).map_or("", |s| s.character.as_str()))
        .fetch_all(&mut **tx)
        .await?;
    let rating_of = |id: &str| {
        ratings
            .iter()
            .find(|r| r.try_get::<String, _>("id").ok().as_deref() == Some(id))
            .and_then(|r| r.try_get::<i64, _>("rating").ok())
            .unwrap_or(1000)
    };
    let loser = sides
        .iter()
        .find(|s| s.character != winner)
        .map(|s| s.character.as_str());
    let gain = elo_gain(rating_of(winner), loser.map_or(1000, rating_of));
    for side in &sides {
        let won = side.character == winner;
        sqlx::query(
            "UPDATE characters SET wins = wins + $2, losses = losses + $3, rating = rating + $4, \
                 win_rate_bp = ((wins + $2) * 10000) / (wins + $2 + losses + $3), \
                 updated_at_ms = $5 WHERE id = $1",
        )
        .bind(&side.character)
        .bind(i64::from(won))
        .bind(i64::from(!won))
        .bind(if won { gain } else { -gain })
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
    }
    for side in sides.iter().filter(|s| s.attacker) {
        quests::progress(tx, &side.player, QuestKind::Fight, 1, now_ms).await?;
        if side.character == winner {
            quests::progress(tx, &side.player, QuestKind::Win, 1, now_ms).await?;
        }
    }
    let mut by_player: Vec<&Side> = sides.iter().collect();
    by_player.sort_by(|a, b| a.player.cmp(&b.player));
    for side in by_player {
        let won = side.character == winner;
        sqlx::query("UPDATE players SET wins = wins + $2, losses = losses + $3 WHERE id = $1")
            .bind(&side.player)
            .bind(i64::from(won))
            .bind(i64::from(!won))
            .execute(&mut **tx)
            .await?;
        let (gold, exp) = if won { WIN_REWARD } else { LOSS_REWARD };
        for (resource, amount) in [(Resource::Gold, gold), (Resource::ExpPotion, exp)] {
            let change = Change {
                player: &side.player,
                resource,
                delta: amount,
                reason: "battle_reward",
                reference: Some(battle_id),
            };
            ledger.credit(tx, change, now_ms).await?;
        }
    }
    sqlx::query(
        "UPDATE game_battles SET outcome = CASE WHEN character_id = $2 THEN 'win' ELSE 'loss' END \
         WHERE battle_id = $1",
    )
    .bind(battle_id)
    .bind(winner)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An ERROR battle: the attacker gets the energy back.
async fn refund(
    tx: &mut Tx,
    ledger: &Ledger,
    battle_id: &str,
    sides: &[Side],
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    for side in sides.iter().filter(|s| s.energy_spent > 0) {
        let change = Change {
            player: &side.player,
            resource: Resource::Energy,
            delta: side.energy_spent,
            reason: "battle_refund",
            reference: Some(battle_id),
        };
        ledger.credit(tx, change, now_ms).await?;
    }
    sqlx::query("UPDATE game_battles SET outcome = 'error' WHERE battle_id = $1")
        .bind(battle_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn elo_moves_more_for_upsets() {
        assert_eq!(elo_gain(1000, 1000), 16);
        assert!(elo_gain(800, 1200) > 16);
        assert!(elo_gain(1200, 800) < 16);
        assert_eq!(elo_gain(3000, 0), 0);
    }

    #[test]
    fn win_rates_in_basis_points() {
        assert_eq!(win_rate_bp(0, 0), 0);
        assert_eq!(win_rate_bp(1, 2), 3_333);
        assert_eq!(win_rate_bp(5, 0), 10_000);
    }

    #[test]
    fn winning_pays_more_than_losing() {
        assert!(WIN_REWARD.0 > LOSS_REWARD.0 && WIN_REWARD.1 > LOSS_REWARD.1);
    }

    proptest! {
        #[test]
        fn elo_gain_is_bounded_and_monotonic(w in 0i64..4000, l in 0i64..4000, d in 0i64..500) {
            let g = elo_gain(w, l);
            prop_assert!((0..=32).contains(&g));
            // A weaker winner gains at least as much.
            prop_assert!(elo_gain(w - d, l) >= g);
        }
    }
}
