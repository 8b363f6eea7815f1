//! Summoning and upgrading numbers: rarity odds (prompt_power improves them), stats by rarity,
//! and the level curve. Pure functions, so the odds are tested exactly.

/// Prompt tokens one summon costs.
pub const SUMMON_PROMPT_COST: i64 = 1;
/// Most prompt_power one summon may spend.
pub const MAX_SUMMON_POWER: u32 = 10;
/// Highest character level.
pub const MAX_LEVEL: i64 = 10;
/// Each stat of a new character is `10 × rarity + 10` plus a roll of 0 to this.
pub const STAT_SPREAD: u32 = 20;

/// Chance in percent of each rarity 1★..5★ when `power` prompt_power is spent (capped at 10).
///
/// Base odds 50/30/13/5/2; each point of power moves 4 points from 1★ to 3★ (2), 4★ (1) and
/// 5★ (1). At 10 power: 10/30/33/15/12.
pub fn rarity_weights(power: u32) -> [u32; 5] {
    let p = power.min(MAX_SUMMON_POWER);
    [50 - 4 * p, 30, 13 + 2 * p, 5 + p, 2 + p]
}

/// The rarity (1–5) for a uniform `roll` in `0..100`.
pub fn roll_rarity(power: u32, roll: u32) -> u32 {
    let mut remaining = roll % 100;
    for (i, w) in rarity_weights(power).into_iter().enumerate() {
        if remaining < w {
            return u32::try_from(i).unwrap_or(0) + 1;
        }
        remaining -= w;
    }
    5
}

/// Strength, agility and luck of a new character, from three rolls in `0..=STAT_SPREAD`.
pub fn base_stats(rarity: u32, rolls: [u32; 3]) -> [i64; 3] {
    let base = 10 * i64::from(rarity.clamp(1, 5)) + 10;
    rolls.map(|r| base + i64::from(r.min(STAT_SPREAD)))
}

/// What raising a character from `level` to `level + 1` costs: (gold, exp_potion).
pub fn upgrade_cost(level: i64) -> (i64, i64) {
    (100 * level, 20 * level)
}

/// What each stat gains per level.
pub fn stat_gain_per_level(rarity: i64) -> i64 {
    2 + rarity
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at_least(power: u32, stars: usize) -> u32 {
        rarity_weights(power)[stars - 1..].iter().sum()
    }

    #[test]
    fn odds_are_percentages_at_every_power() {
        for p in 0..=20 {
            let w = rarity_weights(p);
            assert_eq!(w.iter().sum::<u32>(), 100, "power {p}");
            assert!(w.iter().all(|&x| x > 0), "power {p}: {w:?}");
        }
        assert_eq!(rarity_weights(0), [50, 30, 13, 5, 2]);
        assert_eq!(rarity_weights(10), [10, 30, 33, 15, 12]);
        assert_eq!(rarity_weights(99), rarity_weights(10));
    }

    #[test]
    fn rolls_follow_the_weights_exactly() {
        for p in [0, 3, 10] {
            let mut counts = [0u32; 5];
            for roll in 0..100 {
                counts[usize::try_from(roll_rarity(p, roll)).unwrap() - 1] += 1;
            }
            assert_eq!(counts, rarity_weights(p), "power {p}");
        }
    }

    #[test]
    fn stats_and_costs_grow_with_rarity_and_level() {
        assert_eq!(base_stats(1, [0, 10, 20]), [20, 30, 40]);
        assert_eq!(base_stats(5, [0, 0, 99]), [60, 60, 80]);
        assert_eq!(upgrade_cost(1), (100, 20));
        assert_eq!(upgrade_cost(9), (900, 180));
        assert_eq!(stat_gain_per_level(5), 7);
    }

    proptest! {
        /// More power never lowers the chance of reaching any rarity.
        #[test]
        fn power_improves_the_odds(p in 0u32..15, q in 0u32..15, stars in 2usize..=5) {
            let (lo, hi) = if p <= q { (p, q) } else { (q, p) };
            prop_assert!(at_least(hi, stars) >= at_least(lo, stars));
        }

        #[test]
        fn every_roll_gives_a_valid_rarity(p in 0u32..50, roll in any::<u32>()) {
            prop_assert!((1..=5).contains(&roll_rarity(p, roll)));
        }

        /// Over its whole range a higher rarity never rolls lower stats.
        #[test]
        fn rarer_is_stronger(r in 1u32..5, rolls in proptest::array::uniform3(0u32..=20)) {
            let lower = base_stats(r, rolls);
            let higher = base_stats(r + 1, rolls);
            prop_assert!(lower.iter().zip(higher).all(|(a, b)| *a < b));
        }
    }
}
