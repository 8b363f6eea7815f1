//! How to reach Gemini: endpoint, model, key, patience. `Debug` never shows the key.

use std::fmt;
use std::time::Duration;

/// Settings of a [`super::GeminiEngine`]. Start from [`GeminiSettings::new`] and override
/// fields with struct update syntax.
#[derive(Clone, PartialEq)]
pub struct GeminiSettings {
    /// Sent in the `x-goog-api-key` header; never logged.
    pub api_key: String,
    /// Default `https://generativelanguage.googleapis.com`.
    pub base_url: String,
    /// Default `gemini-2.0-flash` (a `models/` prefix is accepted).
    pub model: String,
    /// Deadline for a whole call, retries and waits included. Default 60 s.
    pub timeout: Duration,
    /// Retries after the first attempt on 429, 5xx and connection errors. Default 2.
    pub max_retries: u32,
    /// First backoff, doubled per retry, with jitter. Default 500 ms.
    pub initial_backoff: Duration,
    /// Longest wait between attempts, the server's `retryDelay` included. Default 10 s.
    pub max_backoff: Duration,
    /// Sampling temperature for battles. Default 0: with the battle's seed, the same question
    /// gets the same answer, so honest nodes running one model agree.
    pub temperature: f32,
    /// `maxOutputTokens`; `None` leaves the model's default. Default 8192.
    pub max_output_tokens: Option<u32>,
}

impl GeminiSettings {
    pub const DEFAULT_BASE_URL: &'static str = "https://generativelanguage.googleapis.com";
    pub const DEFAULT_MODEL: &'static str = "gemini-2.0-flash";

    /// Defaults for everything but the key.
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            base_url: Self::DEFAULT_BASE_URL.to_owned(),
            model: Self::DEFAULT_MODEL.to_owned(),
            timeout: Duration::from_secs(60),
            max_retries: 2,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
            temperature: 0.0,
            max_output_tokens: Some(8192),
        }
    }
}

impl fmt::Debug for GeminiSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = if self.api_key.is_empty() {
            "<empty>"
        } else {
            "<redacted>"
        };
        f.debug_struct("GeminiSettings")
            .field("api_key", &key)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
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
        let settings = GeminiSettings::new("AIzaSecretKey123");
        let shown = format!("{settings:?}");
        assert!(!shown.contains("AIzaSecretKey123"), "{shown}");
        assert!(shown.contains("<redacted>") && shown.contains("gemini-2.0-flash"));
    }
}
