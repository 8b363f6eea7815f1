//! The OpenAI-compatible engine: battles and character cards from `/v1/chat/completions`
//! on Ollama, vLLM, llama.cpp server or OpenAI, with retries on 429/5xx and validation.

mod settings;
mod wire;

pub use settings::{JsonSchemaMode, OpenAiSettings};

use std::sync::atomic::{AtomicBool, Ordering};

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
    /// The server refused `json_schema` (in `auto` mode): `json_object` with the schema since.
    schema_refused: AtomicBool,
    /// Battles returned after a repair.
    repaired: crate::llm::RepairCount,
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
            schema_refused: AtomicBool::new(false),
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
        let schema = prompt::schema::character();
        let text = self
            .complete(&prompt, "character_card", &schema, SUMMON_TEMPERATURE, None)
            .await?;
        extract::character(&text)
    }

    /// How answers are constrained now: `json_schema`, or `json_object` with the schema once
    /// the server refused `json_schema` (or with `--openai-json-schema off`).
    pub fn constraint(&self) -> &'static str {
        self.current_constraint().as_str()
    }

    fn current_constraint(&self) -> wire::Constraint {
        match self.settings.json_schema {
            JsonSchemaMode::On => wire::Constraint::JsonSchema,
            JsonSchemaMode::Off => wire::Constraint::JsonObject,
            JsonSchemaMode::Auto if self.schema_refused.load(Ordering::Relaxed) => {
                wire::Constraint::JsonObject
            }
            JsonSchemaMode::Auto => wire::Constraint::JsonSchema,
        }
    }

    /// One chat completion, retried as the settings allow; the answer's text. In `auto` mode a
    /// server that refuses `json_schema` is asked again at once with `json_object` and the
    /// schema, and keeps being asked that way.
    async fn complete(
        &self,
        prompt: &Prompt,
        name: &str,
        schema: &Value,
        temperature: f32,
        seed: Option<u32>,
    ) -> Result<String, EngineError> {
        let constraint = self.current_constraint();
        match self
            .complete_as(prompt, name, schema, constraint, temperature, seed)
            .await
        {
            Err(EngineError::Upstream(message))
                if self.settings.json_schema == JsonSchemaMode::Auto
                    && constraint == wire::Constraint::JsonSchema
                    && wire::refuses_response_format(&message) =>
            {
                if !self.schema_refused.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        model = self.settings.model.trim(),
                        %message,
                        "the server refused response_format json_schema; asking with json_object and the schema from now on"
                    );
                }
                self.complete_as(
                    prompt,
                    name,
                    schema,
                    wire::Constraint::JsonObject,
                    temperature,
                    seed,
                )
                .await
            }
            answer => answer,
        }
    }

    async fn complete_as(
        &self,
        prompt: &Prompt,
        name: &str,
        schema: &Value,
        constraint: wire::Constraint,
        temperature: f32,
        seed: Option<u32>,
    ) -> Result<String, EngineError> {
        let schema = match constraint {
            wire::Constraint::JsonSchema => schema.clone(),
            wire::Constraint::JsonObject => prompt::schema::for_grammar(schema.clone()),
        };
        let (response_format, json_schema) = wire::response_format(name, schema, constraint);
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
            json_schema,
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
        let response = with_retries(policy, self.settings.timeout, || {
            self.attempt(&body, constraint)
        })
        .await?;
        response.into_text()
    }

    async fn attempt(
        &self,
        body: &wire::ChatRequest<'_>,
        constraint: wire::Constraint,
    ) -> Result<wire::ChatResponse, Failure> {
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
            let failure = upstream::status_failure(PROVIDER, status, &message, hint);
            // A refused json_schema is not worth retrying as it is: `complete` switches.
            if self.settings.json_schema == JsonSchemaMode::Auto
                && constraint == wire::Constraint::JsonSchema
                && status != reqwest::StatusCode::TOO_MANY_REQUESTS
                && wire::refuses_response_format(&message)
            {
                return Err(Failure::Fatal(failure.into_error()));
            }
            return Err(failure);
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
        let seed = Some(prompt::wire_seed(request));
        let text = self
            .complete(
                &prompt,
                "battle_result",
                &schema,
                self.settings.temperature,
                seed,
            )
            .await?;
        Ok(self.repaired.count(extract::battle(&text, request)?))
    }

    fn repaired_results(&self) -> u64 {
        self.repaired.get()
    }

    fn output_constraint(&self) -> Option<&'static str> {
        Some(self.constraint())
    }
}
