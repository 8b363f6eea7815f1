//! Battles as durable work: a row PENDING → RUNNING → COMPLETED | ERROR, claimed by workers
//! with a lease, settled once through consensus, readable with every vote.

pub mod late_votes;
mod routes;
pub mod store;
pub mod verdicts;
pub mod worker;

pub use late_votes::LateVoteRecorder;
pub use routes::router;
pub use verdicts::VerdictWriter;
pub use worker::BattleWorker;
