//! Building engines from settings, for the node's and the aggregator's wiring.

use std::sync::Arc;

use async_trait::async_trait;

use crate::gemini::{GeminiEngine, GeminiSettings};
use crate::openai::{OpenAiEngine, OpenAiSettings};
use crate::prompt::CharacterText;
use crate::{BattleEngine, EngineError, Sim};

/// Which engine to run and how to reach it.
#[derive(Debug, Clone)]
pub enum EngineSettings {
    /// The deterministic offline engine.
    Sim,
    Gemini(GeminiSettings),
    OpenAi(OpenAiSettings),
}

/// The engine for `settings`, each LLM engine with its own pooled HTTP client.
pub fn build_engine(settings: EngineSettings) -> Result<Arc<dyn BattleEngine>, EngineError> {
    Ok(match settings {
        EngineSettings::Sim => Arc::new(Sim),
        EngineSettings::Gemini(s) => Arc::new(GeminiEngine::new(s)?),
        EngineSettings::OpenAi(s) => Arc::new(OpenAiEngine::new(s)?),
    })
}

/// Something that writes a character card from a player's wish.
#[async_trait]
pub trait Summoner: Send + Sync {
    async fn summon(&self, player_text: &str, rarity: u32) -> Result<CharacterText, EngineError>;
}

#[async_trait]
impl Summoner for GeminiEngine {
    async fn summon(&self, player_text: &str, rarity: u32) -> Result<CharacterText, EngineError> {
        GeminiEngine::summon(self, player_text, rarity).await
    }
}

#[async_trait]
impl Summoner for OpenAiEngine {
    async fn summon(&self, player_text: &str, rarity: u32) -> Result<CharacterText, EngineError> {
        OpenAiEngine::summon(self, player_text, rarity).await
    }
}

/// The LLM summoner for `settings`, or `None` for Sim (use
/// [`crate::summon_from_templates`] then, and also when the summoner fails).
pub fn build_summoner(settings: EngineSettings) -> Result<Option<Arc<dyn Summoner>>, EngineError> {
    Ok(match settings {
        EngineSettings::Sim => None,
        EngineSettings::Gemini(s) => Some(Arc::new(GeminiEngine::new(s)?)),
        EngineSettings::OpenAi(s) => Some(Arc::new(OpenAiEngine::new(s)?)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_each_kind() {
        assert_eq!(build_engine(EngineSettings::Sim).unwrap().kind(), "sim");
        let gemini = build_engine(EngineSettings::Gemini(GeminiSettings::new("k"))).unwrap();
        assert_eq!(
            (gemini.kind(), gemini.model()),
            ("gemini", Some("gemini-2.0-flash"))
        );
        let openai = OpenAiSettings::new("http://localhost:11434", "llama3.1");
        let openai = build_engine(EngineSettings::OpenAi(openai)).unwrap();
        assert_eq!(
            (openai.kind(), openai.model()),
            ("openai", Some("llama3.1"))
        );
        assert!(build_summoner(EngineSettings::Sim).unwrap().is_none());
    }

    #[test]
    fn bad_settings_are_config_errors() {
        let empty_key = build_engine(EngineSettings::Gemini(GeminiSettings::new(" ")));
        assert!(matches!(empty_key, Err(EngineError::Config(_))));
        let bad_model = GeminiSettings {
            model: "../admin".into(),
            ..GeminiSettings::new("k")
        };
        assert!(matches!(
            GeminiEngine::new(bad_model),
            Err(EngineError::Config(_))
        ));
        let no_model = OpenAiSettings::new("http://localhost:8000", "");
        assert!(matches!(
            OpenAiEngine::new(no_model),
            Err(EngineError::Config(_))
        ));
        let bad_url = OpenAiSettings::new("localhost:8000", "m");
        assert!(matches!(
            OpenAiEngine::new(bad_url),
            Err(EngineError::Config(_))
        ));
    }
}
