//! Gemini's `generateContent` wire format for the fake server: answers, blocks and errors.

use std::time::Duration;

use hero_engine::GeminiSettings;
use serde_json::{Value, json};

use super::{FAST_BACKOFF, FakeServer, Reply};

pub const KEY: &str = "test-gemini-key";
pub const PATH: &str = "/v1beta/models/gemini-2.0-flash:generateContent";

/// Engine settings pointing at `server`, with tiny backoffs.
pub fn settings(server: &FakeServer) -> GeminiSettings {
    GeminiSettings {
        base_url: server.base_url.clone(),
        timeout: Duration::from_secs(5),
        initial_backoff: FAST_BACKOFF,
        max_backoff: Duration::from_millis(200),
        ..GeminiSettings::new(KEY)
    }
}

/// A 200 whose first candidate says `text` and finished with `finish_reason`.
pub fn finished(text: &str, finish_reason: &str) -> Reply {
    Reply::json(
        200,
        json!({
            "candidates": [{
                "content": {"role": "model", "parts": [{"text": text}]},
                "finishReason": finish_reason,
                "index": 0,
                "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]
            }],
            "usageMetadata": {"promptTokenCount": 400, "candidatesTokenCount": 200, "totalTokenCount": 600},
            "modelVersion": "gemini-2.0-flash"
        }),
    )
}

/// A normal answer.
pub fn text(text: &str) -> Reply {
    finished(text, "STOP")
}

/// A normal answer carrying `value` as JSON text.
pub fn json_text(value: &Value) -> Reply {
    text(&value.to_string())
}

/// The prompt itself was blocked: no candidates, only `promptFeedback`.
pub fn blocked(reason: &str) -> Reply {
    Reply::json(
        200,
        json!({
            "promptFeedback": {"blockReason": reason, "safetyRatings": []},
            "usageMetadata": {"promptTokenCount": 400, "totalTokenCount": 400},
            "modelVersion": "gemini-2.0-flash"
        }),
    )
}

/// A Google API error body, with a `RetryInfo` detail when `retry_delay` is given.
pub fn error(code: u16, status: &str, message: &str, retry_delay: Option<&str>) -> Reply {
    let mut details = vec![json!({
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": status,
        "domain": "googleapis.com"
    })];
    if let Some(delay) = retry_delay {
        details.push(
            json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}),
        );
    }
    Reply::json(
        code,
        json!({"error": {"code": code, "message": message, "status": status, "details": details}}),
    )
}
