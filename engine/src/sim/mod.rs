//! The Sim engine: deterministic, seeded, offline battles between two fighters.
//!
//! Integer arithmetic and our own generator only, so the same fighters and seed give a
//! byte-identical [`BattleResult`] on every machine; nodes running Sim therefore agree.

mod combat;
mod narration;
mod rng;

use async_trait::async_trait;
use hero_protocol::{BattleRequest, BattleResult, Fighter};

use crate::{BattleEngine, EngineError};

/// The deterministic battle engine: the embedded default and the aggregator's last fallback.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sim;

impl Sim {
    /// Rounds fought before the battle goes to the judges (most hp left wins).
    pub const MAX_ROUNDS: u32 = 20;
    /// Highest accepted strength, agility or luck; anything above is refused as absurd.
    pub const MAX_STAT: u32 = 10_000;
    /// Longest accepted fighter id, in bytes.
    pub const MAX_ID_BYTES: usize = 128;

    /// Fights a battle between exactly two fighters. Without a seed, one is derived from
    /// `battle_id`, so a battle id alone also pins the outcome.
    pub fn battle(
        &self,
        battle_id: &str,
        fighters: &[Fighter],
        seed: Option<u64>,
    ) -> Result<BattleResult, EngineError> {
        let pair = check_fighters(fighters)?;
        let seed = seed.unwrap_or_else(|| rng::fnv1a(battle_id));
        let bout = combat::fight(pair, seed, Self::MAX_ROUNDS);
        Ok(BattleResult {
            winner: pair[bout.winner].id.clone(),
            battle_description: narration::description(pair, &bout, Self::MAX_ROUNDS),
            battle_log: bout.log,
        })
    }
}

#[async_trait]
impl BattleEngine for Sim {
    fn kind(&self) -> &'static str {
        "sim"
    }

    async fn generate(&self, request: &BattleRequest) -> Result<BattleResult, EngineError> {
        let fighters = request.fighters.as_deref().ok_or_else(|| {
            EngineError::InvalidRequest("the sim engine needs `fighters`".to_owned())
        })?;
        self.battle(&request.battle_id, fighters, request.seed)
    }
}

/// The two fighters, if they make a fair fight; otherwise why not.
fn check_fighters(fighters: &[Fighter]) -> Result<[&Fighter; 2], EngineError> {
    let invalid = |reason: String| Err(EngineError::InvalidRequest(reason));
    let [a, b] = fighters else {
        return invalid(format!(
            "a battle needs exactly two fighters, got {}",
            fighters.len()
        ));
    };
    for (slot, f) in [a, b].into_iter().enumerate() {
        if f.id.trim().is_empty() {
            return invalid(format!("fighter {slot} has an empty id"));
        }
        if f.id.len() > Sim::MAX_ID_BYTES {
            return invalid(format!(
                "fighter {slot} has an id longer than {} bytes",
                Sim::MAX_ID_BYTES
            ));
        }
        if f.name.trim().is_empty() {
            return invalid(format!("fighter {slot} has an empty name"));
        }
        if !(1..=5).contains(&f.rarity) {
            return invalid(format!(
                "fighter {slot} has rarity {}, expected 1 to 5",
                f.rarity
            ));
        }
        let stats = [
            ("strength", f.strength),
            ("agility", f.agility),
            ("luck", f.luck),
        ];
        if let Some((stat, value)) = stats.into_iter().find(|(_, v)| *v > Sim::MAX_STAT) {
            return invalid(format!(
                "fighter {slot} has {stat} {value}, above the limit of {}",
                Sim::MAX_STAT
            ));
        }
    }
    if a.id == b.id {
        return invalid("both fighters have the same id".to_owned());
    }
    Ok([a, b])
}
