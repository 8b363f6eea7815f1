//! Hedged node calls: when a battle has no verdict after the pool's recent p95 answer time, one
//! backup node is asked for the seat of a node still thinking. Whichever of the two answers
//! validly first takes the seat and the other call is cancelled, so one straggler no longer sets
//! the battle's latency. A budget keeps hedges to a small share of all node calls.

use std::sync::Mutex;
use std::time::Duration;

/// Answers remembered for the percentile.
const WINDOW: usize = 1024;
/// Answers needed before the first hedge: too few say nothing about the pool.
const MIN_SAMPLES: usize = 64;
/// The percentile is recomputed after this many new answers, not on every one.
const RECOMPUTE_EVERY: usize = 32;
/// Hedges saved up at most, so a quiet spell does not buy a burst.
const MAX_CREDIT: f64 = 10.0;
/// No hedge sooner than this: below it the backup costs more than it could win.
const MIN_DELAY: Duration = Duration::from_micros(500);

#[derive(Debug, Clone, Copy)]
pub struct HedgeSettings {
    /// The percentile (0–100) of recent valid answer times after which a backup is asked;
    /// 0 turns hedging off.
    pub percentile: f64,
    /// Hedges allowed per node call (0.05: at most 5% extra calls).
    pub budget: f64,
}

impl HedgeSettings {
    pub const OFF: HedgeSettings = HedgeSettings {
        percentile: 0.0,
        budget: 0.0,
    };

    fn enabled(&self) -> bool {
        self.percentile > 0.0 && self.budget > 0.0
    }
}

/// Recent answer times of the pool and the hedge budget, shared by every round.
pub struct Hedging {
    settings: HedgeSettings,
    state: Mutex<State>,
}

struct State {
    /// Ring of recent valid answer times, in microseconds.
    samples: Vec<u32>,
    next: usize,
    since_recompute: usize,
    delay: Option<Duration>,
    credit: f64,
}

impl Hedging {
    pub fn new(settings: HedgeSettings) -> Self {
        Self {
            settings,
            state: Mutex::new(State {
                samples: Vec::with_capacity(WINDOW),
                next: 0,
                since_recompute: 0,
                delay: None,
                credit: 1.0,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remembers a counted node's valid answer time.
    pub fn observe(&self, latency: Duration) {
        if !self.settings.enabled() {
            return;
        }
        let micros = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        let mut state = self.state();
        if state.samples.len() < WINDOW {
            state.samples.push(micros);
        } else {
            let at = state.next;
            state.samples[at] = micros;
        }
        state.next = (state.next + 1) % WINDOW;
        state.since_recompute += 1;
        if state.samples.len() >= MIN_SAMPLES && state.since_recompute >= RECOMPUTE_EVERY {
            state.since_recompute = 0;
            state.delay = Some(percentile(&state.samples, self.settings.percentile).max(MIN_DELAY));
        }
    }

    /// How long a round waits before hedging: the pool's recent percentile, or `None` when
    /// hedging is off or the pool has not answered often enough yet.
    pub fn delay(&self) -> Option<Duration> {
        if !self.settings.enabled() {
            return None;
        }
        self.state().delay
    }

    /// Credits the budget for `calls` node calls started by a round.
    pub fn earn(&self, calls: usize) {
        if !self.settings.enabled() {
            return;
        }
        let mut state = self.state();
        state.credit = (state.credit + self.settings.budget * calls as f64).min(MAX_CREDIT);
    }

    /// Gives back a hedge that could not be started.
    pub fn refund(&self) {
        let mut state = self.state();
        state.credit = (state.credit + 1.0).min(MAX_CREDIT);
    }

    /// Spends one hedge from the budget; false when it is used up.
    pub fn spend(&self) -> bool {
        let mut state = self.state();
        if state.credit >= 1.0 {
            state.credit -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The `p`-th percentile (0–100) of `samples` (microseconds), nearest rank.
fn percentile(samples: &[u32], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    let (_, value, _) = sorted.select_nth_unstable(index);
    Duration::from_micros(u64::from(*value))
}

/// The two calls racing for one seat: the node that was slow and the backup asked for it.
#[derive(Debug)]
pub struct Race {
    pub slow: String,
    pub backup: String,
    /// Who took the seat with a valid answer, once one did.
    pub winner: Option<String>,
}

impl Race {
    pub fn involves(&self, node_id: &str) -> bool {
        self.slow == node_id || self.backup == node_id
    }

    /// The other call of the race.
    pub fn partner(&self, node_id: &str) -> &str {
        if self.slow == node_id {
            &self.backup
        } else {
            &self.slow
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on() -> Hedging {
        Hedging::new(HedgeSettings {
            percentile: 95.0,
            budget: 0.05,
        })
    }

    #[test]
    fn the_delay_is_the_recent_percentile_once_enough_answers_are_in() {
        let hedging = on();
        for ms in 1..MIN_SAMPLES as u64 {
            hedging.observe(Duration::from_millis(ms));
        }
        assert_eq!(hedging.delay(), None, "too few answers to know the pool");
        for ms in MIN_SAMPLES as u64..=100 {
            hedging.observe(Duration::from_millis(ms));
        }
        // 100 answers of 1..=100 ms: the 95th is 95 ms (recomputed every 32 answers, last
        // at the 96th answer: 95th of 1..=96 is 92 ms).
        let delay = hedging.delay().expect("a delay");
        assert!(
            (Duration::from_millis(90)..=Duration::from_millis(95)).contains(&delay),
            "{delay:?}"
        );
    }

    #[test]
    fn the_window_forgets_old_answers() {
        let hedging = on();
        for _ in 0..WINDOW {
            hedging.observe(Duration::from_millis(500));
        }
        for _ in 0..WINDOW {
            hedging.observe(Duration::from_millis(5));
        }
        assert_eq!(hedging.delay(), Some(Duration::from_millis(5)));
    }

    #[test]
    fn the_budget_allows_one_hedge_per_twenty_calls() {
        let hedging = on();
        assert!(hedging.spend(), "one hedge to start with");
        assert!(!hedging.spend());
        let mut hedges = 0;
        for _ in 0..1000 {
            hedging.earn(3);
            if hedging.spend() {
                hedges += 1;
            }
        }
        assert_eq!(hedges, 150, "5% of 3,000 calls");
    }

    #[test]
    fn off_means_never() {
        let hedging = Hedging::new(HedgeSettings::OFF);
        for _ in 0..WINDOW {
            hedging.observe(Duration::from_millis(1));
        }
        assert_eq!(hedging.delay(), None);
    }

    #[test]
    fn a_race_names_the_partner() {
        let race = Race {
            slow: "a".into(),
            backup: "b".into(),
            winner: None,
        };
        assert_eq!(race.partner("a"), "b");
        assert_eq!(race.partner("b"), "a");
        assert!(race.involves("b") && !race.involves("c"));
    }
}
