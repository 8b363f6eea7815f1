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

/// The error stored for a call that lost its hedge race.
pub const CANCELLED: &str = "cancelled: the other node asked for this seat answered first";

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
    /// How long the call took, precisely (`latency_ms` is what is stored).
    pub elapsed: std::time::Duration,
    /// The call lost a hedge race (its partner took the seat) and was cancelled, or its answer
    /// came too late to count: never counted, no change to the node's reputation.
    pub superseded: bool,
    /// The call timed out with less time than a whole node timeout, because the round's
    /// deadline came first: not the node's failure, so no change to its reputation.
    pub cut_short: bool,
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
            elapsed: std::time::Duration::ZERO,
            superseded: false,
            cut_short: false,
        }
    }

    /// A call cancelled because the other call racing for its seat answered first.
    pub fn cancelled(node_id: String, role: VoteRole, elapsed: std::time::Duration) -> Vote {
        Vote {
            latency_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            elapsed,
            superseded: true,
            error: Some(CANCELLED.into()),
            ..Vote::lost(node_id, role)
        }
    }

    /// Turns a vote that lost its hedge race after all (both answers arrived together) into
    /// an uncounted one; the answer is dropped.
    pub fn supersede(&mut self) {
        self.superseded = true;
        self.valid = false;
        self.winner = None;
        self.result = None;
        self.result_hash = None;
        self.error = Some(CANCELLED.into());
    }

    /// Whether the node's reputation learns from this vote.
    pub fn judged(&self) -> bool {
        !self.superseded && !self.cut_short
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
