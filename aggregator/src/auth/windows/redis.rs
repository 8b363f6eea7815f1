//! Sliding windows in Redis, shared by every replica: one sorted set per key holding the
//! times of its hits, trimmed, counted and added to by one Lua script (atomic on the server),
//! the seed's algorithm (8.2.1) without its race between counting and adding.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::Exceeded;
use super::local::retry_after_secs;

const SCRIPT: &str = r"
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return {0, tonumber(oldest[2])}
end
redis.call('ZADD', key, now, ARGV[4])
redis.call('PEXPIRE', key, window)
return {1, 0}
";

pub struct RedisWindows {
    connection: ConnectionManager,
    script: redis::Script,
    prefix: String,
}

impl RedisWindows {
    /// Connects (failing when Redis does not answer within a few seconds).
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<RedisWindows> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_millis(500))
            .set_max_delay(1_000)
            .set_number_of_retries(2);
        let connect = ConnectionManager::new_with_config(client, config);
        let connection = tokio::time::timeout(Duration::from_secs(5), connect)
            .await
            .map_err(|_| anyhow::anyhow!("Redis did not answer within 5 s"))??;
        Ok(RedisWindows {
            connection,
            script: redis::Script::new(SCRIPT),
            prefix: prefix.to_owned(),
        })
    }

    /// Counts one hit of `key`; `Err(None)` is Redis failing (the caller falls back).
    pub async fn hit(
        &self,
        key: &str,
        limit: usize,
        window_ms: i64,
        now_ms: i64,
    ) -> Result<(), Option<Exceeded>> {
        let member = format!("{now_ms}-{:016x}", rand::random::<u64>());
        let mut connection = self.connection.clone();
        let answer: redis::RedisResult<(i64, i64)> = self
            .script
            .key(format!("{}:rl:{key}", self.prefix))
            .arg(now_ms)
            .arg(window_ms)
            .arg(limit)
            .arg(member)
            .invoke_async(&mut connection)
            .await;
        match answer {
            Ok((1, _)) => Ok(()),
            Ok((_, oldest)) => Err(Some(Exceeded {
                limit,
                retry_after_secs: retry_after_secs(oldest, window_ms, now_ms),
            })),
            Err(e) => {
                tracing::warn!(error = %e, "Redis rate-limit check failed; counting locally");
                Err(None)
            }
        }
    }
}
