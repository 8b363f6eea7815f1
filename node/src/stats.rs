//! Request counters behind `GET /stats`, kept in atomics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What happened to one authorized `POST /generate_battle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Outcome {
    /// The engine produced a result.
    Ok,
    /// The request could not be served (bad body, engine refused it).
    ClientError,
    /// The engine or its upstream failed.
    EngineError,
    /// No free slot: answered 503.
    Capacity,
}

impl Outcome {
    /// Every outcome, each at its own discriminant's index.
    pub const ALL: [Outcome; 4] = [
        Outcome::Ok,
        Outcome::ClientError,
        Outcome::EngineError,
        Outcome::Capacity,
    ];

    /// Label value for `hero_node_battles_total{result=...}`.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ClientError => "client_error",
            Outcome::EngineError => "engine_error",
            Outcome::Capacity => "capacity",
        }
    }
}

/// Lifetime counters of one node.
pub struct Stats {
    started: Instant,
    requests: AtomicU64,
    successes: AtomicU64,
    failures: AtomicU64,
    rejected_at_capacity: AtomicU64,
    /// Engine time summed over successes and failures, in microseconds.
    engine_micros: AtomicU64,
    /// How many requests `engine_micros` sums over.
    engine_runs: AtomicU64,
    /// Engine times of the latest answers, in milliseconds (at most [`RECENT`]).
    recent: std::sync::Mutex<std::collections::VecDeque<u64>>,
}

/// How many recent answer times `/health` takes its median over.
const RECENT: usize = 32;

/// A point-in-time copy of [`Stats`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatsSnapshot {
    pub requests: u64,
    pub successes: u64,
    pub failures: u64,
    pub rejected_at_capacity: u64,
    pub average_latency_ms: f64,
    pub uptime_secs: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            requests: AtomicU64::new(0),
            successes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            rejected_at_capacity: AtomicU64::new(0),
            engine_micros: AtomicU64::new(0),
            engine_runs: AtomicU64::new(0),
            recent: std::sync::Mutex::new(std::collections::VecDeque::with_capacity(RECENT)),
        }
    }

    /// Counts one authorized request; `elapsed` is the engine time, if the engine ran.
    pub fn record(&self, outcome: Outcome, elapsed: Option<Duration>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let counter = match outcome {
            Outcome::Ok => &self.successes,
            Outcome::ClientError | Outcome::EngineError => &self.failures,
            Outcome::Capacity => &self.rejected_at_capacity,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(elapsed) = elapsed {
            let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
            self.engine_micros.fetch_add(micros, Ordering::Relaxed);
            self.engine_runs.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut recent) = self.recent.lock() {
                if recent.len() == RECENT {
                    recent.pop_front();
                }
                recent.push_back(micros / 1000);
            }
        }
    }

    /// The median engine time of the latest answers (up to 32), once there is one.
    pub fn recent_latency_ms(&self) -> Option<u64> {
        let mut times: Vec<u64> = self.recent.lock().ok()?.iter().copied().collect();
        times.sort_unstable();
        times.get(times.len() / 2).copied()
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let successes = self.successes.load(Ordering::Relaxed);
        let failures = self.failures.load(Ordering::Relaxed);
        let runs = self.engine_runs.load(Ordering::Relaxed);
        let micros = self.engine_micros.load(Ordering::Relaxed);
        let average_latency_ms = if runs == 0 {
            0.0
        } else {
            micros as f64 / runs as f64 / 1000.0
        };
        StatsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            successes,
            failures,
            rejected_at_capacity: self.rejected_at_capacity.load(Ordering::Relaxed),
            average_latency_ms,
            uptime_secs: self.started.elapsed().as_secs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_sits_at_its_own_index() {
        for (index, outcome) in Outcome::ALL.into_iter().enumerate() {
            assert_eq!(outcome as usize, index, "{outcome:?}");
        }
    }

    #[test]
    fn outcomes_land_in_their_counters() {
        let stats = Stats::new();
        stats.record(Outcome::Ok, Some(Duration::from_millis(4)));
        stats.record(Outcome::EngineError, Some(Duration::from_millis(2)));
        stats.record(Outcome::Capacity, None);
        stats.record(Outcome::ClientError, None);
        let s = stats.snapshot();
        assert_eq!(s.requests, 4);
        assert_eq!(s.successes, 1);
        assert_eq!(s.failures, 2);
        assert_eq!(s.rejected_at_capacity, 1);
        assert!(
            (s.average_latency_ms - 3.0).abs() < 1e-9,
            "{}",
            s.average_latency_ms
        );
    }
}
