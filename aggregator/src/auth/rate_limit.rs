//! Per-player rate limits: an exact sliding window (the seed's 8.2.1) kept in memory.
//!
//! The window lives in this process, so with several aggregator replicas behind a load
//! balancer each replica enforces the limit on its own share of the traffic.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

/// What a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// Every authenticated request.
    Requests,
    /// `POST /api/v1/characters`.
    Summons,
    /// `POST /api/v1/battles`.
    Battles,
}

impl Bucket {
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Requests => "requests",
            Bucket::Summons => "character creations",
            Bucket::Battles => "battle creations",
        }
    }
}

/// Requests allowed per window, by bucket.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub requests: usize,
    pub summons: usize,
    pub battles: usize,
    pub window_ms: i64,
}

impl Limits {
    fn of(&self, bucket: Bucket) -> usize {
        match bucket {
            Bucket::Requests => self.requests,
            Bucket::Summons => self.summons,
            Bucket::Battles => self.battles,
        }
    }
}

/// Refused: try again after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded {
    pub limit: usize,
    pub retry_after_secs: u64,
}

/// How often (in checks) idle windows are swept out of memory.
const SWEEP_EVERY: u64 = 4096;

pub struct RateLimiter {
    limits: Limits,
    windows: DashMap<(String, Bucket), VecDeque<i64>>,
    checks: AtomicU64,
}

impl RateLimiter {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            windows: DashMap::new(),
            checks: AtomicU64::new(0),
        }
    }

    /// Records one request by `player` in `bucket` at `now_ms`, or refuses it.
    pub fn check(&self, player: &str, bucket: Bucket, now_ms: i64) -> Result<(), Exceeded> {
        let limit = self.limits.of(bucket);
        let window = self.limits.window_ms;
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.windows
                .retain(|_, times| times.back().is_some_and(|&t| t > now_ms - window));
        }
        let mut times = self.windows.entry((player.to_owned(), bucket)).or_default();
        while times.front().is_some_and(|&t| t <= now_ms - window) {
            times.pop_front();
        }
        if times.len() >= limit {
            let oldest = times.front().copied().unwrap_or(now_ms);
            let wait_ms = (oldest + window - now_ms).max(1);
            return Err(Exceeded {
                limit,
                retry_after_secs: u64::try_from((wait_ms + 999) / 1000).unwrap_or(1),
            });
        }
        times.push_back(now_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> RateLimiter {
        RateLimiter::new(Limits {
            requests: 5,
            summons: 2,
            battles: 3,
            window_ms: 3_600_000,
        })
    }

    #[test]
    fn allows_the_limit_then_refuses_until_the_oldest_leaves_the_window() {
        let l = limiter();
        assert!(l.check("p", Bucket::Summons, 0).is_ok());
        assert!(l.check("p", Bucket::Summons, 1_000).is_ok());
        let refused = l.check("p", Bucket::Summons, 2_000).unwrap_err();
        assert_eq!(refused.limit, 2);
        assert_eq!(refused.retry_after_secs, 3_598);
        // The first request leaves the window at 3_600_000.
        assert!(l.check("p", Bucket::Summons, 3_599_999).is_err());
        assert!(l.check("p", Bucket::Summons, 3_600_000).is_ok());
    }

    #[test]
    fn players_and_buckets_are_separate() {
        let l = limiter();
        for _ in 0..2 {
            l.check("a", Bucket::Summons, 0).unwrap();
        }
        assert!(l.check("a", Bucket::Summons, 0).is_err());
        assert!(l.check("b", Bucket::Summons, 0).is_ok());
        assert!(l.check("a", Bucket::Battles, 0).is_ok());
    }

    #[test]
    fn refused_requests_do_not_extend_the_wait() {
        let l = limiter();
        for t in 0..5 {
            l.check("p", Bucket::Requests, t).unwrap();
        }
        for t in 5..100 {
            assert!(l.check("p", Bucket::Requests, t).is_err());
        }
        assert!(l.check("p", Bucket::Requests, 3_600_000).is_ok());
    }
}
