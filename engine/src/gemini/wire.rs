//! Gemini's `generateContent` wire format: the request we send, the response and error
//! bodies we read, and what a response means (text, a block, or a cut-short answer).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::EngineError;
use crate::llm::upstream::parse_proto_duration;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerateContentRequest<'a> {
    pub(crate) contents: [Content<'a>; 1],
    pub(crate) system_instruction: SystemInstruction<'a>,
    pub(crate) generation_config: GenerationConfig<'a>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Content<'a> {
    pub(crate) role: &'static str,
    pub(crate) parts: [TextPart<'a>; 1],
}

#[derive(Debug, Serialize)]
pub(crate) struct SystemInstruction<'a> {
    pub(crate) parts: [TextPart<'a>; 1],
}

#[derive(Debug, Serialize)]
pub(crate) struct TextPart<'a> {
    pub(crate) text: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerationConfig<'a> {
    pub(crate) response_mime_type: &'static str,
    pub(crate) response_schema: &'a Value,
    pub(crate) temperature: f32,
    pub(crate) candidate_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) seed: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_output_tokens: Option<u32>,
}

impl<'a> GenerateContentRequest<'a> {
    pub(crate) fn new(system: &'a str, user: &'a str, config: GenerationConfig<'a>) -> Self {
        Self {
            contents: [Content {
                role: "user",
                parts: [TextPart { text: user }],
            }],
            system_instruction: SystemInstruction {
                parts: [TextPart { text: system }],
            },
            generation_config: config,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerateContentResponse {
    #[serde(default)]
    candidates: Vec<Candidate>,
    prompt_feedback: Option<PromptFeedback>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Option<CandidateContent>,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CandidateContent {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Debug, Deserialize)]
struct Part {
    text: Option<String>,
    /// Thinking models mark their reasoning parts; those are not the answer.
    #[serde(default)]
    thought: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
    block_reason_message: Option<String>,
}

impl GenerateContentResponse {
    /// The answer's text (every non-thought part of the first candidate, concatenated), or
    /// why there is none. Never guesses: a blocked or cut-short answer is an error.
    pub(crate) fn into_text(self) -> Result<String, EngineError> {
        if let Some(reason) = self.prompt_feedback.and_then(|f| {
            f.block_reason
                .map(|r| (r, f.block_reason_message.unwrap_or_default()))
        }) {
            let (reason, message) = reason;
            return Err(EngineError::Blocked(
                format!("Gemini blocked the prompt ({reason}) {message}")
                    .trim_end()
                    .to_owned(),
            ));
        }
        let Some(candidate) = self.candidates.into_iter().next() else {
            return Err(EngineError::InvalidOutput(
                "Gemini returned no candidates".to_owned(),
            ));
        };
        let finish = candidate.finish_reason.as_deref().unwrap_or("STOP");
        match finish {
            "STOP" => {}
            "MAX_TOKENS" => {
                return Err(EngineError::InvalidOutput(
                    "Gemini stopped at the output token limit (MAX_TOKENS); the answer is cut short"
                        .to_owned(),
                ));
            }
            "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII"
            | "IMAGE_SAFETY" => {
                return Err(EngineError::Blocked(format!(
                    "Gemini withheld the answer (finishReason {finish})"
                )));
            }
            other => {
                return Err(EngineError::InvalidOutput(format!(
                    "Gemini stopped early (finishReason {other})"
                )));
            }
        }
        let text: String = candidate
            .content
            .map(|c| c.parts)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| !p.thought)
            .filter_map(|p| p.text)
            .collect();
        if text.trim().is_empty() {
            return Err(EngineError::InvalidOutput(
                "Gemini answered with no text".to_owned(),
            ));
        }
        Ok(text)
    }
}

/// `{"error": {"code", "message", "status", "details": [...]}}`
#[derive(Debug, Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    details: Vec<Value>,
}

/// The message of an error body (`STATUS: message`) and its `RetryInfo.retryDelay`, if any.
pub(crate) fn parse_error(body: &[u8]) -> Option<(String, Option<Duration>)> {
    let envelope: ErrorEnvelope = serde_json::from_slice(body).ok()?;
    let error = envelope.error;
    let delay = error
        .details
        .iter()
        .filter(|d| {
            d.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with("google.rpc.RetryInfo"))
        })
        .find_map(|d| d.get("retryDelay").and_then(Value::as_str))
        .and_then(parse_proto_duration);
    let message = match error.status.as_str() {
        "" => error.message,
        status => format!("{status}: {}", error.message),
    };
    Some((message, delay))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn response(value: Value) -> GenerateContentResponse {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn parts_are_concatenated_and_thoughts_skipped() {
        let r = response(
            json!({"candidates": [{"content": {"role": "model", "parts": [
            {"text": "thinking...", "thought": true}, {"text": "{\"a\":"}, {"text": "1}"}
        ]}, "finishReason": "STOP"}]}),
        );
        assert_eq!(r.into_text().unwrap(), "{\"a\":1}");
    }

    #[test]
    fn finish_reasons_become_clear_errors() {
        for (reason, blocked) in [
            ("SAFETY", true),
            ("RECITATION", true),
            ("MAX_TOKENS", false),
            ("OTHER", false),
        ] {
            let r = response(
                json!({"candidates": [{"content": {"parts": [{"text": "{}"}]}, "finishReason": reason}]}),
            );
            let err = r.into_text().unwrap_err();
            assert_eq!(
                matches!(err, EngineError::Blocked(_)),
                blocked,
                "{reason}: {err}"
            );
            assert!(err.to_string().contains(reason), "{err}");
        }
    }

    #[test]
    fn retry_delay_is_read_from_retry_info() {
        let body = json!({"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure"},
                        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"}]}});
        let (message, delay) = parse_error(body.to_string().as_bytes()).unwrap();
        assert_eq!(message, "RESOURCE_EXHAUSTED: Quota exceeded");
        assert_eq!(delay, Some(Duration::from_secs(2)));
        assert!(parse_error(b"<html>bad gateway</html>").is_none());
    }
}
