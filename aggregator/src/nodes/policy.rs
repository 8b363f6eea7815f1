//! `NodesPolicy`: who may join the network and how nodes are judged.

use std::time::Duration;

use super::maintenance::Schedule;

#[derive(Clone)]
pub struct NodesPolicy {
    /// Shared token of an open network (no operator accounts); operators' own tokens otherwise.
    pub enrollment_token: Option<String>,
    /// Node URLs on loopback and private networks are accepted.
    pub allow_private_node_urls: bool,
    /// Seed-style nodes without an Ed25519 key are accepted.
    pub allow_unsigned_nodes: bool,
    /// Agreed verdicts a new node needs before its votes count (0: no probation).
    pub probation_votes: u64,
    /// Told to each node when it registers.
    pub heartbeat_interval_secs: u64,
    /// Background upkeep: flushes, syncs, offline and retention periods.
    pub schedule: Schedule,
    /// Local Sim nodes started in this process.
    pub local_nodes: usize,
}

impl NodesPolicy {
    /// Heartbeat age after which a node counts as offline.
    pub fn offline_after_ms(&self) -> i64 {
        self.schedule.offline_after_ms
    }
}

impl std::fmt::Debug for NodesPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodesPolicy")
            .field(
                "enrollment_token",
                &self.enrollment_token.as_ref().map(|_| "<redacted>"),
            )
            .field("allow_private_node_urls", &self.allow_private_node_urls)
            .field("allow_unsigned_nodes", &self.allow_unsigned_nodes)
            .field("probation_votes", &self.probation_votes)
            .field("heartbeat_interval_secs", &self.heartbeat_interval_secs)
            .field("schedule", &self.schedule)
            .field("local_nodes", &self.local_nodes)
            .finish()
    }
}

impl Default for NodesPolicy {
    fn default() -> Self {
        Self {
            enrollment_token: None,
            allow_private_node_urls: false,
            allow_unsigned_nodes: false,
            probation_votes: 20,
            heartbeat_interval_secs: 10,
            schedule: Schedule {
                flush_every: Duration::from_secs(2),
                sync_every: Duration::from_secs(5),
                offline_after_ms: 30_000,
                retention_ms: 86_400_000,
            },
            local_nodes: 0,
        }
    }
}
