//! Consensus: fan a battle out to k selected nodes, validate their votes, settle by strict
//! majority of the k, fall back to local generation when no quorum forms.

mod call;
mod local_engines;
mod round;
pub mod sanitize;
pub mod tally;
mod vote;

pub use local_engines::{FallbackSettings, LocalEngines};
pub use round::{Consensus, ConsensusSettings, Decision, Pending, Verdict};
pub use vote::{Vote, VoteRole};
