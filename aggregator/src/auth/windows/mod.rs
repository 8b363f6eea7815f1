//! Rate-limit windows: how many hits a key (a player's bucket, a client address) had in the
//! last window. In this process by default; shared by every replica through Redis with
//! `--redis-url`, falling back to this process's count while Redis fails.

pub mod local;
pub mod redis;

use local::LocalWindows;

/// Refused: try again after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded {
    pub limit: usize,
    pub retry_after_secs: u64,
}

pub struct Windows {
    local: LocalWindows,
    shared: Option<redis::RedisWindows>,
}

impl Windows {
    pub fn local() -> Windows {
        Windows {
            local: LocalWindows::default(),
            shared: None,
        }
    }

    pub fn shared(redis: redis::RedisWindows) -> Windows {
        Windows {
            local: LocalWindows::default(),
            shared: Some(redis),
        }
    }

    /// Whether the windows are shared through Redis.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Counts one hit of `key` at `now_ms`, or refuses it when `limit` hits are in the window.
    pub async fn hit(
        &self,
        key: &str,
        limit: usize,
        window_ms: i64,
        now_ms: i64,
    ) -> Result<(), Exceeded> {
        if let Some(shared) = &self.shared {
            match shared.hit(key, limit, window_ms, now_ms).await {
                Ok(()) => return Ok(()),
                Err(Some(exceeded)) => return Err(exceeded),
                Err(None) => {
                    metrics::counter!(crate::http::metrics::RATE_LIMIT_REDIS_ERRORS).increment(1)
                }
            }
        }
        self.local.hit(key, limit, window_ms, now_ms)
    }
}
