//! The parimutuel settlement of one scheduled battle's bets, without the database.
//!
//! The winning side shares the whole pool in proportion to its stakes, after the house cut:
//! `cut = min(pool × cut_bp / 10000, losing pool)` (rounded down; capped so that a winner
//! never gets back less than their stake), each winning bet gets
//! `floor(stake × (pool − cut) / winning pool)`, and whatever rounding leaves stays with the
//! house with the cut. When one side has no stakes there is no contest: every stake is
//! refunded. Payouts plus the house's take are exactly the pool, always.

use super::Side;

/// One open bet.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Stake {
    pub id: String,
    pub player_id: String,
    #[sqlx(try_from = "String")]
    pub side: Side,
    pub amount: i64,
}

/// What becomes of one bet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Won,
    Lost,
    Refunded,
}

impl Fate {
    pub fn as_str(self) -> &'static str {
        match self {
            Fate::Won => "won",
            Fate::Lost => "lost",
            Fate::Refunded => "refunded",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// Per stake, in the order given: its fate and what it is paid.
    pub bets: Vec<(Fate, i64)>,
    /// The cut plus rounding remainders.
    pub house_take: i64,
    /// Every stake was refunded because one side had none.
    pub no_contest: bool,
}

fn pool_of(stakes: &[Stake], side: Option<Side>) -> i64 {
    stakes
        .iter()
        .filter(|s| side.is_none_or(|x| s.side == x))
        .map(|s| s.amount)
        .sum()
}

/// The house cut of a pool whose losing side staked `losing`.
pub fn cut(pool: i64, losing: i64, cut_bp: i64) -> i64 {
    let cut = i128::from(pool) * i128::from(cut_bp) / 10_000;
    i64::try_from(cut).unwrap_or(i64::MAX).min(losing)
}

/// Every stake back.
pub fn refund(stakes: &[Stake]) -> Settlement {
    Settlement {
        bets: stakes.iter().map(|s| (Fate::Refunded, s.amount)).collect(),
        house_take: 0,
        no_contest: false,
    }
}

/// Pays `winner`'s bets from the pool.
pub fn settle(stakes: &[Stake], winner: Side, cut_bp: i64) -> Settlement {
    let pool = pool_of(stakes, None);
    let winning = pool_of(stakes, Some(winner));
    if winning == 0 || winning == pool {
        return Settlement {
            no_contest: true,
            ..refund(stakes)
        };
    }
    let share = pool - cut(pool, pool - winning, cut_bp);
    let bets: Vec<(Fate, i64)> = stakes
        .iter()
        .map(|s| {
            if s.side == winner {
                let paid = i128::from(s.amount) * i128::from(share) / i128::from(winning);
                (Fate::Won, i64::try_from(paid).unwrap_or(0))
            } else {
                (Fate::Lost, 0)
            }
        })
        .collect();
    let paid: i64 = bets.iter().map(|(_, p)| p).sum();
    Settlement {
        bets,
        house_take: pool - paid,
        no_contest: false,
    }
}

/// What one gold staked on `side` pays back if it wins, at the current pools.
pub fn payout_per_gold(red: i64, blue: i64, side: Side, cut_bp: i64) -> Option<f64> {
    let (mine, other) = match side {
        Side::Red => (red, blue),
        Side::Blue => (blue, red),
    };
    if mine == 0 {
        return None;
    }
    if other == 0 {
        return Some(1.0);
    }
    let pool = mine + other;
    Some((pool - cut(pool, other, cut_bp)) as f64 / mine as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stake(i: usize, side: Side, amount: i64) -> Stake {
        Stake {
            id: format!("b{i}"),
            player_id: format!("p{}", i % 7),
            side,
            amount,
        }
    }

    #[test]
    fn a_worked_example() {
        // 300 on red, 100 on blue, red wins, 5% cut = 20: 380 shared by red's 300.
        let stakes = [
            stake(0, Side::Red, 200),
            stake(1, Side::Red, 100),
            stake(2, Side::Blue, 100),
        ];
        let s = settle(&stakes, Side::Red, 500);
        assert_eq!(
            s.bets,
            vec![(Fate::Won, 253), (Fate::Won, 126), (Fate::Lost, 0)]
        );
        assert_eq!(s.house_take, 21);
        // Nobody on blue: no contest.
        let one_sided = [stake(0, Side::Red, 50)];
        assert!(settle(&one_sided, Side::Red, 500).no_contest);
        assert_eq!(
            settle(&one_sided, Side::Blue, 500).bets,
            vec![(Fate::Refunded, 50)]
        );
        assert_eq!(
            payout_per_gold(300, 100, Side::Red, 500),
            Some(380.0 / 300.0)
        );
        assert_eq!(payout_per_gold(300, 0, Side::Red, 500), Some(1.0));
        assert_eq!(payout_per_gold(300, 0, Side::Blue, 500), None);
    }

    fn stakes() -> impl Strategy<Value = Vec<Stake>> {
        proptest::collection::vec((proptest::bool::ANY, 1i64..1_000_000_000), 0..60).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (red, amount))| {
                    stake(i, if red { Side::Red } else { Side::Blue }, amount)
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn no_gold_is_created_or_lost(stakes in stakes(), red_wins in proptest::bool::ANY, cut_bp in 0i64..=5_000) {
            let winner = if red_wins { Side::Red } else { Side::Blue };
            let s = settle(&stakes, winner, cut_bp);
            let pool: i64 = stakes.iter().map(|s| s.amount).sum();
            let paid: i64 = s.bets.iter().map(|(_, p)| p).sum();
            prop_assert_eq!(paid + s.house_take, pool);
            prop_assert!(s.house_take >= 0);
            for (stake, (fate, paid)) in stakes.iter().zip(&s.bets) {
                match fate {
                    // A winner never gets back less than they staked.
                    Fate::Won => prop_assert!(stake.side == winner && *paid >= stake.amount),
                    Fate::Lost => prop_assert!(stake.side != winner && *paid == 0),
                    Fate::Refunded => prop_assert!(s.no_contest && *paid == stake.amount),
                }
            }
            let r = refund(&stakes);
            prop_assert_eq!(r.bets.iter().map(|(_, p)| p).sum::<i64>(), pool);
        }
    }
}
