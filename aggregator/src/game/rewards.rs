//! What a settled player battle changes, applied in the verdict's own transaction through the
//! settlement port ([`PlayerRewards`]): win/loss counts, ratings, the attacker's reward through
//! the ledger (defenders earn rating, not currency) and quest progress; an ERROR refunds the
//! energy. A pure [`plan`] decides, [`apply`] writes.
//!
//! Rows are touched in one global order (characters, then quest rows, then players, each
//! sorted by id) so concurrent settlements and spends never deadlock on PostgreSQL.

use std::collections::BTreeMap;

use sqlx::FromRow;

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

/// Writes the plans of several battles inside the settling transaction: the rows applying
/// them one after another would give, in one statement per table (rows locked in id order on
/// PostgreSQL first, the global lock order).
pub async fn apply(
    tx: &mut Tx,
    ledger: &Ledger,
    plans: &[(&str, RewardPlan)],
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let dialect = ledger.dialect;
    // Characters: wins, losses and rating change summed per character.
    let mut characters: BTreeMap<&str, (i64, i64, i64)> = BTreeMap::new();
    for c in plans.iter().flat_map(|(_, p)| &p.characters) {
        let total = characters.entry(c.character.as_str()).or_default();
        total.0 += i64::from(c.won);
        total.1 += i64::from(!c.won);
        total.2 += c.rating_delta;
    }
    if !characters.is_empty() {
        let ids: Vec<&str> = characters.keys().copied().collect();
        crate::db::lock_in_order(tx, dialect, "characters", &ids).await?;
        let mut params = crate::db::Params::of(tx);
        let cte = crate::db::values_cte(
            &mut params,
            &[
                ("cid", "TEXT"),
                ("w", "BIGINT"),
                ("l", "BIGINT"),
                ("d", "BIGINT"),
            ],
            characters.len(),
        );
        let sql = format!(
            "{cte} UPDATE characters SET wins = characters.wins + v.w, \
                 losses = characters.losses + v.l, rating = characters.rating + v.d, \
                 win_rate_bp = ((characters.wins + v.w) * 10000) \
                     / (characters.wins + v.w + characters.losses + v.l), \
                 updated_at_ms = {} FROM v WHERE characters.id = v.cid",
            params.take()
        );
        let mut update = crate::db::one_off(&sql);
        for (id, (won, lost, delta)) in &characters {
            update = update.bind(*id).bind(*won).bind(*lost).bind(*delta);
        }
        update.bind(now_ms).execute(&mut **tx).await?;
    }
    // Quest progress, summed per player and kind.
    let mut progress: BTreeMap<(&str, QuestKind), i64> = BTreeMap::new();
    for (player, kind) in plans.iter().flat_map(|(_, p)| &p.quests) {
        *progress.entry((player.as_str(), *kind)).or_default() += 1;
    }
    let progress: Vec<(&str, QuestKind, i64)> =
        progress.into_iter().map(|((p, k), n)| (p, k, n)).collect();
    quests::progress_many(tx, &progress, now_ms).await?;
    // Players: wins and losses, summed per player.
    let mut players: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for (player, won) in plans.iter().flat_map(|(_, p)| &p.players) {
        let total = players.entry(player.as_str()).or_default();
        total.0 += i64::from(*won);
        total.1 += i64::from(!*won);
    }
    if !players.is_empty() {
        let ids: Vec<&str> = players.keys().copied().collect();
        crate::db::lock_in_order(tx, dialect, "players", &ids).await?;
        let mut params = crate::db::Params::of(tx);
        let cte = crate::db::values_cte(
            &mut params,
            &[("pid", "TEXT"), ("w", "BIGINT"), ("l", "BIGINT")],
            players.len(),
        );
        let sql = format!(
            "{cte} UPDATE players SET wins = players.wins + v.w, losses = players.losses + v.l \
             FROM v WHERE players.id = v.pid"
        );
        let mut update = crate::db::one_off(&sql);
        for (id, (won, lost)) in &players {
            update = update.bind(*id).bind(*won).bind(*lost);
        }
        update.execute(&mut **tx).await?;
    }
    // Rewards and refunds, in battle order.
    let credits: Vec<Change<'_>> = plans
        .iter()
        .flat_map(|(battle, plan)| {
            plan.credits.iter().map(move |credit| Change {
                player: &credit.player,
                resource: credit.resource,
                delta: credit.amount,
                reason: credit.reason,
                reference: Some(*battle),
            })
        })
        .collect();
    ledger.credit_many(tx, &credits, now_ms).await?;
    // Each side's outcome: win or loss against the winner, or an error.
    let outcomes: Vec<(&str, Option<&str>)> = plans
        .iter()
        .filter_map(|(battle, plan)| match &plan.outcome {
            Some(Outcome::Won { winner }) => Some((*battle, Some(winner.as_str()))),
            Some(Outcome::Error) => Some((*battle, None)),
            None => None,
        })
        .collect();
    if !outcomes.is_empty() {
        let mut params = crate::db::Params::of(tx);
        let cte = crate::db::values_cte(
            &mut params,
            &[("bid", "TEXT"), ("winner", "TEXT")],
            outcomes.len(),
        );
        let sql = format!(
            "{cte} UPDATE game_battles SET outcome = CASE WHEN v.winner IS NULL THEN 'error' \
                 WHEN game_battles.character_id = v.winner THEN 'win' ELSE 'loss' END \
             FROM v WHERE game_battles.battle_id = v.bid"
        );
        let mut update = crate::db::one_off(&sql);
        for (battle, winner) in &outcomes {
            update = update.bind(*battle).bind(*winner);
        }
        update.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Player rewards, ratings and quest progress: the game's effect of every verdict. Battles
/// without players (admin battles) change nothing.
pub struct PlayerRewards {
    pub ledger: Ledger,
}

/// A side and its character's rating, as the settling transaction reads them.
#[derive(sqlx::FromRow)]
struct SideRating {
    battle_id: String,
    #[sqlx(flatten)]
    side: Side,
    rating: Option<i64>,
}

#[async_trait::async_trait]
impl VerdictEffect for PlayerRewards {
    fn name(&self) -> &'static str {
        "player_rewards"
    }

    async fn apply(&self, tx: &mut Tx, settled: &Settled<'_>) -> Result<(), sqlx::Error> {
        self.apply_many(tx, std::slice::from_ref(settled)).await
    }

    /// The battles' sides and ratings in one read, plans made in order (a character's rating
    /// moved by an earlier battle of the batch counts for the next), and one write per table.
    async fn apply_many(&self, tx: &mut Tx, settled: &[Settled<'_>]) -> Result<(), sqlx::Error> {
        let battles: Vec<&Settled<'_>> = settled.iter().filter(|s| !s.by_admin()).collect();
        if battles.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = (1..=battles.len()).map(|i| format!("${i}")).collect();
        // Both sides of each battle with their characters' ratings (a deleted character has
        // none).
        let sql = format!(
            "SELECT g.battle_id, g.player_id, g.character_id, g.side, g.energy_spent, c.rating \
             FROM game_battles g LEFT JOIN characters c ON c.id = g.character_id \
             WHERE g.battle_id IN ({}) ORDER BY g.battle_id, g.character_id",
            list.join(", ")
        );
        let mut select = crate::db::one_off(&sql);
        for battle in &battles {
            select = select.bind(battle.battle_id);
        }
        let mut ratings: BTreeMap<String, i64> = BTreeMap::new();
        let mut sides: BTreeMap<String, Vec<Side>> = BTreeMap::new();
        for row in select.fetch_all(&mut **tx).await? {
            let row = SideRating::from_row(&row)?;
            if let Some(rating) = row.rating {
                ratings.insert(row.side.character.clone(), rating);
            }
            sides.entry(row.battle_id).or_default().push(row.side);
        }
        let mut plans = Vec::with_capacity(battles.len());
        for battle in &battles {
            let Some(sides) = sides.get(battle.battle_id) else {
                continue;
            };
            let known: Vec<(String, i64)> = sides
                .iter()
                .filter_map(|s| Some((s.character.clone(), *ratings.get(&s.character)?)))
                .collect();
            let plan = plan(sides, &known, battle.verdict.winner());
            for c in &plan.characters {
                if let Some(rating) = ratings.get_mut(&c.character) {
                    *rating += c.rating_delta;
                }
            }
            plans.push((battle.battle_id, plan));
        }
        // All battles of a batch are settled at the same moment.
        let now_ms = battles[0].now_ms;
        apply(tx, &self.ledger, &plans, now_ms).await
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
