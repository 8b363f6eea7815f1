//! `NodeRegistry`: the in-memory view of every node that selection and heartbeats use.
//!
//! The database keeps the truth; this map is loaded from it at start, kept in sync with it
//! periodically (so several aggregator replicas see each other's nodes), and its dirty
//! counters and heartbeat times are flushed back in batches.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use hero_protocol::NodeInfo;

use super::reputation::{NodeCounters, VoteOutcome};
use super::sampler::{Sampler, WeightIndex};
use super::selection::{Candidate, pick_from_order, weighted_order};

/// One registered node.
pub struct NodeEntry {
    pub id: String,
    pub name: String,
    pub url: String,
    pub api_key: Option<String>,
    pub token_hash: String,
    /// Ed25519 public key (hex): when set, every vote must be signed with it.
    pub public_key: Option<String>,
    pub operator: Option<String>,
    pub backend: Option<String>,
    pub weight: u32,
    pub max_concurrent: u32,
    pub last_heartbeat_ms: AtomicI64,
    /// What the node itself reported in its last heartbeat.
    pub reported_requests: AtomicU32,
    /// Battles this aggregator has in flight on the node; shared with the entry a
    /// re-registration replaces, so calls still running release their slot on the new one.
    pub in_flight: Arc<AtomicU32>,
    pub left: AtomicBool,
    pub counters: Mutex<NodeCounters>,
    /// Heartbeat or counters changed since the last flush.
    pub dirty: AtomicBool,
    /// The counters as last written to (or read from) the database: flushes add the
    /// difference, so replicas sharing a database add up instead of overwriting each other.
    pub flushed: Mutex<NodeCounters>,
}

impl NodeEntry {
    pub fn is_online(&self, now_ms: i64, offline_after_ms: i64) -> bool {
        let hb = self.last_heartbeat_ms.load(Ordering::Relaxed);
        !self.left.load(Ordering::Relaxed) && hb > 0 && now_ms - hb <= offline_after_ms
    }

    fn counters(&self) -> NodeCounters {
        match self.counters.lock() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Takes one slot of the node's capacity; `false` when it is full.
    fn try_reserve(self: &Arc<Self>) -> bool {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_concurrent).then_some(n + 1)
            })
            .is_ok()
    }

    /// Records how a call to this node went; feeds reputation and the circuit breaker.
    pub fn record(&self, outcome: VoteOutcome, latency_ms: u64, now_ms: i64) {
        let mut counters = match self.counters.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        counters.record(outcome, latency_ms, now_ms);
        self.dirty.store(true, Ordering::Release);
    }

    pub fn info(&self, now_ms: i64, offline_after_ms: i64) -> NodeInfo {
        let c = self.counters();
        let hb = self.last_heartbeat_ms.load(Ordering::Relaxed);
        NodeInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            url: self.url.clone(),
            status: if self.is_online(now_ms, offline_after_ms) {
                if c.quarantined_until_ms > now_ms {
                    "quarantined".into()
                } else {
                    "online".into()
                }
            } else {
                "offline".into()
            },
            operator: self.operator.clone(),
            backend: self.backend.clone(),
            weight: self.weight,
            reputation: c.reputation,
            max_concurrent_requests: self.max_concurrent,
            current_requests: self
                .in_flight
                .load(Ordering::Relaxed)
                .max(self.reported_requests.load(Ordering::Relaxed)),
            total_requests: c.total_requests,
            successful_requests: c.successful_requests,
            avg_response_time_ms: c.avg_response_time_ms,
            agreement_rate: c.agreement_rate(),
            last_heartbeat_ms: (hb > 0).then_some(hb),
        }
    }

    pub fn snapshot_counters(&self) -> NodeCounters {
        self.counters()
    }
}

/// A slot of a node's capacity held for one call; released on drop.
pub struct Assignment {
    pub node: Arc<NodeEntry>,
}

impl Drop for Assignment {
    fn drop(&mut self) {
        self.node.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

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
        }
        let entry = Arc::new(entry);
        self.nodes.insert(entry.id.clone(), Arc::clone(&entry));
        self.version.fetch_add(1, Ordering::AcqRel);
        entry
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
    pub fn has_busy_candidates(
        &self,
        exclude: &[String],
        exclude_operators: &[String],
        now_ms: i64,
        offline_after_ms: i64,
    ) -> bool {
        self.nodes.iter().any(|e| {
            let n = e.value();
            n.is_online(now_ms, offline_after_ms)
                && !exclude.contains(&n.id)
                && n.operator
                    .as_ref()
                    .is_none_or(|op| !exclude_operators.contains(op))
                && n.counters().selection_weight(n.weight, now_ms) > 0.0
        })
    }

    /// Chooses up to `k` online, healthy nodes with free capacity, weighted, at most one per
    /// operator, none of `exclude` nor of `exclude_operators`, and reserves a slot on each.
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
                || !node.is_online(now_ms, offline_after_ms)
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

    /// The sampling index, rebuilt when stale or when membership changed.
    fn index(&self, now_ms: i64, offline_after_ms: i64) -> Arc<WeightIndex> {
        let version = self.version.load(Ordering::Acquire);
        if let Some(index) = self.sampler.fresh(version, now_ms) {
            return index;
        }
        let nodes: Vec<Arc<NodeEntry>> = self
            .nodes
            .iter()
            .filter(|e| e.is_online(now_ms, offline_after_ms))
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
                n.is_online(now_ms, offline_after_ms)
                    && n.in_flight.load(Ordering::Relaxed) < n.max_concurrent
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

    fn node(i: usize, weight: u32, operator: Option<String>) -> NodeEntry {
        NodeEntry {
            id: format!("n{i}"),
            name: format!("n{i}"),
            url: format!("http://10.0.0.{i}"),
            api_key: None,
            token_hash: String::new(),
            public_key: None,
            operator,
            backend: None,
            weight,
            max_concurrent: 1_000_000,
            last_heartbeat_ms: AtomicI64::new(1_000),
            reported_requests: AtomicU32::new(0),
            in_flight: Arc::new(AtomicU32::new(0)),
            left: AtomicBool::new(false),
            counters: Mutex::new(NodeCounters::default()),
            dirty: AtomicBool::new(false),
            flushed: Mutex::new(NodeCounters::default()),
        }
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
        held[0].node.record(VoteOutcome::Failed, 1, 1_000);
        held[0].node.record(VoteOutcome::Failed, 1, 1_000);
        held[0].node.record(VoteOutcome::Failed, 1, 1_000);
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
