//! What the LLM engines share: retry policy, HTTP plumbing, extracting JSON from a model's
//! text, repairing a sloppy battle into a valid vote, the [`Summoner`] trait and the engine
//! factory.

pub(crate) mod extract;
mod factory;
pub(crate) mod repair;
pub(crate) mod retry;
pub(crate) mod upstream;

pub use factory::{EngineSettings, Summoner, build_engine, build_summoner};

/// Sampling temperature for character cards: inventive, unlike battles.
pub(crate) const SUMMON_TEMPERATURE: f32 = 0.9;

/// How many battles an engine returned only after [`repair`] changed them.
#[derive(Debug, Default)]
pub(crate) struct RepairCount(std::sync::atomic::AtomicU64);

impl RepairCount {
    /// Passes a battle through, counting it when it was repaired.
    pub(crate) fn count(
        &self,
        battle: (hero_protocol::BattleResult, bool),
    ) -> hero_protocol::BattleResult {
        if battle.1 {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        battle.0
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}
