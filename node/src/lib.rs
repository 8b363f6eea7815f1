//! `hero-node`: what node operators run. Serves `POST /generate_battle` for the aggregator
//! from one [`hero_engine::BattleEngine`], and keeps itself in the aggregator's registry.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::sync::Arc;
//! let app = hero_node::Application::build(
//!     hero_node::NodeConfig::default(),
//!     Arc::new(hero_engine::Sim),
//! ).await?;
//! println!("{}", app.ready_line());
//! app.run_until_stopped(tokio_util::sync::CancellationToken::new()).await
//! # }
//! ```

mod app;
mod auth;
mod capacity;
mod config;
mod error;
mod extract;
mod identity;
mod lifecycle;
mod llm_config;
mod server;
mod stats;
pub mod telemetry;

pub use app::Application;
pub use config::{Cli, EngineKind, LogFormat, NodeConfig};
pub use extract::MAX_BODY_BYTES;
pub use llm_config::{LlmArgs, MissingSetting};
