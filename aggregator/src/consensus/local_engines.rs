//! The aggregator's own engines: the fallback list a battle without quorum goes through
//! (Gemini when a key is configured, then Sim) and the summoner that writes character text.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hero_engine::{BattleEngine, GeminiEngine, GeminiSettings, Sim, Summoner};

use crate::cli::ServeArgs;

/// What [`crate::consensus::Consensus`] and the game API generate with locally.
pub struct LocalEngines {
    /// Tried in order when no quorum forms; the last one is always the Sim engine.
    pub fallbacks: Vec<Arc<dyn BattleEngine>>,
    /// Character text from the LLM; `None` without a key (templates are used then).
    pub summoner: Option<Arc<dyn Summoner>>,
}

impl LocalEngines {
    /// Gemini (one engine and one connection pool for both uses) when `--gemini-api-key` is
    /// set, else Sim only. An unusable Gemini setting is a start-up error, not a silent Sim.
    pub fn from_settings(settings: &ServeArgs) -> anyhow::Result<Self> {
        let Some(gemini) = gemini_settings(settings) else {
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

/// The Gemini settings from the command line, when a (non-blank) key is configured.
fn gemini_settings(settings: &ServeArgs) -> Option<GeminiSettings> {
    let key = settings.gemini_api_key.as_deref().map(str::trim)?;
    if key.is_empty() {
        return None;
    }
    Some(GeminiSettings {
        base_url: settings.gemini_base_url.clone(),
        model: settings.gemini_model.clone(),
        timeout: Duration::from_secs(settings.llm_timeout_secs),
        ..GeminiSettings::new(key)
    })
}
