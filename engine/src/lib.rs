//! Battle generation behind one trait: the deterministic [`Sim`] engine (the embedded
//! default), LLM engines, and [`validate`], which the aggregator runs on every vote.

mod error;
mod gemini;
mod llm;
mod openai;
mod prompt;
mod sim;
mod validate;

pub use error::EngineError;
pub use gemini::{GeminiEngine, GeminiSettings};
pub use llm::{EngineSettings, Summoner, build_engine, build_summoner};
pub use openai::{JsonSchemaMode, OpenAiEngine, OpenAiSettings};
pub use prompt::{
    CharacterText, Prompt, battle_prompt, request_prompt, starting_hp, summon_from_templates,
    summon_prompt,
};
pub use sim::Sim;
pub use validate::{MAX_DESCRIPTION_CHARS, MAX_TEXT_CHARS, ValidationError, validate};

use async_trait::async_trait;
use hero_protocol::{BattleRequest, BattleResult};

/// Something that turns a battle request into a battle result.
#[async_trait]
pub trait BattleEngine: Send + Sync {
    /// Engine kind as reported in `/health`: `sim`, `gemini`, `openai`.
    fn kind(&self) -> &'static str;
    /// Model name, for LLM engines.
    fn model(&self) -> Option<&str> {
        None
    }
    async fn generate(&self, request: &BattleRequest) -> Result<BattleResult, EngineError>;
    /// Battles returned after their arithmetic or winner had to be repaired (LLM engines).
    fn repaired_results(&self) -> u64 {
        0
    }
    /// How the model's answers are constrained (`json_schema`, `json_object+schema`), for
    /// engines that negotiate it.
    fn output_constraint(&self) -> Option<&'static str> {
        None
    }
}
