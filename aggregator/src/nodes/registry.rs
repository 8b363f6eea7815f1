//! `NodeRegistry`: the in-memory view of every node that selection and heartbeats use.
//!
//! The database keeps the truth; this map is loaded from it at start, kept in sync with it
//! periodically (so several aggregator replicas see each other's nodes), and its dirty
//! counters and heartbeat times are flushed back in batches.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use hero_protocol::NodeInfo;

use super::reputation::{NodeCounters, VoteOutcome};
use super::selection::{Candidate, pick_from_order, weighted_order};

/// One registered node.
pub struct NodeEntry {
    pub id: String,
    pub name: String,
    pub url: String,
    pub api_key: Option<String>,
    pub token_hash: String,
    pub operator: Option<String>,
    pub backend: Option<String>,
    pub weight: u32,
    pub max_concurrent: u32,
    pub last_heartbeat_ms: AtomicI64,
    /// What the node itself reported in its last heartbeat.
    pub reported_requests: AtomicU32,
    /// Battles this aggregator has in flight on the node.
    pub in_flight: AtomicU32,
    pub left: AtomicBool,
    pub counters: Mutex<NodeCounters>,
    /// Heartbeat or counters changed since the last flush.
    pub dirty: AtomicBool,
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

#[derive(Default)]
pub struct NodeRegistry {
    nodes: DashMap<String, Arc<NodeEntry>>,
}

impl NodeRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, id: &str) -> Option<Arc<NodeEntry>> {
        self.nodes.get(id).map(|e| Arc::clone(e.value()))
    }

    /// Adds or replaces a node (a re-registration replaces its token and settings).
    pub fn upsert(&self, entry: NodeEntry) -> Arc<NodeEntry> {
        let entry = Arc::new(entry);
        self.nodes.insert(entry.id.clone(), Arc::clone(&entry));
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

    /// Chooses up to `k` online, healthy nodes with free capacity, weighted, at most one per
    /// operator, none of `exclude` nor of `exclude_operators`, and reserves a slot on each.
    pub fn assign(
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
