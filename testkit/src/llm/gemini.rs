//! Google's `generateContent` wire format: answers, blocks, and its
//! `{"error": {code, message, status, details}}` bodies.

use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::{LlmBehavior, Recorded, Reply, answer_text};

/// The key the fake accepts (`x-goog-api-key`).
pub const KEY: &str = "test-gemini-key";
/// The model the fake serves (the engines' default).
pub const MODEL: &str = "gemini-2.0-flash";
/// Where [`MODEL`] generates.
pub const PATH: &str = "/v1beta/models/gemini-2.0-flash:generateContent";

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
            "modelVersion": MODEL
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
    let ratings = if reason == "SAFETY" {
        json!([{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}])
    } else {
        json!([])
    };
    Reply::json(
        200,
        json!({
            "promptFeedback": {"blockReason": reason, "safetyRatings": ratings},
            "usageMetadata": {"promptTokenCount": 400, "totalTokenCount": 400},
            "modelVersion": MODEL
        }),
    )
}

/// A Google API error body with these `details`.
pub fn error_with_details(code: u16, status: &str, message: &str, details: Vec<Value>) -> Reply {
    Reply::json(
        code,
        json!({"error": {"code": code, "message": message, "status": status, "details": details}}),
    )
}

/// The `ErrorInfo` detail naming why a request failed.
pub fn error_info(reason: &str) -> Value {
    json!({
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com"}
    })
}

/// A Google API error body with an `ErrorInfo` detail, and a `RetryInfo` detail when
/// `retry_delay` is given.
pub fn error(code: u16, status: &str, message: &str, retry_delay: Option<&str>) -> Reply {
    let mut details = vec![error_info(status)];
    if let Some(delay) = retry_delay {
        details.push(
            json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}),
        );
    }
    error_with_details(code, status, message, details)
}

fn not_found(message: &str) -> Reply {
    error_with_details(404, "NOT_FOUND", message, Vec::new())
}

/// What the Gemini API answers `request`, checking what it checks.
pub(super) fn respond(behavior: &LlmBehavior, request: &Recorded) -> Reply {
    let Some(model) = request
        .path
        .strip_prefix("/v1beta/models/")
        .and_then(|action| action.strip_suffix(":generateContent"))
    else {
        return not_found("Requested entity was not found.");
    };
    if model != MODEL {
        return not_found(&format!(
            "models/{model} is not found for API version v1beta, or is not supported for generateContent."
        ));
    }
    if let Some(refusal) = check_key(&request.headers) {
        return refusal;
    }
    let Some(prompt) = request.body["contents"][0]["parts"][0]["text"].as_str() else {
        return error_with_details(
            400,
            "INVALID_ARGUMENT",
            "* GenerateContentRequest.contents: contents is not specified",
            Vec::new(),
        );
    };
    match behavior {
        LlmBehavior::ServerError => error_with_details(
            500,
            "INTERNAL",
            "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
            Vec::new(),
        ),
        LlmBehavior::Blocked => blocked("SAFETY"),
        LlmBehavior::Answer(battles) => text(&answer_text(battles, prompt)),
    }
}

fn check_key(headers: &HeaderMap) -> Option<Reply> {
    match headers
        .get("x-goog-api-key")
        .map(|v| v.to_str().unwrap_or(""))
    {
        None => Some(error_with_details(
            403,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
            Vec::new(),
        )),
        Some(key) if key != KEY => Some(error_with_details(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            vec![error_info("API_KEY_INVALID")],
        )),
        Some(_) => None,
    }
}
