//! The aggregator's own engines: the fallback list a battle without quorum goes through
//! (Gemini when a key is configured, then Sim) and the summoner that writes character text.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hero_engine::{BattleEngine, GeminiEngine, GeminiSettings, Sim, Summoner};

/// What [`crate::consensus::Consensus`] and the game API generate with locally.
pub struct LocalEngines {
    /// Tried in order when no quorum forms; the last one is always the Sim engine.
    pub fallbacks: Vec<Arc<dyn BattleEngine>>,
    /// Character text from the LLM; `None` without a key (templates are used then).
    pub summoner: Option<Arc<dyn Summoner>>,
}

impl LocalEngines {
    /// Gemini (one engine and one connection pool for both uses) when a Gemini key is
    /// configured, else Sim only. An unusable Gemini setting is a start-up error, not a
    /// silent Sim.
    pub fn from_settings(settings: &FallbackSettings) -> anyhow::Result<Self> {
        let Some(gemini) = settings.gemini.clone() else {
            tracing::info!("fallback engines: sim (no --gemini-api-key)");
            return Ok(Self {
                fallbacks: vec![Arc::new(Sim)],
                summoner: None,
            });
        };
        let gemini = Arc::new(
            GeminiEngine::new(gemini).context("cannot set up the Gemini fallback engine")?,
        );
        tracing::info!(
            model = BattleEngine::model(gemini.as_ref()),
            "fallback engines: gemini, then sim; summoning with gemini"
        );
        Ok(Self {
            fallbacks: vec![gemini.clone(), Arc::new(Sim)],
            summoner: Some(gemini),
        })
    }
}

/// How the aggregator generates locally: Gemini when configured (a non-blank key), then Sim.
#[derive(Debug, Clone, Default)]
pub struct FallbackSettings {
    pub gemini: Option<GeminiSettings>,
}

impl FallbackSettings {
    /// Gemini with `key` (ignored when blank) at `base_url`, `model`, each call within `timeout`.
    pub fn gemini(key: Option<&str>, base_url: &str, model: &str, timeout: Duration) -> Self {
        let gemini = key
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|key| GeminiSettings {
                base_url: base_url.to_owned(),
                model: model.to_owned(),
                timeout,
                ..GeminiSettings::new(key)
            });
        Self { gemini }
    }
}
