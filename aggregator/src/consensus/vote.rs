//! A vote: one node's answer for one battle, valid or not, with its latency and error.

use hero_protocol::BattleResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteRole {
    /// Chosen in the first selection.
    Selected,
    /// Chosen to replace a node that failed.
    Replacement,
}

impl VoteRole {
    pub fn as_str(self) -> &'static str {
        match self {
            VoteRole::Selected => "selected",
            VoteRole::Replacement => "replacement",
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
}

impl Vote {
    pub fn valid_winner(&self) -> Option<&str> {
        self.valid.then_some(self.winner.as_deref()).flatten()
    }
}
