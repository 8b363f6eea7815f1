//! OpenAI's chat completions wire format and its `{"error": {message, type, param, code}}`
//! bodies, as Ollama, vLLM and llama.cpp's server also speak them.

use serde_json::{Value, json};

use super::{LlmBehavior, Recorded, Reply, answer_text};

/// The bearer key the fake accepts.
pub const KEY: &str = "sk-test-key";
/// The model the fake serves.
pub const MODEL: &str = "llama3.1:8b";
/// Where chat completions are served.
pub const PATH: &str = "/v1/chat/completions";

/// A completion whose only choice carries `content` (a string, or `null` when withheld) and
/// finished with `finish_reason`.
pub fn completion(content: Value, finish_reason: &str) -> Reply {
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

/// A completion that says `content` and finished with `finish_reason`.
pub fn finished(content: &str, finish_reason: &str) -> Reply {
    completion(Value::String(content.to_owned()), finish_reason)
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

/// What an OpenAI-compatible server answers `request`, checking what it checks.
pub(super) fn respond(behavior: &LlmBehavior, request: &Recorded) -> Reply {
    let invalid = "invalid_request_error";
    if request.path != PATH {
        return error(
            404,
            &format!("Unknown request URL: POST {}.", request.path),
            invalid,
            Some("unknown_url"),
        );
    }
    let bearer = request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(KEY) {
        return error(
            401,
            "Incorrect API key provided.",
            invalid,
            Some("invalid_api_key"),
        );
    }
    let body = &request.body;
    if body["model"] != MODEL {
        return error(
            404,
            &format!("The model `{}` does not exist.", body["model"]),
            invalid,
            Some("model_not_found"),
        );
    }
    let format = body["response_format"]["type"].as_str();
    if !matches!(format, Some("json_schema" | "json_object")) {
        return error(
            400,
            "response_format must be json_schema or json_object",
            invalid,
            None,
        );
    }
    let user = body["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str());
    let Some(prompt) = user else {
        return error(400, "messages must contain a user message", invalid, None);
    };
    match behavior {
        LlmBehavior::ServerError => error(
            500,
            "The server had an error while processing your request.",
            "server_error",
            None,
        ),
        LlmBehavior::Blocked => completion(Value::Null, "content_filter"),
        LlmBehavior::Answer(battles) => text(&answer_text(battles, prompt)),
    }
}
