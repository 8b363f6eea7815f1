//! Consensus: fan a battle out to k selected nodes, validate their votes, settle by strict
//! majority of the k, fall back to local generation when no quorum forms.

mod call;
mod round;
pub mod tally;
mod vote;

pub use round::{Consensus, ConsensusSettings, Decision, Pending, Verdict};
pub use vote::{Vote, VoteRole};
