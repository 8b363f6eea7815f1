//! Battles as durable work: a row PENDING → RUNNING → COMPLETED | ERROR, claimed by workers
//! with a lease, settled once through consensus, readable with every vote.

pub mod cache;
pub mod effects;
pub mod feed;
pub mod handoff;
pub mod intake;
pub mod late_votes;
pub mod results;
mod routes;
pub mod start;
pub mod status;
pub mod store;
pub mod summary;
pub mod verdicts;
pub mod worker;

pub use effects::{Settled, VerdictEffect, VerdictEffects};
pub use late_votes::LateVoteRecorder;
pub use routes::router;
pub use start::{Parts, Started, WorkerSettings, start};
pub use status::{SettledBy, Status};
pub use verdicts::VerdictWriter;
pub use worker::BattleWorker;
