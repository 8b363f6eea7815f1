//! The prize table of a season: shares of the prize pool by final rank, in basis points.
//! Shares are rounded down and the rounding remainder goes to the first place, so exactly the
//! pool is paid when all places are taken; places nobody reached are not paid.

use serde::Serialize;
use utoipa::ToSchema;

/// 1st 50%, 2nd 30%, 3rd 20%.
pub const TABLE_BP: [i64; 3] = [5_000, 3_000, 2_000];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Prize {
    pub rank: i64,
    pub player_id: String,
    pub gold: i64,
}

/// Prizes for `ranked` (player, rank) in rank order, only players who fought.
pub fn plan(pool: i64, ranked: &[(String, i64)]) -> Vec<Prize> {
    let shares: Vec<i64> = TABLE_BP
        .iter()
        .map(|bp| i128::from(pool) * i128::from(*bp) / 10_000)
        .map(|g| i64::try_from(g).unwrap_or(0))
        .collect();
    let remainder = pool - shares.iter().sum::<i64>();
    ranked
        .iter()
        .zip(shares)
        .enumerate()
        .map(|(i, ((player, rank), share))| Prize {
            rank: *rank,
            player_id: player.clone(),
            gold: if i == 0 { share + remainder } else { share },
        })
        .filter(|p| p.gold > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ranked(n: usize) -> Vec<(String, i64)> {
        (0..n).map(|i| (format!("p{i}"), i as i64 + 1)).collect()
    }

    #[test]
    fn the_table() {
        let p = plan(1_001, &ranked(5));
        assert_eq!(
            p.iter().map(|p| p.gold).collect::<Vec<_>>(),
            vec![501, 300, 200]
        );
        assert_eq!(plan(1_000, &ranked(1)).len(), 1);
        assert!(plan(0, &ranked(3)).is_empty());
    }

    proptest! {
        #[test]
        fn never_more_than_the_pool_and_all_of_it_with_three(pool in 0i64..1_000_000_000_000, n in 0usize..6) {
            let paid: i64 = plan(pool, &ranked(n)).iter().map(|p| p.gold).sum();
            prop_assert!(paid <= pool);
            if n >= 3 {
                prop_assert_eq!(paid, pool);
            }
        }
    }
}
