//! End-to-end test harness: starts the real `hero-aggregator` and `hero-node` binaries, and
//! small in-test nodes that speak protocol v1. Fresh databases (`TestDb`, `on_both_databases!`),
//! fake LLM providers and fixtures come from `hero-testkit`; the tests are in `e2e/`.

pub mod enroll;
pub mod fighters;
pub mod game;
pub mod process;
pub mod rogue;
pub mod schema;

pub use game::Player;
pub use process::{Aggregator, AggregatorOptions, NodeProcess, free_port, run_to_exit};
pub use rogue::{Behavior, TestNode};

/// Polls `check` every 100 ms until it returns `Some`, or panics after `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
