//! A vote: one node's answer for one battle, valid or not, with its latency and error.

use hero_protocol::BattleResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteRole {
    /// Chosen in the first selection.
    Selected,
    /// Chosen to replace a node that failed.
    Replacement,
    /// A node on probation, asked beside the k seats: recorded and compared, never counted.
    Shadow,
}

impl VoteRole {
    pub fn as_str(self) -> &'static str {
        match self {
            VoteRole::Selected => "selected",
            VoteRole::Replacement => "replacement",
            VoteRole::Shadow => "shadow",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Vote {
    pub node_id: String,
    pub role: VoteRole,
    /// The winner the node named, when it sent a parseable result.
    pub winner: Option<String>,
    pub result: Option<BattleResult>,
    pub latency_ms: u64,
    pub valid: bool,
    pub error: Option<String>,
    /// SHA-256 of the (sanitised) result as JSON: votes agree byte for byte when equal.
    pub result_hash: Option<[u8; 32]>,
    /// The node's reputation when it was asked.
    pub reputation: f64,
    /// The node answered 503 at capacity: asked to come back after this many milliseconds.
    pub busy_retry_after_ms: Option<i64>,
    /// When the answer arrived.
    pub answered_at: std::time::Instant,
    /// A shadow vote that arrived after the verdict was written (when it could have been
    /// copied from the published battle): it earns no agreement. Set by the battle worker.
    pub after_verdict: bool,
}

impl Vote {
    /// A vote for a call that never ended normally (its task was lost).
    pub fn lost(node_id: String, role: VoteRole) -> Vote {
        Vote {
            node_id,
            role,
            winner: None,
            result: None,
            latency_ms: 0,
            valid: false,
            error: Some("the call was lost".into()),
            result_hash: None,
            reputation: 0.0,
            busy_retry_after_ms: None,
            answered_at: std::time::Instant::now(),
            after_verdict: false,
        }
    }

    pub fn valid_winner(&self) -> Option<&str> {
        self.valid.then_some(self.winner.as_deref()).flatten()
    }

    /// The winner this vote counts for in the tally: shadow votes count for nobody.
    pub fn counted_winner(&self) -> Option<&str> {
        (self.role != VoteRole::Shadow)
            .then(|| self.valid_winner())
            .flatten()
    }
}
