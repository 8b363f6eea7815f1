//! What the LLM engines share: retry policy, HTTP plumbing, extracting JSON from a model's
//! text, the [`Summoner`] trait and the engine factory.

pub(crate) mod extract;
mod factory;
pub(crate) mod retry;
pub(crate) mod upstream;

pub use factory::{EngineSettings, Summoner, build_engine, build_summoner};

/// Sampling temperature for character cards: inventive, unlike battles.
pub(crate) const SUMMON_TEMPERATURE: f32 = 0.9;
