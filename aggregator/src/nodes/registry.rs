//! `NodeRegistry`: the in-memory view of every node that selection and heartbeats use.
//!
//! The database keeps the truth; this map is loaded from it at start, kept in sync with it
//! periodically (so several aggregator replicas see each other's nodes), and its dirty
//! counters and heartbeat times are flushed back in batches. Nodes gone longer than the
//! retention period leave the map (their rows and votes stay), so it stays bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use rand::seq::IndexedRandom;

pub use super::entry::{Assignment, NodeEntry};
use super::sampler::{Sampler, WeightIndex};
use super::selection::{Candidate, pick_from_order, weighted_order};

/// Pools up to this size are sampled exactly (an O(n) pass is cheaper than an index).
const EXACT_SELECTION_MAX: usize = 64;

#[derive(Default)]
pub struct NodeRegistry {
    nodes: DashMap<String, Arc<NodeEntry>>,
    /// Bumped when membership changes, so the sampling index is rebuilt.
    version: AtomicU64,
    sampler: Sampler,
}

impl NodeRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, id: &str) -> Option<Arc<NodeEntry>> {
        self.nodes.get(id).map(|e| Arc::clone(e.value()))
    }

    /// Adds or replaces a node (a re-registration replaces its token and settings). A
    /// replaced node keeps its in-flight count and any quarantine: registering again is no way
    /// out of the circuit breaker.
    pub fn upsert(&self, mut entry: NodeEntry) -> Arc<NodeEntry> {
        if let Some(old) = self.get(&entry.id) {
            entry.in_flight = Arc::clone(&old.in_flight);
            let before = old.snapshot_counters();
            let counters = match entry.counters.get_mut() {
                Ok(c) => c,
                Err(poisoned) => poisoned.into_inner(),
            };
            counters.quarantined_until_ms = before.quarantined_until_ms;
            counters.consecutive_failures = before.consecutive_failures;
            entry.busy_until_ms =
                std::sync::atomic::AtomicI64::new(old.busy_until_ms.load(Ordering::Relaxed));
            entry.others_requests.store(
                old.others_requests.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
        }
        let entry = Arc::new(entry);
        self.nodes.insert(entry.id.clone(), Arc::clone(&entry));
        self.version.fetch_add(1, Ordering::AcqRel);
        entry
    }

    /// Marks membership or eligibility as changed: the sampling index is rebuilt once.
    pub fn changed(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// Forgets nodes that left, or stopped heartbeating, before `cutoff_ms` (their rows stay
    /// in the database); returns how many were forgotten.
    pub fn forget_gone(&self, cutoff_ms: i64) -> usize {
        let before = self.nodes.len();
        self.nodes.retain(|_, n| {
            let hb = n.last_heartbeat_ms.load(Ordering::Relaxed);
            hb >= cutoff_ms || n.in_flight.load(Ordering::Relaxed) > 0
        });
        let forgotten = before - self.nodes.len();
        if forgotten > 0 {
            self.changed();
        }
        forgotten
    }

    pub fn remove(&self, id: &str) {
        if self.nodes.remove(id).is_some() {
            self.changed();
        }
    }

    pub fn all(&self) -> Vec<Arc<NodeEntry>> {
        self.nodes.iter().map(|e| Arc::clone(e.value())).collect()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn online_count(&self, now_ms: i64, offline_after_ms: i64) -> usize {
        self.nodes
            .iter()
            .filter(|e| e.is_online(now_ms, offline_after_ms))
            .count()
    }

    /// Whether an online, healthy node outside the exclusions exists that is only busy (at
    /// capacity): then a battle short of nodes should wait for a free slot, not fall back.
    /// Without `believe_word`, only nodes holding calls of this replica count (their capacity
    /// surely comes back), not those full by their own report alone.
    pub fn has_busy_candidates(
        &self,
        exclude: &[String],
        exclude_operators: &[String],
        now_ms: i64,
        offline_after_ms: i64,
        believe_word: bool,
    ) -> bool {
        self.nodes.iter().any(|e| {
            let n = e.value();
            // Nodes that said they are busy count: their capacity comes back.
            n.is_online(now_ms, offline_after_ms)
                && !n.maintenance.load(Ordering::Relaxed)
                && !n.on_probation()
                && !exclude.contains(&n.id)
                && n.operator
                    .as_ref()
                    .is_none_or(|op| !exclude_operators.contains(op))
                && n.counters().selection_weight(n.weight, now_ms) > 0.0
                && (believe_word || n.in_flight.load(Ordering::Relaxed) > 0)
        })
    }

    /// Chooses up to `k` online, healthy nodes off probation with free capacity, weighted, at
    /// most one per operator, none of `exclude` nor of `exclude_operators`, and reserves a
    /// slot on each.
    ///
    /// Large pools are sampled from a prefix-sum index in O(k log n); small pools, and draws
    /// that keep hitting unavailable nodes, use the exact O(n) method.
    pub fn assign(
        &self,
        k: usize,
        exclude: &[String],
        exclude_operators: &[String],
        now_ms: i64,
        offline_after_ms: i64,
    ) -> Vec<Assignment> {
        if self.nodes.len() <= EXACT_SELECTION_MAX || k == 0 {
            return self.assign_exact(k, exclude, exclude_operators, now_ms, offline_after_ms);
        }
        let index = self.index(now_ms, offline_after_ms);
        let mut rng = rand::rng();
        let mut chosen: Vec<Assignment> = Vec::with_capacity(k);
        let mut operators: Vec<String> = exclude_operators.to_vec();
        let mut skip: Vec<String> = exclude.to_vec();
        let mut draws = 0;
        while chosen.len() < k && draws < 16 * k + 32 {
            draws += 1;
            let Some(node) = index.draw(&mut rng) else {
                break;
            };
            if skip.contains(&node.id)
                || node
                    .operator
                    .as_ref()
                    .is_some_and(|op| operators.contains(op))
                || !node.is_available(now_ms, offline_after_ms)
                || node.on_probation()
                || node
                    .snapshot_counters()
                    .selection_weight(node.weight, now_ms)
                    <= 0.0
                || !node.try_reserve()
            {
                continue;
            }
            skip.push(node.id.clone());
            if let Some(op) = &node.operator {
                operators.push(op.clone());
            }
            chosen.push(Assignment {
                node: Arc::clone(node),
            });
        }
        if chosen.len() < k {
            let rest = self.assign_exact(
                k - chosen.len(),
                &skip,
                &operators,
                now_ms,
                offline_after_ms,
            );
            chosen.extend(rest);
        }
        chosen
    }

    /// Up to `n` nodes on probation, chosen uniformly, for shadow votes: at most one per
    /// operator and none of `exclude_operators` (the operators already seated).
    pub fn assign_shadows(
        &self,
        n: usize,
        exclude_operators: &[String],
        now_ms: i64,
        offline_after_ms: i64,
    ) -> Vec<Assignment> {
        if n == 0 {
            return Vec::new();
        }
        let candidates: Vec<Arc<NodeEntry>> = self
            .nodes
            .iter()
            .filter(|e| {
                let node = e.value();
                node.on_probation()
                    && node.is_available(now_ms, offline_after_ms)
                    && node.has_capacity()
                    && node
                        .operator
                        .as_ref()
                        .is_none_or(|op| !exclude_operators.contains(op))
                    && node
                        .snapshot_counters()
                        .selection_weight(node.weight, now_ms)
                        > 0.0
            })
            .map(|e| Arc::clone(e.value()))
            .collect();
        let mut operators: Vec<&str> = Vec::new();
        let mut chosen = Vec::new();
        let mut rng = rand::rng();
        let shuffled = candidates.choose_multiple(&mut rng, candidates.len());
        for node in shuffled {
            if chosen.len() == n {
                break;
            }
            if let Some(op) = node.operator.as_deref() {
                if operators.contains(&op) {
                    continue;
                }
                operators.push(op);
            }
            if node.try_reserve() {
                chosen.push(Assignment {
                    node: Arc::clone(node),
                });
            }
        }
        chosen
    }

    /// The sampling index, rebuilt when stale or when membership changed. One battle
    /// rebuilds it; battles that arrive meanwhile use the previous one.
    fn index(&self, now_ms: i64, offline_after_ms: i64) -> Arc<WeightIndex> {
        let version = self.version.load(Ordering::Acquire);
        if let Some(index) = self.sampler.fresh(version, now_ms) {
            return index;
        }
        let Some(_rebuilding) = self.sampler.try_rebuild() else {
            if let Some(index) = self.sampler.current() {
                return index;
            }
            return self.build_index(version, now_ms, offline_after_ms);
        };
        self.build_index(version, now_ms, offline_after_ms)
    }

    fn build_index(&self, version: u64, now_ms: i64, offline_after_ms: i64) -> Arc<WeightIndex> {
        let nodes: Vec<Arc<NodeEntry>> = self
            .nodes
            .iter()
            .filter(|e| e.is_available(now_ms, offline_after_ms) && !e.on_probation())
            .map(|e| Arc::clone(e.value()))
            .collect();
        let weights: Vec<f64> = nodes
            .iter()
            .map(|n| n.counters().selection_weight(n.weight, now_ms))
            .collect();
        let index = Arc::new(WeightIndex::build(nodes, &weights, now_ms, version));
        self.sampler.store(Arc::clone(&index));
        index
    }

    /// The exact method: an O(n) weighted order over every eligible node.
    fn assign_exact(
        &self,
        k: usize,
        exclude: &[String],
        exclude_operators: &[String],
        now_ms: i64,
        offline_after_ms: i64,
    ) -> Vec<Assignment> {
        let eligible: Vec<Arc<NodeEntry>> = self
            .nodes
            .iter()
            .filter(|e| {
                let n = e.value();
                n.is_available(now_ms, offline_after_ms)
                    && !n.on_probation()
                    && n.has_capacity()
                    && !exclude.contains(&n.id)
                    && n.operator
                        .as_ref()
                        .is_none_or(|op| !exclude_operators.contains(op))
            })
            .map(|e| Arc::clone(e.value()))
            .collect();
        let weights: Vec<f64> = eligible
            .iter()
            .map(|n| n.counters().selection_weight(n.weight, now_ms))
            .collect();
        let candidates: Vec<Candidate<'_>> = eligible
            .iter()
            .zip(&weights)
            .map(|(n, &weight)| Candidate {
                operator: n.operator.as_deref(),
                weight,
            })
            .collect();
        let order = weighted_order(&candidates, &mut rand::rng());
        let chosen = pick_from_order(&candidates, &order, k, |i| eligible[i].try_reserve());
        chosen
            .into_iter()
            .map(|i| Assignment {
                node: Arc::clone(&eligible[i]),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nodes::reputation::VoteOutcome;

    fn node(i: usize, weight: u32, operator: Option<String>) -> NodeEntry {
        let mut n = NodeEntry::new(
            format!("n{i}"),
            format!("http://10.0.0.{i}"),
            operator,
            weight,
            1_000_000,
            1_000,
        );
        // Signed nodes: the long grace of unsigned ones would keep n2 online below.
        n.public_key = Some("k".into());
        n
    }

    #[test]
    fn large_pools_respect_weights_and_rules() {
        let registry = NodeRegistry::new();
        // 200 nodes; n0 is 10x heavier than each of the others.
        for i in 0..200 {
            registry.upsert(node(
                i,
                if i == 0 { 10 } else { 1 },
                Some(format!("op{}", i % 100)),
            ));
        }
        let trials = 4_000;
        let mut heavy_first = 0;
        for _ in 0..trials {
            let chosen = registry.assign(3, &[], &[], 1_000, 10_000);
            assert_eq!(chosen.len(), 3);
            let ops: std::collections::HashSet<_> =
                chosen.iter().map(|a| a.node.operator.clone()).collect();
            assert_eq!(ops.len(), 3, "one node per operator");
            if chosen[0].node.id == "n0" {
                heavy_first += 1;
            }
        }
        // P(first = n0) = 10 / (10 + 199) ≈ 0.048.
        let share = f64::from(heavy_first) / f64::from(trials);
        assert!(
            (share - 10.0 / 209.0).abs() < 0.015,
            "heavy node first {share}"
        );
    }

    #[test]
    fn reregistration_keeps_slots_and_quarantine() {
        let registry = NodeRegistry::new();
        let mut n = node(1, 1, None);
        n.max_concurrent = 1;
        registry.upsert(n);
        let held = registry.assign(1, &[], &[], 1_000, 10_000);
        assert_eq!(held.len(), 1);
        held[0].node.record(VoteOutcome::Failed, 1, 1_000, 0);
        held[0].node.record(VoteOutcome::Failed, 1, 1_000, 0);
        held[0].node.record(VoteOutcome::Failed, 1, 1_000, 0);
        let mut again = node(1, 1, None);
        again.max_concurrent = 1;
        registry.upsert(again);
        assert!(
            registry.assign(1, &[], &[], 1_000, 10_000).is_empty(),
            "still quarantined"
        );
        drop(held);
        let fresh = registry.get("n1").unwrap();
        assert_eq!(
            fresh.in_flight.load(Ordering::Relaxed),
            0,
            "the old call released its slot"
        );
    }

    #[test]
    fn capacity_is_reserved_and_released() {
        let registry = NodeRegistry::new();
        let mut n = node(1, 1, None);
        n.max_concurrent = 1;
        registry.upsert(n);
        let first = registry.assign(1, &[], &[], 1_000, 10_000);
        assert_eq!(first.len(), 1);
        assert!(
            registry.assign(1, &[], &[], 1_000, 10_000).is_empty(),
            "full node skipped"
        );
        drop(first);
        assert_eq!(registry.assign(1, &[], &[], 1_000, 10_000).len(), 1);
    }

    #[test]
    fn offline_left_and_excluded_nodes_are_never_chosen() {
        let registry = NodeRegistry::new();
        for i in 0..100 {
            registry.upsert(node(i, 1, None));
        }
        registry
            .get("n1")
            .unwrap()
            .left
            .store(true, Ordering::Relaxed);
        registry
            .get("n2")
            .unwrap()
            .last_heartbeat_ms
            .store(1, Ordering::Relaxed);
        let exclude = vec!["n3".to_string()];
        for _ in 0..500 {
            for a in registry.assign(5, &exclude, &[], 100_000, 99_500) {
                assert!(!["n1", "n2", "n3"].contains(&a.node.id.as_str()));
            }
        }
    }
}

#[cfg(test)]
mod trust_tests {
    use super::*;
    use crate::nodes::reputation::VoteOutcome;

    fn node(i: usize, operator: &str, probation: bool) -> NodeEntry {
        let n = NodeEntry::new(
            format!("n{i}"),
            format!("http://10.0.0.{i}"),
            Some(operator.to_string()),
            1,
            2,
            1_000,
        );
        n.probation.store(probation, Ordering::Relaxed);
        n
    }

    #[test]
    fn probation_nodes_only_shadow_until_they_agree_enough() {
        let registry = NodeRegistry::new();
        registry.upsert(node(1, "a", false));
        registry.upsert(node(2, "b", true));
        for _ in 0..50 {
            let seats = registry.assign(3, &[], &[], 1_000, 10_000);
            assert_eq!(seats.len(), 1, "the probation node takes no counting seat");
            assert_eq!(seats[0].node.id, "n1");
        }
        let shadows = registry.assign_shadows(2, &["a".to_string()], 1_000, 10_000);
        assert_eq!(shadows.len(), 1);
        assert_eq!(shadows[0].node.id, "n2");
        let probationer = registry.get("n2").unwrap();
        probationer.record(VoteOutcome::Agreed, 1, 1_000, 2);
        assert!(probationer.on_probation());
        probationer.record(VoteOutcome::Agreed, 1, 1_000, 2);
        assert!(!probationer.on_probation(), "two agreed verdicts end it");
        drop(shadows);
        assert_eq!(registry.assign(3, &[], &[], 1_000, 10_000).len(), 2);
    }

    #[test]
    fn busy_maintenance_and_other_replicas_load_keep_a_node_out() {
        let registry = NodeRegistry::new();
        let n = registry.upsert(node(1, "a", false));
        n.record(
            VoteOutcome::Busy {
                retry_after_ms: 5_000,
            },
            1,
            1_000,
            0,
        );
        assert!(registry.assign(1, &[], &[], 1_000, 60_000).is_empty());
        assert_eq!(n.snapshot_counters().reputation, 1.0, "busy costs nothing");
        assert_eq!(registry.assign(1, &[], &[], 6_001, 60_000).len(), 1);
        n.maintenance.store(true, Ordering::Relaxed);
        assert!(registry.assign(1, &[], &[], 6_001, 60_000).is_empty());
        n.maintenance.store(false, Ordering::Relaxed);
        // Another replica has both slots busy: the heartbeat says so.
        n.heartbeat(6_001, 2);
        assert!(registry.assign(1, &[], &[], 6_001, 60_000).is_empty());
        n.heartbeat(6_002, 1);
        assert_eq!(registry.assign(1, &[], &[], 6_002, 60_000).len(), 1);
    }

    #[test]
    fn a_node_full_by_its_word_alone_is_waited_for_only_while_its_word_is_believed() {
        let registry = NodeRegistry::new();
        let n = registry.upsert(node(1, "a", false));
        // A heartbeat claiming more than the node's capacity is cut to it.
        n.heartbeat(1_000, u32::MAX);
        assert_eq!(n.info(1_000, 60_000).current_requests, 2);
        assert!(registry.assign(1, &[], &[], 1_000, 60_000).is_empty());
        assert!(registry.has_busy_candidates(&[], &[], 1_000, 60_000, true));
        assert!(
            !registry.has_busy_candidates(&[], &[], 1_000, 60_000, false),
            "full by its word alone: not waited for once the round stops believing it"
        );
        // This replica's own calls on it always come back.
        n.heartbeat(1_000, 1);
        let held = registry.assign(1, &[], &[], 1_000, 60_000);
        assert_eq!(held.len(), 1);
        n.heartbeat(1_000, 2);
        assert!(registry.has_busy_candidates(&[], &[], 1_000, 60_000, false));
        drop(held);
    }

    #[test]
    fn gone_nodes_are_forgotten() {
        let registry = NodeRegistry::new();
        registry.upsert(node(1, "a", false));
        let old = registry.upsert(node(2, "b", false));
        old.last_heartbeat_ms.store(10, Ordering::Relaxed);
        assert_eq!(registry.forget_gone(500), 1);
        assert!(registry.get("n2").is_none());
        assert!(registry.get("n1").is_some());
    }
}
