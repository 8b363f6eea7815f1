//! End-to-end test harness: starts the real `hero-aggregator` and `hero-node` binaries, fresh
//! databases on SQLite and PostgreSQL, and small in-test nodes that speak protocol v1.

pub mod database;
pub mod enroll;
pub mod fighters;
pub mod game;
pub mod llm;
pub mod process;
pub mod rogue;

pub use database::{Backend, TestDb};
pub use game::Player;
pub use llm::{FakeLlm, LlmBehavior};
pub use process::{Aggregator, AggregatorOptions, NodeProcess, free_port, run_to_exit};
pub use rogue::{Behavior, TestNode};

/// Runs an async end-to-end test once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::Backend::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::Backend::Postgres).await;
                }
            }
        )*
    };
}

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
