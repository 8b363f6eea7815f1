//! The aggregator's library from the outside, one test binary: verdicts written in batches
//! against real databases (`settle`), and the game's time rules with a hand-moved clock
//! (`clock`). Each runs on a SQLite file and on a fresh PostgreSQL database.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers and bodies outside #[test] functions"
)]

mod backup;
mod betting;
mod checkpoint;
mod clock;
mod fair_play;
mod google;
mod handoff;
mod harness;
mod ladder;
mod ledger;
mod limits;
mod rewards;
mod roles;
mod rush;
mod scheduler;
mod settle;
mod tls;
mod web3;

use hero_aggregator::db::Db;

/// The aggregator's database handle on a test database (`hero_testkit::TestDb::url`).
pub async fn connect(url: &str) -> Db {
    Db::connect(url, 4).await.unwrap()
}
