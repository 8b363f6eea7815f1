//! Sliding windows kept in this process: the exact request times of each key within its
//! window, swept as the map grows so a flood of keys cannot grow it without bound.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

use super::Exceeded;

/// How often (in hits) idle windows are swept out of memory.
const SWEEP_EVERY: u64 = 4096;

#[derive(Default)]
pub struct LocalWindows {
    /// Per key: its window length and the times of the hits inside it.
    windows: DashMap<String, (i64, VecDeque<i64>)>,
    hits: AtomicU64,
}

/// How long until the oldest hit leaves the window, rounded up to whole seconds.
pub fn retry_after_secs(oldest_ms: i64, window_ms: i64, now_ms: i64) -> u64 {
    let wait_ms = (oldest_ms + window_ms - now_ms).max(1);
    u64::try_from((wait_ms + 999) / 1000).unwrap_or(1)
}

impl LocalWindows {
    /// Counts one hit of `key` at `now_ms`, or refuses it when `limit` hits are in the window.
    pub fn hit(
        &self,
        key: &str,
        limit: usize,
        window_ms: i64,
        now_ms: i64,
    ) -> Result<(), Exceeded> {
        if self.hits.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.windows
                .retain(|_, (window, times)| times.back().is_some_and(|&t| t > now_ms - *window));
        }
        let mut entry = self
            .windows
            .entry(key.to_owned())
            .or_insert_with(|| (window_ms, VecDeque::new()));
        let (window, times) = &mut *entry;
        *window = window_ms;
        while times.front().is_some_and(|&t| t <= now_ms - window_ms) {
            times.pop_front();
        }
        if times.len() >= limit {
            let oldest = times.front().copied().unwrap_or(now_ms);
            return Err(Exceeded {
                limit,
                retry_after_secs: retry_after_secs(oldest, window_ms, now_ms),
            });
        }
        times.push_back(now_ms);
        Ok(())
    }

    /// Keys held in memory (for the bounds test).
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    #[test]
    fn allows_the_limit_then_refuses_until_the_oldest_leaves_the_window() {
        let w = LocalWindows::default();
        assert!(w.hit("p", 2, HOUR, 0).is_ok());
        assert!(w.hit("p", 2, HOUR, 1_000).is_ok());
        let refused = w.hit("p", 2, HOUR, 2_000).unwrap_err();
        assert_eq!(refused.limit, 2);
        assert_eq!(refused.retry_after_secs, 3_598);
        assert!(w.hit("p", 2, HOUR, HOUR - 1).is_err());
        assert!(w.hit("p", 2, HOUR, HOUR).is_ok());
    }

    #[test]
    fn keys_are_separate_and_refusals_do_not_extend_the_wait() {
        let w = LocalWindows::default();
        for t in 0..5 {
            w.hit("a", 5, HOUR, t).unwrap();
        }
        for t in 5..100 {
            assert!(w.hit("a", 5, HOUR, t).is_err());
        }
        assert!(w.hit("b", 5, HOUR, 100).is_ok());
        assert!(w.hit("a", 5, HOUR, HOUR).is_ok());
    }

    #[test]
    fn idle_keys_are_swept() {
        let w = LocalWindows::default();
        for i in 0..SWEEP_EVERY - 1 {
            w.hit(&format!("k{i}"), 1, 1_000, 0).unwrap();
        }
        assert_eq!(w.len(), usize::try_from(SWEEP_EVERY - 1).unwrap());
        // The next hit sweeps: every window above is over.
        w.hit("late", 1, 1_000, 10_000).unwrap();
        assert_eq!(w.len(), 1);
    }
}
