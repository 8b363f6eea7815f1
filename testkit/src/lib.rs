//! Test support shared by the workspace's tests, one copy of each:
//!
//! - [`database`]: a fresh database per test, a SQLite file or a new PostgreSQL database, and
//!   [`on_both_databases!`] to run a test on both;
//! - [`llm`]: local stand-ins for the Gemini and OpenAI-compatible APIs, in their real wire
//!   format, errors included;
//! - [`fixtures`]: fighters, battle requests and results used across the tests.
//!
//! It depends on no crate of the workspace but `hero-protocol`, so that every other crate can
//! dev-depend on it; helpers that need an aggregator or engine type live in the test crate that
//! uses them, built on the ones here.

pub mod database;
pub mod fixtures;
pub mod llm;

pub use database::{Backend, TestDb};
pub use llm::{FakeLlm, LlmBehavior, Recorded, Reply};
