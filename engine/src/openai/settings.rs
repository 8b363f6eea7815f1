//! How to reach an OpenAI-compatible server (Ollama, vLLM, llama.cpp, OpenAI itself).
//! `Debug` never shows the key.

use std::fmt;
use std::time::Duration;

/// Settings of a [`super::OpenAiEngine`]. Start from [`OpenAiSettings::new`] and override
/// fields with struct update syntax.
#[derive(Clone, PartialEq)]
pub struct OpenAiSettings {
    /// Server root, with or without a trailing `/v1`: `http://localhost:11434` (Ollama),
    /// `http://localhost:8000` (vLLM), `http://localhost:8080` (llama.cpp server).
    pub base_url: String,
    /// Model name as the server knows it (`llama3.1:8b`, a Hugging Face id, ...).
    pub model: String,
    /// Sent as `Authorization: Bearer <key>` when set (vLLM and llama.cpp `--api-key`).
    pub api_key: Option<String>,
    /// How the answer is constrained to the battle's schema. Default [`JsonSchemaMode::Auto`].
    pub json_schema: JsonSchemaMode,
    /// Deadline for a whole call, retries and waits included. Default 120 s (local models
    /// are slower than hosted ones).
    pub timeout: Duration,
    /// Retries after the first attempt on 429, 5xx and connection errors. Default 2.
    pub max_retries: u32,
    /// First backoff, doubled per retry, with jitter. Default 500 ms.
    pub initial_backoff: Duration,
    /// Longest wait between attempts, `Retry-After` included. Default 10 s.
    pub max_backoff: Duration,
    /// Sampling temperature for battles. Default 0: with the battle's seed, the same question
    /// gets the same answer, so honest nodes running one model agree.
    pub temperature: f32,
    /// `max_tokens`; `None` leaves the server's default. Default 4096.
    pub max_output_tokens: Option<u32>,
}

/// How an answer is constrained to the battle's JSON schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JsonSchemaMode {
    /// `response_format: json_schema` first; when the server refuses it (an error naming
    /// `response_format` or `json_schema`), `json_object` carrying the schema from then on.
    #[default]
    Auto,
    /// Always `response_format: json_schema` (OpenAI, vLLM, recent Ollama).
    On,
    /// Always `json_object` carrying the schema (`response_format.schema`, which
    /// llama-cpp-python turns into a grammar, and a top-level `json_schema`, which llama.cpp's
    /// server reads); servers that know neither just get JSON mode.
    Off,
}

impl OpenAiSettings {
    /// Defaults for everything but where the server is and which model it serves.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            json_schema: JsonSchemaMode::Auto,
            timeout: Duration::from_secs(120),
            max_retries: 2,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
            temperature: 0.0,
            max_output_tokens: Some(4096),
        }
    }
}

impl fmt::Debug for OpenAiSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiSettings")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("json_schema", &self.json_schema)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("temperature", &self.temperature)
            .field("max_output_tokens", &self.max_output_tokens)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_key() {
        let settings = OpenAiSettings {
            api_key: Some("sk-very-secret".into()),
            ..OpenAiSettings::new("http://localhost:8000", "m")
        };
        let shown = format!("{settings:?}");
        assert!(!shown.contains("sk-very-secret"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
