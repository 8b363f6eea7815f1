//! Energy regeneration, computed from the last update: no job has to touch every player.
//!
//! A player below the maximum gains one point per period since `updated_at`; partial progress
//! towards the next point is kept by moving `updated_at` forward by whole periods only. At or
//! above the maximum nothing accumulates, so the clock restarts when energy is next spent.

/// The energy at `now` and the new `updated_at`, from the stored values.
pub fn regenerate(
    energy: i64,
    max: i64,
    updated_at_ms: i64,
    now_ms: i64,
    period_ms: i64,
) -> (i64, i64) {
    if energy >= max || period_ms <= 0 {
        return (energy, now_ms.max(updated_at_ms));
    }
    let elapsed = (now_ms - updated_at_ms).max(0);
    let gained = elapsed / period_ms;
    if energy.saturating_add(gained) >= max {
        (max, now_ms.max(updated_at_ms))
    } else {
        (energy + gained, updated_at_ms + gained * period_ms)
    }
}

/// When the next point arrives, if the player is below the maximum.
pub fn next_point_at(energy: i64, max: i64, updated_at_ms: i64, period_ms: i64) -> Option<i64> {
    (energy < max && period_ms > 0).then(|| updated_at_ms + period_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SIX_MIN: i64 = 360_000;

    #[test]
    fn one_point_per_period_keeping_partial_progress() {
        assert_eq!(regenerate(90, 100, 0, SIX_MIN - 1, SIX_MIN), (90, 0));
        assert_eq!(regenerate(90, 100, 0, SIX_MIN, SIX_MIN), (91, SIX_MIN));
        assert_eq!(
            regenerate(90, 100, 0, 3 * SIX_MIN + 5, SIX_MIN),
            (93, 3 * SIX_MIN)
        );
        assert_eq!(
            next_point_at(93, 100, 3 * SIX_MIN, SIX_MIN),
            Some(4 * SIX_MIN)
        );
    }

    #[test]
    fn stops_at_the_maximum_and_restarts_the_clock() {
        assert_eq!(
            regenerate(90, 100, 0, 60 * SIX_MIN, SIX_MIN),
            (100, 60 * SIX_MIN)
        );
        assert_eq!(
            regenerate(100, 100, 0, 5 * SIX_MIN, SIX_MIN),
            (100, 5 * SIX_MIN)
        );
        // A refund can lift energy above the maximum; it is kept, nothing more accrues.
        assert_eq!(
            regenerate(105, 100, 0, 5 * SIX_MIN, SIX_MIN),
            (105, 5 * SIX_MIN)
        );
        assert_eq!(next_point_at(100, 100, 0, SIX_MIN), None);
    }

    #[test]
    fn a_clock_that_goes_back_never_takes_energy() {
        assert_eq!(regenerate(50, 100, 1_000, 500, SIX_MIN), (50, 1_000));
    }

    proptest! {
        /// Reading at any intermediate time never changes the final amount (no drift).
        #[test]
        fn splitting_time_gives_the_same_energy(
            energy in 0i64..100, start in 0i64..1_000_000, mid in 0i64..10_000_000, more in 0i64..10_000_000
        ) {
            let direct = regenerate(energy, 100, start, start + mid + more, SIX_MIN);
            let (e1, t1) = regenerate(energy, 100, start, start + mid, SIX_MIN);
            let split = regenerate(e1, 100, t1, start + mid + more, SIX_MIN);
            prop_assert_eq!(direct.0, split.0);
        }

        #[test]
        fn never_exceeds_the_maximum_by_regeneration(
            energy in 0i64..100, since in 0i64..1_000_000, later in 0i64..100_000_000
        ) {
            let (e, t) = regenerate(energy, 100, since, since + later, SIX_MIN);
            prop_assert!(e <= 100 && e >= energy);
            prop_assert!(t <= since + later && t >= since);
        }
    }
}
