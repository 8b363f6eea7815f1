//! The tally: pure rules that turn votes into a verdict.
//!
//! A winner needs a strict majority of the k nodes selected — not of whoever answered — so
//! with k >= 3 no single vote ever decides a battle.

use std::collections::BTreeMap;

/// Votes a winner needs: more than half of k.
pub fn quorum(k: usize) -> usize {
    k / 2 + 1
}

/// Counts valid votes per winner (deterministic order).
pub fn count<'a>(valid_winners: impl IntoIterator<Item = &'a str>) -> BTreeMap<&'a str, usize> {
    let mut counts = BTreeMap::new();
    for w in valid_winners {
        *counts.entry(w).or_insert(0) += 1;
    }
    counts
}

/// The winner with a strict majority of `k`, if any.
pub fn verdict<'a>(k: usize, valid_winners: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let need = quorum(k);
    count(valid_winners)
        .into_iter()
        .find(|&(_, n)| n >= need)
        .map(|(w, _)| w)
}

/// Whether some winner can still reach a quorum if `outstanding` more valid votes arrive.
pub fn still_reachable<'a>(
    k: usize,
    valid_winners: impl IntoIterator<Item = &'a str>,
    outstanding: usize,
) -> bool {
    let best = count(valid_winners).into_values().max().unwrap_or(0);
    best + outstanding >= quorum(k)
}

/// Which agreeing vote's log and description are published (index into the candidates, each
/// `(result hash, node reputation)` of a counted valid vote for the winner): those a quorum of
/// k sent byte for byte, when a quorum did; otherwise those of the most reputable voter.
/// Remaining ties go to a draw ([`draws`]), so neither the fastest node nor a colluding
/// minority picks the text.
pub fn published(k: usize, candidates: &[([u8; 32], f64)]) -> Option<usize> {
    let group = |hash: &[u8; 32]| candidates.iter().filter(|(h, _)| h == hash).count();
    let need = quorum(k);
    let draws = draws(candidates);
    (0..candidates.len()).max_by(|&a, &b| {
        let (ha, ra) = &candidates[a];
        let (hb, rb) = &candidates[b];
        let agreed = |h: &[u8; 32]| group(h) >= need;
        agreed(ha)
            .cmp(&agreed(hb))
            .then_with(|| ra.total_cmp(rb))
            .then_with(|| draws[b].cmp(&draws[a]))
            .then_with(|| b.cmp(&a))
    })
}

/// Each candidate's place in the draw (the smallest wins): SHA-256 of every candidate's hash
/// (sorted, so the order of arrival does not matter) followed by its own. A voter cannot aim
/// for first place without knowing the other texts before it answers. The smallest hash alone
/// could be aimed for: a voter tried descriptions until its hash began with zeros, and its
/// text was published over two honest ones.
fn draws(candidates: &[([u8; 32], f64)]) -> Vec<[u8; 32]> {
    let mut all: Vec<&[u8; 32]> = candidates.iter().map(|(h, _)| h).collect();
    all.sort_unstable();
    candidates
        .iter()
        .map(|(own, _)| {
            let mut input = Vec::with_capacity(32 * (all.len() + 1));
            for h in &all {
                input.extend_from_slice(&h[..]);
            }
            input.extend_from_slice(own);
            let digest = ring::digest::digest(&ring::digest::SHA256, &input);
            let mut out = [0u8; 32];
            out.copy_from_slice(digest.as_ref());
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_published_result_is_the_agreed_one_not_the_fastest() {
        let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        // k = 3: the fastest (first) vote sent its own text; a quorum agrees byte for byte.
        assert_eq!(published(3, &[(c, 1.0), (b, 0.5), (b, 0.4)]), Some(1));
        // Nobody agrees byte for byte: the most reputable voter's.
        assert_eq!(published(3, &[(a, 0.6), (b, 0.9), (c, 0.7)]), Some(1));
        // k = 5: three identical bodies are a quorum, whatever the reputations.
        assert_eq!(
            published(5, &[(a, 0.9), (b, 0.2), (b, 0.2), (b, 0.2), (a, 0.9)]),
            Some(1)
        );
        // Two colluders sending one text in k = 5 do not pick it by being first: equal
        // reputations fall to the draw, whatever the order of arrival.
        let drawn = |votes: &[([u8; 32], f64)]| published(5, votes).map(|i| votes[i].0);
        let first = drawn(&[(c, 1.0), (c, 1.0), (a, 1.0), (b, 1.0)]);
        assert!(first.is_some());
        assert_eq!(first, drawn(&[(a, 1.0), (b, 1.0), (c, 1.0), (c, 1.0)]));
        assert_eq!(first, drawn(&[(b, 1.0), (c, 1.0), (a, 1.0), (c, 1.0)]));
        assert_eq!(published(3, &[]), None);
    }

    #[test]
    fn the_smallest_hash_does_not_win_the_draw() {
        // A voter that ground its text's hash down to zeros, against two honest texts that
        // differ from battle to battle: it wins about a third of the draws, as any voter.
        let ground = [0u8; 32];
        let battles = 600u32;
        let mut won = 0;
        for i in 0..battles {
            let honest = |n: u32| {
                let digest =
                    ring::digest::digest(&ring::digest::SHA256, &(i * 2 + n).to_le_bytes());
                let mut h = [0u8; 32];
                h.copy_from_slice(digest.as_ref());
                h
            };
            let votes = [(honest(0), 1.0), (ground, 1.0), (honest(1), 1.0)];
            if published(3, &votes) == Some(1) {
                won += 1;
            }
        }
        assert!(
            (150..=250).contains(&won),
            "the ground hash won {won} of {battles} draws"
        );
    }

    #[test]
    fn majority_of_k_not_of_answers() {
        // Only one of three answered: it is all the answers, but not a majority of k.
        assert_eq!(verdict(3, ["a"]), None);
        assert_eq!(verdict(3, ["a", "a"]), Some("a"));
        assert_eq!(verdict(3, ["a", "b"]), None);
        assert_eq!(verdict(5, ["a", "a", "b", "b"]), None);
        assert_eq!(verdict(5, ["a", "a", "b", "a"]), Some("a"));
        assert_eq!(verdict(1, ["a"]), Some("a"));
    }

    #[test]
    fn reachability() {
        assert!(still_reachable(3, ["a"], 1));
        assert!(!still_reachable(3, ["a"], 0));
        assert!(!still_reachable(3, ["a", "b"], 0));
        assert!(!still_reachable(3, [], 1));
    }

    proptest! {
        #[test]
        fn no_single_vote_decides_when_k_at_least_3(k in 3usize..15, w in "[ab]") {
            prop_assert_eq!(verdict(k, [w.as_str()]), None);
        }

        #[test]
        fn a_verdict_has_a_strict_majority_and_is_unique(
            k in 1usize..12,
            votes in prop::collection::vec(prop::bool::ANY, 0..12),
        ) {
            let votes: Vec<&str> = votes.iter().take(k).map(|&b| if b { "a" } else { "b" }).collect();
            let a = votes.iter().filter(|&&v| v == "a").count();
            let b = votes.len() - a;
            match verdict(k, votes.iter().copied()) {
                Some("a") => prop_assert!(2 * a > k),
                Some("b") => prop_assert!(2 * b > k),
                Some(other) => prop_assert!(false, "unexpected {}", other),
                None => prop_assert!(2 * a <= k && 2 * b <= k),
            }
        }

        #[test]
        fn order_does_not_matter(mut votes in prop::collection::vec("[abc]", 0..9), k in 1usize..9) {
            let before = verdict(k, votes.iter().map(String::as_str)).map(str::to_owned);
            votes.reverse();
            let after = verdict(k, votes.iter().map(String::as_str)).map(str::to_owned);
            prop_assert_eq!(before, after);
        }
    }
}
