//! The Gemini engine: battles and character cards from `models/{model}:generateContent`,
//! with JSON output constrained by a response schema, retries on 429/5xx and validation.

mod schema;
mod settings;
mod wire;

pub use settings::GeminiSettings;

use async_trait::async_trait;
use hero_protocol::{BattleRequest, BattleResult};
use reqwest::header::HeaderValue;
use serde_json::Value;

use crate::llm::retry::{Failure, RetryPolicy, with_retries};
use crate::llm::{SUMMON_TEMPERATURE, extract, upstream};
use crate::prompt::{self, CharacterText, Prompt};
use crate::{BattleEngine, EngineError};

const PROVIDER: &str = "Gemini";

/// Battle generation with Google's Gemini API.
pub struct GeminiEngine {
    client: reqwest::Client,
    url: String,
    model: String,
    key: HeaderValue,
    settings: GeminiSettings,
    /// Battles returned after a repair.
    repaired: crate::llm::RepairCount,
}

impl std::fmt::Debug for GeminiEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeminiEngine")
            .field("url", &self.url)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl GeminiEngine {
    /// Checks the settings and builds the engine's HTTP client.
    pub fn new(settings: GeminiSettings) -> Result<Self, EngineError> {
        let key = settings.api_key.trim();
        if key.is_empty() {
            return Err(EngineError::Config(
                "the Gemini API key is empty".to_owned(),
            ));
        }
        let mut key = HeaderValue::from_str(key).map_err(|_| {
            EngineError::Config(
                "the Gemini API key has characters a header cannot carry".to_owned(),
            )
        })?;
        key.set_sensitive(true);
        let model = settings.model.trim();
        let model = model.strip_prefix("models/").unwrap_or(model).to_owned();
        let model_ok = !model.is_empty()
            && model
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !model_ok {
            return Err(EngineError::Config(format!(
                "{:?} is not a Gemini model name",
                settings.model
            )));
        }
        let base = settings.base_url.trim().trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(EngineError::Config(format!(
                "the Gemini base url {base:?} is not http(s)"
            )));
        }
        let url = format!("{base}/v1beta/models/{model}:generateContent");
        Ok(Self {
            client: upstream::client(settings.timeout)?,
            url,
            model,
            key,
            settings,
            repaired: crate::llm::RepairCount::default(),
        })
    }

    /// Writes a character card from a player's wish. The card is checked against the name,
    /// description and skill rules; a card that breaks them is `InvalidOutput`.
    pub async fn summon(
        &self,
        player_text: &str,
        rarity: u32,
    ) -> Result<CharacterText, EngineError> {
        let prompt = prompt::summon_prompt(player_text, rarity);
        let schema = schema::to_gemini(&prompt::schema::character());
        let text = self
            .complete(&prompt, &schema, SUMMON_TEMPERATURE, None)
            .await?;
        extract::character(&text)
    }

    /// One `generateContent` exchange, retried as the settings allow; the answer's text.
    async fn complete(
        &self,
        prompt: &Prompt,
        schema: &Value,
        temperature: f32,
        seed: Option<u32>,
    ) -> Result<String, EngineError> {
        let body = wire::GenerateContentRequest::new(
            &prompt.system,
            &prompt.user,
            wire::GenerationConfig {
                response_mime_type: "application/json",
                response_schema: schema,
                temperature,
                candidate_count: 1,
                seed,
                max_output_tokens: self.settings.max_output_tokens,
            },
        );
        let policy = RetryPolicy {
            max_retries: self.settings.max_retries,
            initial_backoff: self.settings.initial_backoff,
            max_backoff: self.settings.max_backoff,
        };
        let response = with_retries(policy, self.settings.timeout, || self.attempt(&body)).await?;
        response.into_text()
    }

    async fn attempt(
        &self,
        body: &wire::GenerateContentRequest<'_>,
    ) -> Result<wire::GenerateContentResponse, Failure> {
        let response = self
            .client
            .post(&self.url)
            .header("x-goog-api-key", self.key.clone())
            .json(body)
            .send()
            .await
            .map_err(|e| upstream::transport(PROVIDER, &e))?;
        let status = response.status();
        let header_hint = upstream::retry_after(response.headers());
        let bytes = upstream::read_body(PROVIDER, response).await?;
        if !status.is_success() {
            let (message, delay) =
                wire::parse_error(&bytes).unwrap_or_else(|| (upstream::body_excerpt(&bytes), None));
            return Err(upstream::status_failure(
                PROVIDER,
                status,
                &message,
                delay.or(header_hint),
            ));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            Failure::Fatal(EngineError::Upstream(format!(
                "Gemini answered {status} with an unreadable body ({e}): {}",
                upstream::body_excerpt(&bytes)
            )))
        })
    }
}

#[async_trait]
impl BattleEngine for GeminiEngine {
    fn kind(&self) -> &'static str {
        "gemini"
    }

    fn model(&self) -> Option<&str> {
        Some(&self.model)
    }

    async fn generate(&self, request: &BattleRequest) -> Result<BattleResult, EngineError> {
        let prompt = prompt::battle_prompt(request)?;
        let schema = schema::to_gemini(&prompt::schema::battle(extract::fighter_ids(request)));
        let seed = Some(prompt::wire_seed(request));
        let text = self
            .complete(&prompt, &schema, self.settings.temperature, seed)
            .await?;
        Ok(self.repaired.count(extract::battle(&text, request)?))
    }

    fn repaired_results(&self) -> u64 {
        self.repaired.get()
    }
}
