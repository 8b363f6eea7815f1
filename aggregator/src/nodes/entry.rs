//! `NodeEntry`: one registered node as selection and heartbeats see it, and `Assignment`, a
//! slot of its capacity held for one call.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use hero_protocol::NodeInfo;
use hero_protocol::signing::PublicKey;

use super::reputation::{NodeCounters, VoteOutcome};

/// One registered node.
pub struct NodeEntry {
    pub id: String,
    pub name: String,
    pub url: String,
    pub api_key: Option<String>,
    pub token_hash: String,
    /// Ed25519 public key (hex): when set, every vote must be signed with it.
    pub public_key: Option<String>,
    /// `public_key` decoded, on the node's first vote (see [`NodeEntry::verifying_key`]).
    pub(super) decoded_key: OnceLock<Option<Box<PublicKey>>>,
    /// Who runs the node: an operator account, or in an open network its host address.
    pub operator: Option<String>,
    pub backend: Option<String>,
    /// The model behind the backend, as the node registered it.
    pub model: Option<String>,
    /// Weight used by selection (already clamped to the operator's maximum).
    pub weight: u32,
    pub max_concurrent: u32,
    pub last_heartbeat_ms: AtomicI64,
    /// Battles other aggregator replicas have in flight on the node, as of its last heartbeat
    /// (what it reported minus what this replica had in flight at that moment).
    pub others_requests: AtomicU32,
    /// Battles this aggregator has in flight on the node; shared with the entry a
    /// re-registration replaces, so calls still running release their slot on the new one.
    pub in_flight: Arc<AtomicU32>,
    pub left: AtomicBool,
    /// On probation: votes in the shadow until it has agreed with enough verdicts.
    pub probation: AtomicBool,
    /// Out of selection by an admin's decision.
    pub maintenance: AtomicBool,
    /// The node answered 503 (at capacity): not asked again before this time.
    pub busy_until_ms: AtomicI64,
    pub counters: Mutex<NodeCounters>,
    /// Heartbeat or counters changed since the last flush.
    pub dirty: AtomicBool,
    /// The counters as last written to (or read from) the database: flushes add the
    /// difference, so replicas sharing a database add up instead of overwriting each other.
    pub flushed: Mutex<NodeCounters>,
}

impl NodeEntry {
    /// A node with fresh counters, named after its id, with no key, token or API key; the
    /// rest as given (benchmarks and tests build registries of these).
    pub fn new(
        id: String,
        url: String,
        operator: Option<String>,
        weight: u32,
        max_concurrent: u32,
        last_heartbeat_ms: i64,
    ) -> Self {
        Self {
            name: id.clone(),
            id,
            url,
            api_key: None,
            token_hash: String::new(),
            public_key: None,
            decoded_key: OnceLock::new(),
            operator,
            backend: None,
            model: None,
            weight,
            max_concurrent,
            last_heartbeat_ms: AtomicI64::new(last_heartbeat_ms),
            others_requests: AtomicU32::new(0),
            in_flight: Arc::new(AtomicU32::new(0)),
            left: AtomicBool::new(false),
            probation: AtomicBool::new(false),
            maintenance: AtomicBool::new(false),
            busy_until_ms: AtomicI64::new(0),
            counters: Mutex::new(NodeCounters::default()),
            dirty: AtomicBool::new(false),
            flushed: Mutex::new(NodeCounters::default()),
        }
    }

    /// The node's public key, checked once, on its first vote, and kept as its 32 bytes:
    /// checking (decoding the point) costs about a tenth of a verification. A node that never
    /// votes (most of a large registry at any one time) keeps only the hex. `None` without a
    /// key or for one that is not a valid key (no signature then verifies).
    pub fn verifying_key(&self) -> Option<&PublicKey> {
        self.decoded_key
            .get_or_init(|| {
                self.public_key
                    .as_deref()
                    .and_then(PublicKey::parse)
                    .map(Box::new)
            })
            .as_deref()
    }

    pub fn is_online(&self, now_ms: i64, offline_after_ms: i64) -> bool {
        let hb = self.last_heartbeat_ms.load(Ordering::Relaxed);
        // Seed-style (unsigned) nodes heartbeat only once a minute.
        let limit = if self.public_key.is_none() {
            offline_after_ms.max(super::UNSIGNED_OFFLINE_AFTER_MS)
        } else {
            offline_after_ms
        };
        !self.left.load(Ordering::Relaxed) && hb > 0 && now_ms - hb <= limit
    }

    /// Online, not in maintenance, not busy: may be asked for a vote (capacity aside).
    pub fn is_available(&self, now_ms: i64, offline_after_ms: i64) -> bool {
        self.is_online(now_ms, offline_after_ms)
            && !self.maintenance.load(Ordering::Relaxed)
            && self.busy_until_ms.load(Ordering::Relaxed) <= now_ms
    }

    pub fn on_probation(&self) -> bool {
        self.probation.load(Ordering::Relaxed)
    }

    pub(crate) fn counters(&self) -> NodeCounters {
        match self.counters.lock() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Battles in flight on the node across every replica, as far as this one knows.
    pub fn load(&self) -> u32 {
        self.in_flight
            .load(Ordering::Relaxed)
            .saturating_add(self.others_requests.load(Ordering::Relaxed))
    }

    pub fn has_capacity(&self) -> bool {
        self.load() < self.max_concurrent
    }

    /// Takes one slot of the node's capacity; `false` when it is full (counting the calls
    /// other replicas have in flight on it).
    pub(crate) fn try_reserve(self: &Arc<Self>) -> bool {
        let others = self.others_requests.load(Ordering::Relaxed);
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n.saturating_add(others) < self.max_concurrent).then_some(n + 1)
            })
            .is_ok()
    }

    /// Takes the node's heartbeat report of its own load (at most its capacity: the report is
    /// the node's word).
    pub fn heartbeat(&self, now_ms: i64, reported_requests: u32) {
        self.last_heartbeat_ms.store(now_ms, Ordering::Relaxed);
        let mine = self.in_flight.load(Ordering::Relaxed);
        self.others_requests.store(
            reported_requests
                .min(self.max_concurrent)
                .saturating_sub(mine),
            Ordering::Relaxed,
        );
        self.dirty.store(true, Ordering::Release);
    }

    /// Records how a call to this node went; feeds reputation, the circuit breaker, the
    /// busy mark and probation (`probation_votes`: agreed verdicts that end it).
    pub fn record(&self, outcome: VoteOutcome, latency_ms: u64, now_ms: i64, probation_votes: u64) {
        if let VoteOutcome::Busy { retry_after_ms } = outcome {
            self.mark_busy(now_ms + retry_after_ms);
            return;
        }
        let mut counters = match self.counters.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        counters.record(outcome, latency_ms, now_ms);
        if self.on_probation() && counters.agreed_votes >= probation_votes {
            self.probation.store(false, Ordering::Relaxed);
            tracing::info!(node.id = %self.id, node.name = %self.name, agreed = counters.agreed_votes, "node finished probation");
        }
        self.dirty.store(true, Ordering::Release);
    }

    /// The node said it is at capacity: leave it alone until `until_ms`, at no cost.
    pub fn mark_busy(&self, until_ms: i64) {
        self.busy_until_ms.fetch_max(until_ms, Ordering::Relaxed);
    }

    pub fn status(&self, now_ms: i64, offline_after_ms: i64) -> &'static str {
        if !self.is_online(now_ms, offline_after_ms) {
            "offline"
        } else if self.maintenance.load(Ordering::Relaxed) {
            "maintenance"
        } else if self.counters().quarantined_until_ms > now_ms {
            "quarantined"
        } else if self.busy_until_ms.load(Ordering::Relaxed) > now_ms {
            "busy"
        } else {
            "online"
        }
    }

    pub fn info(&self, now_ms: i64, offline_after_ms: i64) -> NodeInfo {
        let c = self.counters();
        let hb = self.last_heartbeat_ms.load(Ordering::Relaxed);
        NodeInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            url: self.url.clone(),
            status: self.status(now_ms, offline_after_ms).into(),
            operator: self.operator.clone(),
            backend: self.backend.clone(),
            model: self.model.clone(),
            weight: self.weight,
            reputation: c.reputation,
            max_concurrent_requests: self.max_concurrent,
            current_requests: self.load(),
            total_requests: c.total_requests,
            successful_requests: c.successful_requests,
            avg_response_time_ms: c.avg_response_time_ms,
            agreement_rate: c.agreement_rate(),
            last_heartbeat_ms: (hb > 0).then_some(hb),
            probation: self.on_probation(),
            maintenance: self.maintenance.load(Ordering::Relaxed),
            signed: self.public_key.is_some(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use hero_protocol::signing::VoteSigner;

    fn node(public_key: Option<String>) -> NodeEntry {
        let mut node = NodeEntry::new("n1".into(), "http://127.0.0.1:1".into(), None, 1, 1, 0);
        node.public_key = public_key;
        node
    }

    #[test]
    fn a_key_is_decoded_on_first_use_and_kept() {
        let signer = VoteSigner::generate().unwrap();
        let node = node(Some(signer.public_key_hex()));
        assert!(
            node.decoded_key.get().is_none(),
            "nothing decoded before a vote"
        );
        let key = node.verifying_key().expect("a valid key");
        assert!(key.verifies(b"vote", &signer.sign(b"vote")));
        assert!(!key.verifies(b"other vote", &signer.sign(b"vote")));
        let again = node.verifying_key().expect("still there");
        assert!(std::ptr::eq(key, again), "decoded once");
        let stranger = VoteSigner::generate().unwrap();
        assert!(!again.verifies(b"vote", &stranger.sign(b"vote")));
    }

    #[test]
    fn no_key_or_an_unusable_one_gives_nothing_to_verify_with() {
        assert!(node(None).verifying_key().is_none());
        // The identity point: of small order, refused like any key that is not a point.
        let identity = format!("01{}", "00".repeat(31));
        assert!(node(Some(identity)).verifying_key().is_none());
        assert!(node(Some("not hex".into())).verifying_key().is_none());
    }
}
