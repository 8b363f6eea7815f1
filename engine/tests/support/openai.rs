//! The chat completions wire format for the fake server: answers and error bodies.

use std::time::Duration;

use hero_engine::OpenAiSettings;
use serde_json::{Value, json};

use super::{FAST_BACKOFF, FakeServer, Reply};

pub const KEY: &str = "sk-test-key";
pub const MODEL: &str = "llama3.1:8b";

/// Engine settings pointing at `server`, with a key and tiny backoffs.
pub fn settings(server: &FakeServer) -> OpenAiSettings {
    OpenAiSettings {
        api_key: Some(KEY.into()),
        timeout: Duration::from_secs(5),
        initial_backoff: FAST_BACKOFF,
        max_backoff: Duration::from_millis(200),
        ..OpenAiSettings::new(server.base_url.clone(), MODEL)
    }
}

/// A completion whose only choice says `content` and finished with `finish_reason`.
pub fn finished(content: &str, finish_reason: &str) -> Reply {
    Reply::json(
        200,
        json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": MODEL,
            "system_fingerprint": "fp_ollama",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason
            }],
            "usage": {"prompt_tokens": 400, "completion_tokens": 200, "total_tokens": 600}
        }),
    )
}

/// A normal answer.
pub fn text(content: &str) -> Reply {
    finished(content, "stop")
}

/// A normal answer carrying `value` as JSON text.
pub fn json_text(value: &Value) -> Reply {
    text(&value.to_string())
}

/// An OpenAI-style error body.
pub fn error(status: u16, message: &str, kind: &str, code: Option<&str>) -> Reply {
    Reply::json(
        status,
        json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
    )
}
