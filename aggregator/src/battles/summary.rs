//! The periodic battle summary: one `info` line per interval with how many battles were
//! settled and how (per-battle lines are at `debug`), so logs grow with time, not traffic.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::SettledBy;
use crate::consensus::Verdict;

/// Battles settled since the last summary, by how.
#[derive(Debug, Default)]
pub struct Tally {
    quorum: AtomicU64,
    fallback: AtomicU64,
    error: AtomicU64,
}

/// What one interval saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub quorum: u64,
    pub fallback: u64,
    pub error: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.quorum + self.fallback + self.error
    }
}

impl Tally {
    pub fn count(&self, verdict: &Verdict) {
        let counter = match SettledBy::of(verdict) {
            Some(SettledBy::Quorum) => &self.quorum,
            Some(SettledBy::Fallback) => &self.fallback,
            None => &self.error,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts since the last call, starting over.
    pub fn take(&self) -> Counts {
        Counts {
            quorum: self.quorum.swap(0, Ordering::Relaxed),
            fallback: self.fallback.swap(0, Ordering::Relaxed),
            error: self.error.swap(0, Ordering::Relaxed),
        }
    }
}

/// Logs a summary every `every` (nothing for an interval without battles) until shutdown,
/// then once more for what is left.
pub async fn run(tally: Arc<Tally>, every: Duration, shutdown: CancellationToken) {
    let secs = every.as_secs();
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        let stopping = tokio::select! {
            _ = ticks.tick() => false,
            _ = shutdown.cancelled() => true,
        };
        let counts = tally.take();
        if counts.total() > 0 {
            tracing::info!(
                settled = counts.total(),
                quorum = counts.quorum,
                fallback = counts.fallback,
                error = counts.error,
                interval_secs = secs,
                "battles settled"
            );
        }
        if stopping {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hero_protocol::BattleResult;

    #[test]
    fn counts_by_outcome_and_starts_over() {
        let tally = Tally::default();
        let result = BattleResult {
            winner: "c1".into(),
            battle_log: Vec::new(),
            battle_description: String::new(),
        };
        for _ in 0..3 {
            tally.count(&Verdict::Quorum {
                result: result.clone(),
            });
        }
        tally.count(&Verdict::Fallback {
            result,
            engine: "sim".into(),
            reason: "no quorum".into(),
        });
        tally.count(&Verdict::Error("unplayable".into()));
        let counts = tally.take();
        assert_eq!(
            counts,
            Counts {
                quorum: 3,
                fallback: 1,
                error: 1
            }
        );
        assert_eq!(counts.total(), 5);
        assert_eq!(tally.take(), Counts::default());
    }
}
