//! The chat completions wire format as OpenAI, Ollama, vLLM and llama.cpp speak it: the
//! request, the response, the error bodies each server sends, and what a choice means.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::EngineError;

#[derive(Debug, Serialize)]
pub(crate) struct ChatRequest<'a> {
    pub(crate) model: &'a str,
    pub(crate) messages: [Message<'a>; 2],
    pub(crate) response_format: Value,
    /// llama.cpp's server reads the schema here when `response_format` is `json_object`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) json_schema: Option<Value>,
    pub(crate) temperature: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) seed: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_tokens: Option<u32>,
    pub(crate) stream: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct Message<'a> {
    pub(crate) role: &'static str,
    pub(crate) content: &'a str,
}

/// How a request constrains its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Constraint {
    /// `response_format: {type: json_schema, json_schema: {name, strict, schema}}`.
    JsonSchema,
    /// `response_format: {type: json_object, schema}` plus a top-level `json_schema`.
    JsonObject,
}

impl Constraint {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Constraint::JsonSchema => "json_schema",
            Constraint::JsonObject => "json_object+schema",
        }
    }
}

/// `response_format` (and the top-level `json_schema`) for `constraint`.
pub(crate) fn response_format(
    name: &str,
    schema: Value,
    constraint: Constraint,
) -> (Value, Option<Value>) {
    match constraint {
        Constraint::JsonSchema => (
            json!({"type": "json_schema", "json_schema": {"name": name, "strict": true, "schema": schema}}),
            None,
        ),
        Constraint::JsonObject => (
            json!({"type": "json_object", "schema": schema.clone()}),
            Some(schema),
        ),
    }
}

/// Whether an error message says the server does not take the `response_format` we sent.
pub(crate) fn refuses_response_format(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    ["response_format", "response format", "json_schema"]
        .iter()
        .any(|needle| message.contains(needle))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChatResponse {
    #[serde(default)]
    choices: Vec<Choice>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    message: Option<ChoiceMessage>,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
    /// OpenAI's structured outputs put a safety refusal here instead of content.
    refusal: Option<String>,
}

impl ChatResponse {
    /// The first choice's content, or why there is none. A cut-short or filtered answer is
    /// an error, never a guess.
    pub(crate) fn into_text(self) -> Result<String, EngineError> {
        let Some(choice) = self.choices.into_iter().next() else {
            return Err(EngineError::InvalidOutput(
                "the server returned no choices".to_owned(),
            ));
        };
        let message = choice.message;
        if let Some(refusal) = message.as_ref().and_then(|m| m.refusal.as_deref()) {
            let refusal: String = refusal.chars().take(200).collect();
            return Err(EngineError::Blocked(format!(
                "the model refused: {refusal}"
            )));
        }
        match choice.finish_reason.as_deref() {
            None | Some("stop") => {}
            Some("length") => {
                return Err(EngineError::InvalidOutput(
                    "the model stopped at the token limit (finish_reason length); the answer is cut short"
                        .to_owned(),
                ));
            }
            Some("content_filter") => {
                return Err(EngineError::Blocked(
                    "the server's content filter withheld the answer (finish_reason content_filter)"
                        .to_owned(),
                ));
            }
            Some(other) => {
                return Err(EngineError::InvalidOutput(format!(
                    "the model stopped with finish_reason {other:?} instead of an answer"
                )));
            }
        }
        let text = message.and_then(|m| m.content).unwrap_or_default();
        if text.trim().is_empty() {
            return Err(EngineError::InvalidOutput(
                "the model answered with no text".to_owned(),
            ));
        }
        Ok(text)
    }
}

/// The message of an error body in any of the shapes these servers use:
/// `{"error": {"message", "type", "code"}}` (OpenAI, Ollama, llama.cpp),
/// `{"error": "..."}` (Ollama's native errors) or `{"message", "type"}` (older vLLM).
pub(crate) fn parse_error(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let text = |v: &Value| v.as_str().map(str::to_owned);
    match value.get("error") {
        Some(error @ Value::Object(_)) => {
            let message = error.get("message").and_then(text).unwrap_or_default();
            let kind = error
                .get("type")
                .and_then(text)
                .or_else(|| error.get("code").and_then(text));
            Some(match kind {
                Some(kind) if !kind.is_empty() => format!("{kind}: {message}"),
                _ => message,
            })
        }
        Some(error) => text(error),
        None => value.get("message").and_then(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_of_every_server_shape() {
        let openai = br#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        assert_eq!(parse_error(openai).unwrap(), "requests: Rate limit reached");
        let llama =
            br#"{"error":{"code":400,"message":"bad schema","type":"invalid_request_error"}}"#;
        assert_eq!(
            parse_error(llama).unwrap(),
            "invalid_request_error: bad schema"
        );
        let ollama = br#"{"error":"model 'x' not found"}"#;
        assert_eq!(parse_error(ollama).unwrap(), "model 'x' not found");
        let vllm =
            br#"{"object":"error","message":"too long","type":"BadRequestError","code":400}"#;
        assert_eq!(parse_error(vllm).unwrap(), "too long");
        assert!(parse_error(b"Bad Gateway").is_none());
    }

    #[test]
    fn refusals_are_blocked() {
        let r: ChatResponse = serde_json::from_value(json!({"choices": [{"index": 0,
            "message": {"role": "assistant", "content": null, "refusal": "I can't help with that."},
            "finish_reason": "stop"}]}))
        .unwrap();
        assert!(matches!(r.into_text(), Err(EngineError::Blocked(m)) if m.contains("can't help")));
    }
}
