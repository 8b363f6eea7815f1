//! Per-player rate limits: an exact sliding window per (player, bucket), the seed's 8.2.1.
//! Counted in this process, or shared by every replica through Redis (`--redis-url`).

use std::sync::Arc;

use super::windows::{Exceeded, Windows};

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

    fn key(self) -> &'static str {
        match self {
            Bucket::Requests => "requests",
            Bucket::Summons => "summons",
            Bucket::Battles => "battles",
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

pub struct RateLimiter {
    limits: Limits,
    windows: Arc<Windows>,
}

impl RateLimiter {
    pub fn new(limits: Limits, windows: Arc<Windows>) -> Self {
        Self { limits, windows }
    }

    /// Records one request by `player` in `bucket` at `now_ms`, or refuses it.
    pub async fn check(&self, player: &str, bucket: Bucket, now_ms: i64) -> Result<(), Exceeded> {
        let key = format!("player:{player}:{}", bucket.key());
        self.windows
            .hit(&key, self.limits.of(bucket), self.limits.window_ms, now_ms)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn players_and_buckets_are_separate() {
        let l = RateLimiter::new(
            Limits {
                requests: 5,
                summons: 2,
                battles: 3,
                window_ms: 3_600_000,
            },
            Arc::new(Windows::local()),
        );
        for _ in 0..2 {
            l.check("a", Bucket::Summons, 0).await.unwrap();
        }
        let refused = l.check("a", Bucket::Summons, 1_000).await.unwrap_err();
        assert_eq!((refused.limit, refused.retry_after_secs), (2, 3_599));
        assert!(l.check("b", Bucket::Summons, 0).await.is_ok());
        assert!(l.check("a", Bucket::Battles, 0).await.is_ok());
    }
}
