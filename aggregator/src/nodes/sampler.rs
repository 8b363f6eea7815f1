//! Weighted sampling in O(k log n) for large node pools: a prefix-sum index over the nodes,
//! rebuilt at most every few hundred milliseconds, sampled with rejection of nodes that are
//! already chosen, excluded, full or gone. Drawing with rejection of repeats is sequential
//! weighted sampling without replacement — the same distribution as the exact method in
//! `selection`, which small pools (and unlucky draws) still use.

use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use rand::Rng;

use super::registry::NodeEntry;

/// How long an index may be used before it is rebuilt (weights and membership drift).
pub const MAX_AGE_MS: i64 = 250;

/// Nodes with their cumulative selection weights, as of `built_at_ms`.
pub struct WeightIndex {
    pub built_at_ms: i64,
    pub version: u64,
    nodes: Vec<Arc<NodeEntry>>,
    cumulative: Vec<f64>,
}

impl WeightIndex {
    pub fn build(
        nodes: Vec<Arc<NodeEntry>>,
        weights: &[f64],
        built_at_ms: i64,
        version: u64,
    ) -> Self {
        let mut total = 0.0;
        let cumulative = weights
            .iter()
            .map(|w| {
                total += if w.is_finite() && *w > 0.0 { *w } else { 0.0 };
                total
            })
            .collect();
        Self {
            built_at_ms,
            version,
            nodes,
            cumulative,
        }
    }

    pub fn total(&self) -> f64 {
        self.cumulative.last().copied().unwrap_or(0.0)
    }

    /// One node drawn with probability proportional to its weight.
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<&Arc<NodeEntry>> {
        let total = self.total();
        if total <= 0.0 {
            return None;
        }
        let r = rng.random::<f64>() * total;
        let i = self.cumulative.partition_point(|&c| c <= r);
        self.nodes.get(i.min(self.nodes.len().saturating_sub(1)))
    }
}

/// The current index, shared by every battle.
#[derive(Default)]
pub struct Sampler {
    index: RwLock<Option<Arc<WeightIndex>>>,
    /// Held by the one battle rebuilding the index.
    rebuilding: Mutex<()>,
}

impl Sampler {
    /// The right to rebuild, unless another battle is rebuilding right now.
    pub fn try_rebuild(&self) -> Option<MutexGuard<'_, ()>> {
        self.rebuilding.try_lock().ok()
    }

    /// The index as it is, however old.
    pub fn current(&self) -> Option<Arc<WeightIndex>> {
        self.index.read().ok()?.clone()
    }

    /// The index if it is fresh for `version` at `now_ms`.
    pub fn fresh(&self, version: u64, now_ms: i64) -> Option<Arc<WeightIndex>> {
        let guard = self.index.read().ok()?;
        guard
            .as_ref()
            .filter(|ix| ix.version == version && now_ms - ix.built_at_ms <= MAX_AGE_MS)
            .cloned()
    }

    pub fn store(&self, index: Arc<WeightIndex>) {
        if let Ok(mut guard) = self.index.write() {
            *guard = Some(index);
        }
    }
}
