//! Settled battles, kept in memory. A battle can still change after its verdict while the
//! calls that were running then end and their late votes are written (each call is bounded
//! by the node timeout); after that it never changes, so its answer is served from memory
//! with its ETag, and `If-None-Match` gets 304. Bounded by bytes, and entries expire after
//! ten minutes so a battle deleted by retention does not linger.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;

use super::store::BattleView;
use crate::http::etag::Tagged;

/// How long an entry lives at most.
const TIME_TO_LIVE: Duration = Duration::from_secs(600);
/// Late votes are written in batches, shortly after their calls end.
const WRITE_GRACE_MS: i64 = 5_000;

/// `Cache-Control` of a battle that can no longer change.
pub const FINAL: &str = "public, max-age=600";
/// `Cache-Control` of a battle still settling: ask again, with the ETag.
pub const CHANGING: &str = "no-cache";

pub struct BattleCache {
    /// `None` when turned off (`--battle-cache-mb 0`).
    cache: Option<Cache<String, Arc<Tagged>>>,
    /// How long after its verdict a battle may still change.
    final_after_ms: i64,
}

impl BattleCache {
    /// Holds up to `max_bytes` of answers; a battle is final `node_timeout` after its verdict.
    pub fn new(max_bytes: u64, node_timeout: Duration) -> Self {
        let cache = (max_bytes > 0).then(|| {
            Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|id: &String, tagged: &Arc<Tagged>| {
                    tagged
                        .weight()
                        .saturating_add(u32::try_from(id.len()).unwrap_or(u32::MAX))
                })
                .time_to_live(TIME_TO_LIVE)
                .build()
        });
        let timeout_ms = i64::try_from(node_timeout.as_millis()).unwrap_or(i64::MAX);
        Self {
            cache,
            final_after_ms: timeout_ms.saturating_add(WRITE_GRACE_MS),
        }
    }

    pub fn get(&self, id: &str) -> Option<Arc<Tagged>> {
        self.cache.as_ref()?.get(id)
    }

    /// Whether `view` can no longer change at `now_ms`.
    pub fn is_final(&self, view: &BattleView, now_ms: i64) -> bool {
        view.settled_at_ms
            .is_some_and(|at| now_ms.saturating_sub(at) >= self.final_after_ms)
    }

    /// Keeps the answer when the battle is final; returns whether it is.
    pub fn keep(&self, view: &BattleView, tagged: &Arc<Tagged>, now_ms: i64) -> bool {
        let done = self.is_final(view, now_ms);
        if let (true, Some(cache)) = (done, &self.cache) {
            cache.insert(view.id.clone(), Arc::clone(tagged));
        }
        done
    }
}
