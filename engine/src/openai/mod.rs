//! The OpenAI-compatible engine: battles and character cards from `/v1/chat/completions`
//! on Ollama, vLLM, llama.cpp server or OpenAI, with retries on 429/5xx and validation.

mod settings;
mod wire;

pub use settings::OpenAiSettings;

use async_trait::async_trait;
use hero_protocol::{BattleRequest, BattleResult};
use reqwest::header::HeaderValue;
use serde_json::Value;

use crate::llm::retry::{Failure, RetryPolicy, with_retries};
use crate::llm::{SUMMON_TEMPERATURE, extract, upstream};
use crate::prompt::{self, CharacterText, Prompt};
use crate::{BattleEngine, EngineError};

const PROVIDER: &str = "the OpenAI-compatible server";

/// Battle generation with any server that speaks OpenAI's chat completions.
pub struct OpenAiEngine {
    client: reqwest::Client,
    url: String,
    bearer: Option<HeaderValue>,
    settings: OpenAiSettings,
}

impl std::fmt::Debug for OpenAiEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiEngine")
            .field("url", &self.url)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl OpenAiEngine {
    /// Checks the settings and builds the engine's HTTP client.
    pub fn new(settings: OpenAiSettings) -> Result<Self, EngineError> {
        if settings.model.trim().is_empty() {
            return Err(EngineError::Config(
                "no model name for the OpenAI-compatible server".to_owned(),
            ));
        }
        let base = settings.base_url.trim().trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(EngineError::Config(format!(
                "the base url {base:?} is not http(s)"
            )));
        }
        let url = if base.ends_with("/v1") {
            format!("{base}/chat/completions")
        } else {
            format!("{base}/v1/chat/completions")
        };
        let bearer = match settings.api_key.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                    EngineError::Config(
                        "the API key has characters a header cannot carry".to_owned(),
                    )
                })?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        Ok(Self {
            client: upstream::client(settings.timeout)?,
            url,
            bearer,
            settings,
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
        let format = self.response_format("character_card", prompt::schema::character());
        let text = self
            .complete(&prompt, format, SUMMON_TEMPERATURE, None)
            .await?;
        extract::character(&text)
    }

    fn response_format(&self, name: &str, schema: Value) -> Value {
        wire::response_format(name, schema, self.settings.json_schema)
    }

    /// One chat completion, retried as the settings allow; the answer's text.
    async fn complete(
        &self,
        prompt: &Prompt,
        response_format: Value,
        temperature: f32,
        seed: Option<u32>,
    ) -> Result<String, EngineError> {
        let body = wire::ChatRequest {
            model: self.settings.model.trim(),
            messages: [
                wire::Message {
                    role: "system",
                    content: &prompt.system,
                },
                wire::Message {
                    role: "user",
                    content: &prompt.user,
                },
            ],
            response_format,
            temperature,
            seed,
            max_tokens: self.settings.max_output_tokens,
            stream: false,
        };
        let policy = RetryPolicy {
            max_retries: self.settings.max_retries,
            initial_backoff: self.settings.initial_backoff,
            max_backoff: self.settings.max_backoff,
        };
        let response = with_retries(policy, self.settings.timeout, || self.attempt(&body)).await?;
        response.into_text()
    }

    async fn attempt(&self, body: &wire::ChatRequest<'_>) -> Result<wire::ChatResponse, Failure> {
        let mut request = self.client.post(&self.url).json(body);
        if let Some(bearer) = &self.bearer {
            request = request.header(reqwest::header::AUTHORIZATION, bearer.clone());
        }
        let response = request
            .send()
            .await
            .map_err(|e| upstream::transport(PROVIDER, &e))?;
        let status = response.status();
        let hint = upstream::retry_after(response.headers());
        let bytes = upstream::read_body(PROVIDER, response).await?;
        if !status.is_success() {
            let message =
                wire::parse_error(&bytes).unwrap_or_else(|| upstream::body_excerpt(&bytes));
            return Err(upstream::status_failure(PROVIDER, status, &message, hint));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            Failure::Fatal(EngineError::Upstream(format!(
                "{PROVIDER} answered {status} with an unreadable body ({e}): {}",
                upstream::body_excerpt(&bytes)
            )))
        })
    }
}

#[async_trait]
impl BattleEngine for OpenAiEngine {
    fn kind(&self) -> &'static str {
        "openai"
    }

    fn model(&self) -> Option<&str> {
        Some(self.settings.model.trim())
    }

    async fn generate(&self, request: &BattleRequest) -> Result<BattleResult, EngineError> {
        let prompt = prompt::battle_prompt(request)?;
        let schema = prompt::schema::battle(extract::fighter_ids(request));
        let format = self.response_format("battle_result", schema);
        let seed = Some(prompt::wire_seed(request));
        let text = self
            .complete(&prompt, format, self.settings.temperature, seed)
            .await?;
        extract::battle(&text, request)
    }
}
