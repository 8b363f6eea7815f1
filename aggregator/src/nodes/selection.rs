//! Weighted selection without replacement, at most one node per operator: a pure function.
//!
//! Efraimidis–Spirakis: each candidate draws `key = -ln(u) / weight` (an exponential clock
//! that rings sooner for heavier nodes); sorting by key gives a weighted random order.

use rand::Rng;

/// What selection needs to know about a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate<'a> {
    pub operator: Option<&'a str>,
    /// Configured weight × reputation × health; zero or less is never chosen.
    pub weight: f64,
}

/// A weighted random order of the candidates with positive weight (indices into `candidates`).
pub fn weighted_order<R: Rng + ?Sized>(candidates: &[Candidate<'_>], rng: &mut R) -> Vec<usize> {
    let mut keyed: Vec<(f64, usize)> = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.weight.is_finite() && c.weight > 0.0)
        .map(|(i, c)| {
            // u in (0, 1]: never ln(0).
            let u: f64 = 1.0 - rng.random::<f64>();
            (-u.ln() / c.weight, i)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// Walks a weighted order and keeps candidates while `accept` says yes, skipping operators
/// already chosen, until `k` are chosen.
pub fn pick_from_order<F>(
    candidates: &[Candidate<'_>],
    order: &[usize],
    k: usize,
    mut accept: F,
) -> Vec<usize>
where
    F: FnMut(usize) -> bool,
{
    let mut chosen = Vec::with_capacity(k);
    let mut operators: Vec<&str> = Vec::with_capacity(k);
    for &i in order {
        if chosen.len() == k {
            break;
        }
        let op = candidates[i].operator;
        if let Some(op) = op
            && operators.contains(&op)
        {
            continue;
        }
        if !accept(i) {
            continue;
        }
        if let Some(op) = op {
            operators.push(op);
        }
        chosen.push(i);
    }
    chosen
}

/// Chooses up to `k` distinct candidates, weighted, at most one per operator.
pub fn select<R: Rng + ?Sized>(candidates: &[Candidate<'_>], k: usize, rng: &mut R) -> Vec<usize> {
    let order = weighted_order(candidates, rng);
    pick_from_order(candidates, &order, k, |_| true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn cands(spec: &[(Option<&'static str>, f64)]) -> Vec<Candidate<'static>> {
        spec.iter()
            .map(|&(operator, weight)| Candidate { operator, weight })
            .collect()
    }

    proptest! {
        #[test]
        fn chosen_are_distinct_bounded_and_one_per_operator(
            spec in prop::collection::vec((prop::option::of(0u8..5), 0.0f64..10.0), 0..40),
            k in 0usize..8,
            seed in any::<u64>(),
        ) {
            let ops: Vec<String> = (0..5).map(|i| format!("op{i}")).collect();
            let candidates: Vec<Candidate<'_>> = spec.iter().map(|(op, w)| Candidate {
                operator: op.map(|o| ops[o as usize].as_str()),
                weight: *w,
            }).collect();
            let mut rng = StdRng::seed_from_u64(seed);
            let chosen = select(&candidates, k, &mut rng);
            prop_assert!(chosen.len() <= k);
            let mut seen = std::collections::HashSet::new();
            let mut seen_ops = std::collections::HashSet::new();
            for &i in &chosen {
                prop_assert!(seen.insert(i));
                prop_assert!(candidates[i].weight > 0.0);
                if let Some(op) = candidates[i].operator {
                    prop_assert!(seen_ops.insert(op));
                }
            }
            // As many as possible are chosen: min(k, eligible distinct slots).
            let eligible_ops: std::collections::HashSet<_> = candidates.iter()
                .filter(|c| c.weight > 0.0).filter_map(|c| c.operator).collect();
            let eligible_solo = candidates.iter().filter(|c| c.weight > 0.0 && c.operator.is_none()).count();
            prop_assert_eq!(chosen.len(), k.min(eligible_ops.len() + eligible_solo));
        }
    }

    #[test]
    fn weights_are_respected_in_distribution() {
        let candidates = cands(&[(None, 1.0), (None, 3.0)]);
        let mut rng = StdRng::seed_from_u64(42);
        let trials = 20_000;
        let heavy = (0..trials)
            .filter(|_| select(&candidates, 1, &mut rng) == vec![1])
            .count();
        let share = heavy as f64 / trials as f64;
        assert!((share - 0.75).abs() < 0.02, "heavy node chosen {share}");
    }

    #[test]
    fn second_pick_follows_without_replacement_odds() {
        // Weights 2,1,1: P(first = A) = 1/2; A is never chosen twice.
        let candidates = cands(&[(None, 2.0), (None, 1.0), (None, 1.0)]);
        let mut rng = StdRng::seed_from_u64(7);
        let trials = 20_000;
        let mut a_first = 0;
        for _ in 0..trials {
            let chosen = select(&candidates, 2, &mut rng);
            assert_eq!(chosen.len(), 2);
            assert_ne!(chosen[0], chosen[1]);
            if chosen[0] == 0 {
                a_first += 1;
            }
        }
        let share = a_first as f64 / trials as f64;
        assert!((share - 0.5).abs() < 0.02, "A first {share}");
    }

    #[test]
    fn one_node_per_operator() {
        let candidates = cands(&[(Some("x"), 1.0), (Some("x"), 1.0), (Some("y"), 1.0)]);
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let chosen = select(&candidates, 3, &mut rng);
            assert_eq!(chosen.len(), 2);
            assert!(chosen.contains(&2));
        }
    }

    #[test]
    fn rejected_candidates_are_skipped() {
        let candidates = cands(&[(None, 1.0), (None, 1.0), (None, 1.0)]);
        let order = vec![0, 1, 2];
        let chosen = pick_from_order(&candidates, &order, 2, |i| i != 0);
        assert_eq!(chosen, vec![1, 2]);
    }
}
