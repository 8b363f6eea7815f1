//! LLM engine settings of a node: the `--gemini-*`, `--openai-*` and `--llm-*` flags, and
//! how they become [`EngineSettings`] for the engine chosen with `--engine`.

use std::fmt;
use std::time::Duration;

use clap::Args;
use hero_engine::{EngineSettings, GeminiSettings, JsonSchemaMode, OpenAiSettings};

use crate::config::EngineKind;

/// The variable Google's own tools read the Gemini key from; used when no `HERO_NODE_*`
/// key is given.
pub const GEMINI_KEY_ENV: &str = "GEMINI_API_KEY";
/// Default deadline of one LLM call, retries included. Below the aggregator's default
/// per-node timeout (20 s), so a slow model fails here with a reason instead of there.
pub const DEFAULT_LLM_TIMEOUT_SECS: u64 = 15;
/// Default retries after the first attempt on 429, 5xx and connection errors.
pub const DEFAULT_LLM_MAX_RETRIES: u32 = 2;

/// How to reach the model behind `--engine gemini` or `--engine openai`. Ignored with
/// `--engine sim`.
#[derive(Clone, Args)]
#[command(next_help_heading = "LLM engines")]
pub struct LlmArgs {
    /// Gemini API key, sent in the x-goog-api-key header and never logged. When neither the
    /// flag nor HERO_NODE_GEMINI_API_KEY is set, GEMINI_API_KEY is read.
    #[arg(long, env = "HERO_NODE_GEMINI_API_KEY", hide_env_values = true)]
    pub gemini_api_key: Option<String>,

    /// Gemini model (a `models/` prefix is accepted).
    #[arg(long, env = "HERO_NODE_GEMINI_MODEL", default_value = GeminiSettings::DEFAULT_MODEL)]
    pub gemini_model: String,

    /// Gemini API root; `/v1beta/models/<model>:generateContent` is appended.
    #[arg(long, env = "HERO_NODE_GEMINI_BASE_URL", default_value = GeminiSettings::DEFAULT_BASE_URL)]
    pub gemini_base_url: String,

    /// OpenAI-compatible server root, with or without `/v1`: http://localhost:11434 (Ollama),
    /// http://localhost:8000 (vLLM), http://localhost:8080 (llama.cpp server). Required with
    /// --engine openai.
    #[arg(long, env = "HERO_NODE_OPENAI_BASE_URL")]
    pub openai_base_url: Option<String>,

    /// Model name as the OpenAI-compatible server knows it (`llama3.1:8b`, a Hugging Face id,
    /// the llama.cpp `--alias`). Required with --engine openai.
    #[arg(long, env = "HERO_NODE_OPENAI_MODEL")]
    pub openai_model: Option<String>,

    /// Bearer key for the OpenAI-compatible server (vLLM or llama.cpp started with
    /// `--api-key`, or OpenAI itself). Never logged.
    #[arg(long, env = "HERO_NODE_OPENAI_API_KEY", hide_env_values = true)]
    pub openai_api_key: Option<String>,

    /// How answers are constrained to the battle schema: `auto` asks with `response_format`
    /// json_schema and, when the server refuses it, with `json_object` carrying the schema
    /// (llama-cpp-python and llama.cpp turn it into a grammar) from then on; `on` always
    /// json_schema; `off` always json_object with the schema. `true`/`false` mean on/off.
    #[arg(
        long,
        env = "HERO_NODE_OPENAI_JSON_SCHEMA",
        default_value = "auto",
        value_parser = parse_json_schema_mode,
        value_name = "auto|on|off"
    )]
    pub openai_json_schema: JsonSchemaMode,

    /// Seconds one battle may spend with the model, retries and waits included. Keep it below
    /// the aggregator's per-node timeout (HERO_NODE_TIMEOUT_MS, 20 s by default).
    #[arg(
        long,
        env = "HERO_NODE_LLM_TIMEOUT_SECS",
        default_value_t = DEFAULT_LLM_TIMEOUT_SECS,
        value_parser = clap::value_parser!(u64).range(1..=3600),
    )]
    pub llm_timeout_secs: u64,

    /// Retries after the first attempt when the model server answers 429 or 5xx or cannot be
    /// reached (capped exponential backoff with jitter, honouring the server's retry delay).
    #[arg(
        long,
        env = "HERO_NODE_LLM_MAX_RETRIES",
        default_value_t = DEFAULT_LLM_MAX_RETRIES,
        value_parser = clap::value_parser!(u32).range(0..=10),
    )]
    pub llm_max_retries: u32,
}

impl Default for LlmArgs {
    fn default() -> Self {
        Self {
            gemini_api_key: None,
            gemini_model: GeminiSettings::DEFAULT_MODEL.to_owned(),
            gemini_base_url: GeminiSettings::DEFAULT_BASE_URL.to_owned(),
            openai_base_url: None,
            openai_model: None,
            openai_api_key: None,
            openai_json_schema: JsonSchemaMode::Auto,
            llm_timeout_secs: DEFAULT_LLM_TIMEOUT_SECS,
            llm_max_retries: DEFAULT_LLM_MAX_RETRIES,
        }
    }
}

fn parse_json_schema_mode(s: &str) -> Result<JsonSchemaMode, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(JsonSchemaMode::Auto),
        "on" | "true" => Ok(JsonSchemaMode::On),
        "off" | "false" => Ok(JsonSchemaMode::Off),
        other => Err(format!("{other:?} is not auto, on or off")),
    }
}

impl fmt::Debug for LlmArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("LlmArgs")
            .field("gemini_api_key", &redacted(&self.gemini_api_key))
            .field("gemini_model", &self.gemini_model)
            .field("gemini_base_url", &self.gemini_base_url)
            .field("openai_base_url", &self.openai_base_url)
            .field("openai_model", &self.openai_model)
            .field("openai_api_key", &redacted(&self.openai_api_key))
            .field("openai_json_schema", &self.openai_json_schema)
            .field("llm_timeout_secs", &self.llm_timeout_secs)
            .field("llm_max_retries", &self.llm_max_retries)
            .finish()
    }
}

/// Settings that cannot run `--engine <kind>`; the message names the flag to set.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MissingSetting(String);

impl LlmArgs {
    /// The settings for `kind`, with `GEMINI_API_KEY` from the environment as the last
    /// resort for the Gemini key.
    pub fn engine_settings(&self, kind: EngineKind) -> Result<EngineSettings, MissingSetting> {
        self.settings_with(kind, std::env::var(GEMINI_KEY_ENV).ok())
    }

    /// [`Self::engine_settings`] with the `GEMINI_API_KEY` value passed in.
    fn settings_with(
        &self,
        kind: EngineKind,
        gemini_key_env: Option<String>,
    ) -> Result<EngineSettings, MissingSetting> {
        let timeout = Duration::from_secs(self.llm_timeout_secs);
        match kind {
            EngineKind::Sim => Ok(EngineSettings::Sim),
            EngineKind::Gemini => {
                let key = given(&self.gemini_api_key)
                    .or_else(|| given(&gemini_key_env))
                    .ok_or_else(|| {
                        MissingSetting(format!(
                            "--engine gemini needs an API key: pass --gemini-api-key, or set \
                             HERO_NODE_GEMINI_API_KEY or {GEMINI_KEY_ENV}"
                        ))
                    })?;
                Ok(EngineSettings::Gemini(GeminiSettings {
                    base_url: self.gemini_base_url.clone(),
                    model: self.gemini_model.clone(),
                    timeout,
                    max_retries: self.llm_max_retries,
                    ..GeminiSettings::new(key)
                }))
            }
            EngineKind::OpenAi => {
                let base_url = given(&self.openai_base_url).ok_or_else(|| {
                    MissingSetting(
                        "--engine openai needs --openai-base-url (HERO_NODE_OPENAI_BASE_URL), \
                         e.g. http://localhost:11434 for Ollama"
                            .to_owned(),
                    )
                })?;
                let model = given(&self.openai_model).ok_or_else(|| {
                    MissingSetting(
                        "--engine openai needs --openai-model (HERO_NODE_OPENAI_MODEL): the \
                         model name as the server knows it"
                            .to_owned(),
                    )
                })?;
                Ok(EngineSettings::OpenAi(OpenAiSettings {
                    api_key: given(&self.openai_api_key),
                    json_schema: self.openai_json_schema,
                    timeout,
                    max_retries: self.llm_max_retries,
                    ..OpenAiSettings::new(base_url, model)
                }))
            }
        }
    }
}

/// The value, trimmed, when it is set and not blank.
fn given(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cli;
    use clap::Parser;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("hero-node").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn gemini_needs_a_key_and_falls_back_to_the_google_variable() {
        let cli = parse(&["--engine", "gemini"]);
        let missing = cli.llm.settings_with(cli.engine, None).unwrap_err();
        assert!(
            missing.to_string().contains("--gemini-api-key"),
            "{missing}"
        );
        let blank = cli.llm.settings_with(cli.engine, Some("  ".into()));
        assert!(blank.is_err());

        let Ok(EngineSettings::Gemini(from_env)) =
            cli.llm.settings_with(cli.engine, Some("env-key".into()))
        else {
            panic!("expected Gemini settings");
        };
        assert_eq!(from_env.api_key, "env-key");

        let cli = parse(&[
            "--engine",
            "gemini",
            "--gemini-api-key",
            "flag-key",
            "--gemini-model",
            "gemini-2.5-flash",
            "--gemini-base-url",
            "http://127.0.0.1:9",
            "--llm-timeout-secs",
            "7",
            "--llm-max-retries",
            "0",
        ]);
        let Ok(EngineSettings::Gemini(s)) = cli.llm.settings_with(cli.engine, Some("env".into()))
        else {
            panic!("expected Gemini settings");
        };
        assert_eq!(s.api_key, "flag-key", "the flag wins over GEMINI_API_KEY");
        assert_eq!(s.model, "gemini-2.5-flash");
        assert_eq!(s.base_url, "http://127.0.0.1:9");
        assert_eq!(s.timeout, Duration::from_secs(7));
        assert_eq!(s.max_retries, 0);
    }

    #[test]
    fn openai_needs_a_base_url_and_a_model() {
        let cli = parse(&["--engine", "openai", "--openai-model", "m"]);
        let err = cli.llm.settings_with(cli.engine, None).unwrap_err();
        assert!(err.to_string().contains("--openai-base-url"), "{err}");
        let cli = parse(&[
            "--engine",
            "openai",
            "--openai-base-url",
            "http://localhost:11434",
        ]);
        let err = cli.llm.settings_with(cli.engine, None).unwrap_err();
        assert!(err.to_string().contains("--openai-model"), "{err}");

        let cli = parse(&[
            "--engine",
            "openai",
            "--openai-base-url",
            "http://localhost:8080",
            "--openai-model",
            "local",
            "--openai-json-schema",
            "false",
            "--openai-api-key",
            "sk-local",
        ]);
        let Ok(EngineSettings::OpenAi(s)) = cli.llm.settings_with(cli.engine, None) else {
            panic!("expected OpenAI settings");
        };
        assert_eq!(
            (s.base_url.as_str(), s.model.as_str()),
            ("http://localhost:8080", "local")
        );
        assert_eq!(s.json_schema, JsonSchemaMode::Off, "false still means off");
        assert_eq!(s.api_key.as_deref(), Some("sk-local"));
        assert_eq!(s.timeout, Duration::from_secs(DEFAULT_LLM_TIMEOUT_SECS));
    }

    #[test]
    fn json_schema_is_negotiated_by_default_and_sim_ignores_llm_flags() {
        let cli = parse(&["--openai-model", "m"]);
        assert_eq!(cli.llm.openai_json_schema, JsonSchemaMode::Auto);
        for (given, mode) in [
            ("on", JsonSchemaMode::On),
            ("OFF", JsonSchemaMode::Off),
            ("true", JsonSchemaMode::On),
        ] {
            let cli = parse(&["--openai-model", "m", "--openai-json-schema", given]);
            assert_eq!(cli.llm.openai_json_schema, mode);
        }
        assert!(matches!(
            cli.llm.settings_with(cli.engine, Some("k".into())),
            Ok(EngineSettings::Sim)
        ));
    }

    #[test]
    fn debug_hides_the_keys() {
        let cli = parse(&[
            "--gemini-api-key",
            "AIza-sekrit",
            "--openai-api-key",
            "sk-sekrit",
        ]);
        let shown = format!("{cli:?}");
        assert!(!shown.contains("sekrit"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
