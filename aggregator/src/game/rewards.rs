//! What a settled player battle changes, applied in the verdict's own transaction through the
//! settlement port ([`PlayerRewards`]): win/loss counts, ratings, the attacker's reward through
//! the ledger (defenders earn rating, not currency) and quest progress; an ERROR refunds the
//! energy. A pure [`plan`] decides, [`apply`] writes.
//!
//! Rows are touched in one global order (characters, then quest rows, then players, each
//! sorted by id) so concurrent settlements and spends never deadlock on PostgreSQL.

use super::battles::Side as BattleSide;
use super::quests::{self, QuestKind};
use crate::battles::{Settled, VerdictEffect};
use crate::db::Tx;
use crate::ledger::{Change, Ledger, Resource};

/// Paid to the attacker when its character wins: (gold, exp_potion). Defenders are never paid.
pub const WIN_REWARD: (i64, i64) = (50, 20);
/// Paid to the attacker when its character loses: (gold, exp_potion).
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

/// One side of a player battle, as the battle was created.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Side {
    #[sqlx(rename = "player_id")]
    pub player: String,
    #[sqlx(rename = "character_id")]
    pub character: String,
    #[sqlx(try_from = "String")]
    pub side: BattleSide,
    pub energy_spent: i64,
}

impl Side {
    fn attacker(&self) -> bool {
        self.side == BattleSide::Attacker
    }
}

/// What a verdict changes for the players of one battle: computed without the database
/// ([`plan`]), written by [`apply`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RewardPlan {
    /// Win/loss and rating change of each character, in character id order.
    pub characters: Vec<CharacterResult>,
    /// Quest progress of the attacking players.
    pub quests: Vec<(String, QuestKind)>,
    /// Win/loss of each player, in player id order (the global lock order).
    pub players: Vec<(String, bool)>,
    /// Ledger credits, in player id order.
    pub credits: Vec<Credit>,
    /// What `game_battles.outcome` becomes: the winning character, or an error.
    pub outcome: Option<Outcome>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharacterResult {
    pub character: String,
    pub won: bool,
    pub rating_delta: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credit {
    pub player: String,
    pub resource: Resource,
    pub amount: i64,
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Won { winner: String },
    Error,
}

/// The reward plan of a verdict: `winner` is the winning character, `None` for an ERROR
/// battle (the attacker gets the energy back). `sides` in character id order; a rating not
/// in `ratings` counts as 1000.
pub fn plan(sides: &[Side], ratings: &[(String, i64)], winner: Option<&str>) -> RewardPlan {
    if sides.is_empty() {
        return RewardPlan::default();
    }
    let mut by_player: Vec<&Side> = sides.iter().collect();
    by_player.sort_by(|a, b| a.player.cmp(&b.player));
    let Some(winner) = winner else {
        return RewardPlan {
            credits: sides
                .iter()
                .filter(|s| s.energy_spent > 0)
                .map(|s| Credit {
                    player: s.player.clone(),
                    resource: Resource::Energy,
                    amount: s.energy_spent,
                    reason: "battle_refund",
                })
                .collect(),
            outcome: Some(Outcome::Error),
            ..RewardPlan::default()
        };
    };
    let rating_of = |id: &str| {
        ratings
            .iter()
            .find(|(c, _)| c == id)
            .map_or(1000, |(_, r)| *r)
    };
    let loser = sides
        .iter()
        .find(|s| s.character != winner)
        .map(|s| s.character.as_str());
    let gain = elo_gain(rating_of(winner), loser.map_or(1000, rating_of));
    let characters = sides
        .iter()
        .map(|s| {
            let won = s.character == winner;
            CharacterResult {
                character: s.character.clone(),
                won,
                rating_delta: if won { gain } else { -gain },
            }
        })
        .collect();
    let mut quests = Vec::new();
    for side in sides.iter().filter(|s| s.attacker()) {
        quests.push((side.player.clone(), QuestKind::Fight));
        if side.character == winner {
            quests.push((side.player.clone(), QuestKind::Win));
        }
    }
    // Only the attacker is paid: a defender earns rating, never currency, so battles fought
    // against a character (by alt accounts, say) mint nothing for its owner.
    let mut credits = Vec::new();
    for side in by_player.iter().filter(|s| s.attacker()) {
        let (gold, exp) = if side.character == winner {
            WIN_REWARD
        } else {
            LOSS_REWARD
        };
        for (resource, amount) in [(Resource::Gold, gold), (Resource::ExpPotion, exp)] {
            credits.push(Credit {
                player: side.player.clone(),
                resource,
                amount,
                reason: "battle_reward",
            });
        }
    }
    RewardPlan {
        characters,
        quests,
        players: by_player
            .iter()
            .map(|s| (s.player.clone(), s.character == winner))
            .collect(),
        credits,
        outcome: Some(Outcome::Won {
            winner: winner.to_owned(),
        }),
    }
}

/// Writes `plan` for battle `battle_id` inside the settling transaction.
pub async fn apply(
    tx: &mut Tx,
    ledger: &Ledger,
    battle_id: &str,
    plan: &RewardPlan,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    for c in &plan.characters {
        sqlx::query(
            "UPDATE characters SET wins = wins + $2, losses = losses + $3, rating = rating + $4, \
                 win_rate_bp = ((wins + $2) * 10000) / (wins + $2 + losses + $3), \
                 updated_at_ms = $5 WHERE id = $1",
        )
        .bind(&c.character)
        .bind(i64::from(c.won))
        .bind(i64::from(!c.won))
        .bind(c.rating_delta)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
    }
    for (player, kind) in &plan.quests {
        quests::progress(tx, player, *kind, 1, now_ms).await?;
    }
    for (player, won) in &plan.players {
        sqlx::query("UPDATE players SET wins = wins + $2, losses = losses + $3 WHERE id = $1")
            .bind(player)
            .bind(i64::from(*won))
            .bind(i64::from(!*won))
            .execute(&mut **tx)
            .await?;
    }
    for credit in &plan.credits {
        let change = Change {
            player: &credit.player,
            resource: credit.resource,
            delta: credit.amount,
            reason: credit.reason,
            reference: Some(battle_id),
        };
        ledger.credit(tx, change, now_ms).await?;
    }
    match &plan.outcome {
        Some(Outcome::Won { winner }) => {
            sqlx::query(
                "UPDATE game_battles SET outcome = \
                     CASE WHEN character_id = $2 THEN 'win' ELSE 'loss' END \
                 WHERE battle_id = $1",
            )
            .bind(battle_id)
            .bind(winner)
            .execute(&mut **tx)
            .await?;
        }
        Some(Outcome::Error) => {
            sqlx::query("UPDATE game_battles SET outcome = 'error' WHERE battle_id = $1")
                .bind(battle_id)
                .execute(&mut **tx)
                .await?;
        }
        None => {}
    }
    Ok(())
}

/// Player rewards, ratings and quest progress: the game's effect of every verdict. Battles
/// without players (admin battles) change nothing.
pub struct PlayerRewards {
    pub ledger: Ledger,
}

#[async_trait::async_trait]
impl VerdictEffect for PlayerRewards {
    fn name(&self) -> &'static str {
        "player_rewards"
    }

    async fn apply(&self, tx: &mut Tx, settled: &Settled<'_>) -> Result<(), sqlx::Error> {
        if settled.by_admin() {
            return Ok(());
        }
        let sides: Vec<Side> = sqlx::query_as(
            "SELECT player_id, character_id, side, energy_spent FROM game_battles \
             WHERE battle_id = $1 ORDER BY character_id",
        )
        .bind(settled.battle_id)
        .fetch_all(&mut **tx)
        .await?;
        if sides.is_empty() {
            return Ok(());
        }
        let winner = settled.verdict.winner();
        let ratings: Vec<(String, i64)> = match winner {
            Some(_) => {
                sqlx::query_as("SELECT id, rating FROM characters WHERE id = $1 OR id = $2")
                    .bind(&sides[0].character)
                    .bind(sides.get(1).map_or("", |s| s.character.as_str()))
                    .fetch_all(&mut **tx)
                    .await?
            }
            None => Vec::new(),
        };
        let plan = plan(&sides, &ratings, winner);
        apply(tx, &self.ledger, settled.battle_id, &plan, settled.now_ms).await
    }
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

    fn side(player: &str, character: &str, attacker: bool, energy: i64) -> Side {
        Side {
            player: player.into(),
            character: character.into(),
            side: if attacker {
                BattleSide::Attacker
            } else {
                BattleSide::Defender
            },
            energy_spent: energy,
        }
    }

    /// Two sides in character id order, with their owners (perhaps the same player).
    fn sides() -> impl Strategy<Value = Vec<Side>> {
        (0i64..100, proptest::bool::ANY, proptest::bool::ANY).prop_map(|(energy, same, swap)| {
            let defender_owner = if same { "p1" } else { "p2" };
            let mut sides = vec![
                side("p1", "c1", !swap, if swap { 0 } else { energy }),
                side(defender_owner, "c2", swap, if swap { energy } else { 0 }),
            ];
            sides.sort_by(|a, b| a.character.cmp(&b.character));
            sides
        })
    }

    fn total(plan: &RewardPlan, resource: Resource) -> i64 {
        plan.credits
            .iter()
            .filter(|c| c.resource == resource)
            .map(|c| c.amount)
            .sum()
    }

    #[test]
    fn a_battle_without_players_changes_nothing() {
        assert_eq!(plan(&[], &[], Some("c1")), RewardPlan::default());
        assert_eq!(plan(&[], &[], None), RewardPlan::default());
    }

    proptest! {
        #[test]
        fn elo_is_zero_sum_and_rewards_are_exact(
            sides in sides(),
            r1 in 0i64..4000,
            r2 in 0i64..4000,
            first_wins in proptest::bool::ANY,
        ) {
            let ratings = vec![("c1".to_owned(), r1), ("c2".to_owned(), r2)];
            let winner = if first_wins { "c1" } else { "c2" };
            let plan = plan(&sides, &ratings, Some(winner));
            // Elo: what the winner gains the loser loses.
            prop_assert_eq!(plan.characters.iter().map(|c| c.rating_delta).sum::<i64>(), 0);
            prop_assert_eq!(plan.characters.iter().filter(|c| c.won).count(), 1);
            // Exactly the attacker's reward is minted, nothing for the defender.
            let attacker_won = sides.iter().any(|s| s.attacker() && s.character == winner);
            let paid = if attacker_won { WIN_REWARD } else { LOSS_REWARD };
            prop_assert_eq!(total(&plan, Resource::Gold), paid.0);
            prop_assert_eq!(total(&plan, Resource::ExpPotion), paid.1);
            let attacker_player = sides.iter().find(|s| s.attacker()).map(|s| s.player.clone());
            prop_assert!(plan.credits.iter().all(|c| Some(&c.player) == attacker_player.as_ref()));
            prop_assert_eq!(total(&plan, Resource::Energy), 0);
            prop_assert!(plan.credits.iter().all(|c| c.amount > 0));
            prop_assert!(plan.credits.iter().all(|c| sides.iter().any(|s| s.player == c.player)));
            // Players are touched in id order (the lock order).
            prop_assert!(plan.players.windows(2).all(|w| w[0].0 <= w[1].0));
            prop_assert!(plan.credits.windows(2).all(|w| w[0].player <= w[1].player));
            // Only the attacker's quests move.
            let attacker = sides.iter().find(|s| s.attacker()).map(|s| s.player.clone());
            prop_assert!(plan.quests.iter().all(|(p, _)| Some(p) == attacker.as_ref()));
        }

        #[test]
        fn an_error_refunds_exactly_the_energy_spent(sides in sides()) {
            let plan = plan(&sides, &[], None);
            let spent: i64 = sides.iter().map(|s| s.energy_spent).sum();
            prop_assert_eq!(total(&plan, Resource::Energy), spent);
            prop_assert_eq!(total(&plan, Resource::Gold), 0);
            prop_assert!(plan.characters.is_empty() && plan.quests.is_empty());
            prop_assert_eq!(plan.outcome, Some(Outcome::Error));
        }

        #[test]
        fn elo_gain_is_bounded_and_monotonic(w in 0i64..4000, l in 0i64..4000, d in 0i64..500) {
            let g = elo_gain(w, l);
            prop_assert!((0..=32).contains(&g));
            // A weaker winner gains at least as much.
            prop_assert!(elo_gain(w - d, l) >= g);
        }
    }
}
