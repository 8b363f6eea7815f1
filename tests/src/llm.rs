//! Stand-ins for the LLM providers the real binaries call: a Gemini `generateContent` server
//! and an OpenAI-compatible chat completions server on 127.0.0.1:0. They check what a real
//! provider checks (path, model, key, body) and answer in the real wire format, errors
//! included. An agreeing fake answers what the Sim engine says for the fighters and seed the
//! test created the battle with, so LLM nodes can agree with Sim nodes.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hero_protocol::{BattleResult, Fighter};
use serde_json::{Value, json};

/// The Gemini key the fake accepts (`x-goog-api-key`).
pub const GEMINI_KEY: &str = "e2e-gemini-key";
/// The model the Gemini fake serves (the engines' default).
pub const GEMINI_MODEL: &str = "gemini-2.0-flash";
/// The bearer key the OpenAI-compatible fake accepts.
pub const OPENAI_KEY: &str = "sk-e2e-openai-key";
/// The model the OpenAI-compatible fake serves.
pub const OPENAI_MODEL: &str = "llama3.1:8b";

/// The card the fake Gemini writes for any summon.
pub const SUMMONED_CARD: &str = r#"{"name": "Storm Warden", "description": "A knight who rides the thunder.", "skill_description": "Calls down a bolt that stuns."}"#;

/// How a fake provider answers a well-formed, authorized request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlmBehavior {
    /// The Sim engine's result for the configured fighters and seed, as JSON text.
    AgreeWithSim,
    /// 500 with the provider's internal-error body, every time.
    ServerError,
    /// Gemini: the prompt is blocked (`promptFeedback.blockReason`); OpenAI: the answer is
    /// withheld (`finish_reason: content_filter`).
    Blocked,
}

/// One request a fake received.
#[derive(Debug, Clone)]
pub struct LlmCall {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Provider {
    Gemini,
    OpenAi,
}

#[derive(Clone)]
struct Fake {
    provider: Provider,
    behavior: LlmBehavior,
    fighters: Arc<Vec<Fighter>>,
    seed: u64,
    calls: Arc<Mutex<Vec<LlmCall>>>,
}

/// A running fake provider; it stops with the test's runtime.
pub struct FakeLlm {
    pub base_url: String,
    calls: Arc<Mutex<Vec<LlmCall>>>,
}

impl FakeLlm {
    /// A Gemini API at `base_url` (`/v1beta/models/{model}:generateContent`).
    pub async fn gemini(behavior: LlmBehavior, fighters: &[Fighter], seed: u64) -> FakeLlm {
        Self::start(Provider::Gemini, behavior, fighters, seed).await
    }

    /// An OpenAI-compatible server at `base_url` (`/v1/chat/completions`).
    pub async fn openai(behavior: LlmBehavior, fighters: &[Fighter], seed: u64) -> FakeLlm {
        Self::start(Provider::OpenAi, behavior, fighters, seed).await
    }

    async fn start(
        provider: Provider,
        behavior: LlmBehavior,
        fighters: &[Fighter],
        seed: u64,
    ) -> FakeLlm {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let fake = Fake {
            provider,
            behavior,
            fighters: Arc::new(fighters.to_vec()),
            seed,
            calls: Arc::clone(&calls),
        };
        let app = Router::new().fallback(answer).with_state(fake);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeLlm {
            base_url: format!("http://{addr}"),
            calls,
        }
    }

    /// Every request received so far.
    pub fn calls(&self) -> Vec<LlmCall> {
        self.calls.lock().expect("calls lock").clone()
    }
}

async fn answer(State(fake): State<Fake>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    fake.calls.lock().expect("calls lock").push(LlmCall {
        path: uri.path().to_owned(),
        headers: headers.clone(),
        body: body.clone(),
    });
    match fake.provider {
        Provider::Gemini => gemini::answer(&fake, uri.path(), &headers, &body),
        Provider::OpenAi => openai::answer(&fake, uri.path(), &headers, &body),
    }
}

impl Fake {
    /// What the Sim engine says about this battle; the id is read from the prompt's data
    /// block (with a seed the Sim engine does not use it, but a real model would see it).
    fn sim_result(&self, prompt: &str) -> BattleResult {
        let battle_id = prompt
            .lines()
            .find_map(|l| l.trim().strip_prefix("battle_id: "))
            .and_then(|quoted| serde_json::from_str::<String>(quoted).ok())
            .unwrap_or_default();
        hero_engine::Sim
            .battle(&battle_id, &self.fighters, Some(self.seed))
            .expect("the fake's fighters can fight")
    }
}

fn reply(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).expect("a valid status"),
        axum::Json(body),
    )
        .into_response()
}

/// Google's `generateContent` and its `{"error": {code, message, status, details}}` bodies.
mod gemini {
    use super::*;

    fn error(code: u16, status: &str, reason: Option<&str>, message: &str) -> Response {
        let details = match reason {
            Some(reason) => json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"}
            }]),
            None => json!([]),
        };
        reply(
            code,
            json!({"error": {"code": code, "message": message, "status": status, "details": details}}),
        )
    }

    pub(super) fn answer(fake: &Fake, path: &str, headers: &HeaderMap, body: &Value) -> Response {
        let Some(action) = path.strip_prefix("/v1beta/models/") else {
            return error(404, "NOT_FOUND", None, "Requested entity was not found.");
        };
        let Some(model) = action.strip_suffix(":generateContent") else {
            return error(404, "NOT_FOUND", None, "Requested entity was not found.");
        };
        if model != GEMINI_MODEL {
            return error(
                404,
                "NOT_FOUND",
                None,
                &format!(
                    "models/{model} is not found for API version v1beta, or is not supported for generateContent."
                ),
            );
        }
        match headers
            .get("x-goog-api-key")
            .map(|v| v.to_str().unwrap_or(""))
        {
            None => {
                return error(
                    403,
                    "PERMISSION_DENIED",
                    None,
                    "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
                );
            }
            Some(key) if key != GEMINI_KEY => {
                return error(
                    400,
                    "INVALID_ARGUMENT",
                    Some("API_KEY_INVALID"),
                    "API key not valid. Please pass a valid API key.",
                );
            }
            Some(_) => {}
        }
        let Some(prompt) = body["contents"][0]["parts"][0]["text"].as_str() else {
            return error(
                400,
                "INVALID_ARGUMENT",
                None,
                "* GenerateContentRequest.contents: contents is not specified",
            );
        };
        match fake.behavior {
            LlmBehavior::ServerError => error(
                500,
                "INTERNAL",
                None,
                "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
            ),
            LlmBehavior::Blocked => reply(
                200,
                json!({
                    "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
                        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}
                    ]},
                    "usageMetadata": {"promptTokenCount": 512, "totalTokenCount": 512},
                    "modelVersion": GEMINI_MODEL
                }),
            ),
            LlmBehavior::AgreeWithSim => {
                let text = if prompt.contains("<<<PLAYER_TEXT") {
                    // A summon: the character card the forge prompt asks for.
                    SUMMONED_CARD.to_string()
                } else {
                    serde_json::to_string(&fake.sim_result(prompt)).expect("result json")
                };
                reply(
                    200,
                    json!({
                        "candidates": [{
                            "content": {"role": "model", "parts": [{"text": text}]},
                            "finishReason": "STOP",
                            "index": 0
                        }],
                        "usageMetadata": {"promptTokenCount": 512, "candidatesTokenCount": 300, "totalTokenCount": 812},
                        "modelVersion": GEMINI_MODEL
                    }),
                )
            }
        }
    }
}

/// OpenAI's chat completions and its `{"error": {message, type, param, code}}` bodies, as
/// Ollama, vLLM and llama.cpp's server also speak them.
mod openai {
    use super::*;

    fn error(status: u16, message: &str, kind: &str, code: Option<&str>) -> Response {
        reply(
            status,
            json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
        )
    }

    fn completion(content: Value, finish_reason: &str) -> Response {
        reply(
            200,
            json!({
                "id": "chatcmpl-e2e",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": OPENAI_MODEL,
                "system_fingerprint": "fp_e2e",
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": finish_reason
                }],
                "usage": {"prompt_tokens": 512, "completion_tokens": 300, "total_tokens": 812}
            }),
        )
    }

    pub(super) fn answer(fake: &Fake, path: &str, headers: &HeaderMap, body: &Value) -> Response {
        if path != "/v1/chat/completions" {
            return error(
                404,
                &format!("Unknown request URL: POST {path}."),
                "invalid_request_error",
                Some("unknown_url"),
            );
        }
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if bearer != Some(OPENAI_KEY) {
            return error(
                401,
                "Incorrect API key provided.",
                "invalid_request_error",
                Some("invalid_api_key"),
            );
        }
        if body["model"] != OPENAI_MODEL {
            return error(
                404,
                &format!("The model `{}` does not exist.", body["model"]),
                "invalid_request_error",
                Some("model_not_found"),
            );
        }
        let format = body["response_format"]["type"].as_str();
        if !matches!(format, Some("json_schema" | "json_object")) {
            return error(
                400,
                "response_format must be json_schema or json_object",
                "invalid_request_error",
                None,
            );
        }
        let user = body["messages"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["role"] == "user"))
            .and_then(|m| m["content"].as_str());
        let Some(prompt) = user else {
            return error(
                400,
                "messages must contain a user message",
                "invalid_request_error",
                None,
            );
        };
        match fake.behavior {
            LlmBehavior::ServerError => error(
                500,
                "The server had an error while processing your request.",
                "server_error",
                None,
            ),
            LlmBehavior::Blocked => completion(Value::Null, "content_filter"),
            LlmBehavior::AgreeWithSim => {
                let text = serde_json::to_string(&fake.sim_result(prompt)).expect("result json");
                completion(Value::String(text), "stop")
            }
        }
    }
}
