//! Settled battles, kept in memory. A battle can still change after its verdict while the
//! calls that were running then end and their late votes are written; after that it never
//! changes, so its answer is served from memory with its ETag, and `If-None-Match` gets 304.
//! The replica that settled a battle knows the moment its last vote is written; any replica
//! knows it a node timeout (plus the writer's grace) after the verdict, since every call is
//! bounded by it. Bounded by bytes, and entries expire after ten minutes so a battle deleted
//! by retention does not linger.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;

use super::store::BattleView;
use crate::http::etag::Tagged;

/// How long an entry lives at most.
const TIME_TO_LIVE: Duration = Duration::from_secs(600);
/// Late votes are written in batches, normally within milliseconds of their calls' end; a
/// replica that did not settle the battle waits this long beyond the node timeout.
const WRITE_GRACE_MS: i64 = 60_000;
/// Battles remembered as complete before the time rule takes over.
const COMPLETE_ENTRIES: u64 = 262_144;

/// `Cache-Control` of a battle that can no longer change.
pub const FINAL: &str = "public, max-age=600";
/// `Cache-Control` of a battle still settling: ask again, with the ETag.
pub const CHANGING: &str = "no-cache";

/// See [`BattleCache::before_read`].
#[derive(Debug, Clone, Copy)]
pub struct BeforeRead {
    complete: bool,
    now_ms: i64,
}

pub struct BattleCache {
    /// `None` when turned off (`--battle-cache-mb 0`).
    cache: Option<Cache<String, Arc<Tagged>>>,
    /// Battles this replica settled whose last vote is written, until the time rule covers
    /// them.
    complete: Option<Cache<String, ()>>,
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
        let complete = (max_bytes > 0).then(|| {
            Cache::builder()
                .max_capacity(COMPLETE_ENTRIES)
                .time_to_live(node_timeout + Duration::from_millis(WRITE_GRACE_MS as u64))
                .build()
        });
        Self {
            cache,
            complete,
            final_after_ms: timeout_ms.saturating_add(WRITE_GRACE_MS),
        }
    }

    pub fn get(&self, id: &str) -> Option<Arc<Tagged>> {
        self.cache.as_ref()?.get(id)
    }

    /// Records that this replica wrote the last vote of battle `id` (settled).
    pub fn complete(&self, id: &str) {
        if let Some(complete) = &self.complete {
            complete.insert(id.to_owned(), ());
        }
        // Kept by the time rule before its last votes were written (a writer running behind):
        // read it again.
        if let Some(cache) = &self.cache {
            cache.invalidate(id);
        }
    }

    /// What is known before battle `id` is read: whether its last vote was written here, and
    /// the time. Taken before the read, so a vote written during the read cannot be missed.
    pub fn before_read(&self, id: &str, now_ms: i64) -> BeforeRead {
        BeforeRead {
            complete: self.complete.as_ref().is_some_and(|c| c.contains_key(id)),
            now_ms,
        }
    }

    /// Whether `view`, read after `before`, can no longer change.
    pub fn is_final(&self, view: &BattleView, before: BeforeRead) -> bool {
        let Some(at) = view.settled_at_ms else {
            return false;
        };
        before.complete || before.now_ms.saturating_sub(at) >= self.final_after_ms
    }

    /// Keeps the answer when the battle is final; returns whether it is.
    pub fn keep(&self, view: &BattleView, tagged: &Arc<Tagged>, before: BeforeRead) -> bool {
        let done = self.is_final(view, before);
        if let (true, Some(cache)) = (done, &self.cache) {
            cache.insert(view.id.clone(), Arc::clone(tagged));
        }
        done
    }
}
