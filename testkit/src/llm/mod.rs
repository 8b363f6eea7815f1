//! Local stand-ins for the LLM providers: an axum server on 127.0.0.1:0 that records every
//! request it receives and answers in the provider's real wire format, errors included.
//!
//! Two ways to answer:
//! - [`FakeLlm::start`] plays a script, one [`Reply`] per request (the last one repeats), built
//!   with [`gemini`] and [`openai`]: for tests of an engine's handling of each answer;
//! - [`FakeLlm::gemini`] and [`FakeLlm::openai`] act as the provider does: they check the path,
//!   model, key and body, and answer a well-formed, authorized request as the [`LlmBehavior`]
//!   says: for tests of whole programs that call a provider.

pub mod gemini;
pub mod openai;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hero_protocol::BattleResult;
use serde_json::Value;

/// The card both fakes write for any summon.
pub const SUMMONED_CARD: &str = r#"{"name": "Storm Warden", "description": "A knight who rides the thunder.", "skill_description": "Calls down a bolt that stuns."}"#;

/// The battle a fake provider reports for a battle id.
pub type Battles = Arc<dyn Fn(&str) -> BattleResult + Send + Sync>;

/// How a provider fake answers a well-formed, authorized request.
#[derive(Clone)]
pub enum LlmBehavior {
    /// A battle prompt gets what the function says for the prompt's battle id, as JSON text; a
    /// summon prompt gets [`SUMMONED_CARD`].
    Answer(Battles),
    /// 500 with the provider's internal-error body, every time.
    ServerError,
    /// Gemini: the prompt is blocked (`promptFeedback.blockReason`); OpenAI: the answer is
    /// withheld (`finish_reason: content_filter`).
    Blocked,
}

impl LlmBehavior {
    /// [`LlmBehavior::Answer`] with `battles`.
    pub fn answer(battles: impl Fn(&str) -> BattleResult + Send + Sync + 'static) -> Self {
        LlmBehavior::Answer(Arc::new(battles))
    }
}

/// The text a model that behaves would write for `prompt`.
fn answer_text(battles: &Battles, prompt: &str) -> String {
    if prompt.contains("<<<PLAYER_TEXT") {
        // A summon: the character card the forge prompt asks for.
        return SUMMONED_CARD.to_owned();
    }
    // The battle id stands in the prompt's data block, as a JSON string.
    let battle_id = prompt
        .lines()
        .find_map(|l| l.trim().strip_prefix("battle_id: "))
        .and_then(|quoted| serde_json::from_str::<String>(quoted).ok())
        .unwrap_or_default();
    serde_json::to_string(&battles(&battle_id)).expect("result json")
}

/// One scripted answer.
#[derive(Clone)]
pub enum Reply {
    /// A status, extra headers and a JSON body.
    Json {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Value,
    },
    /// Never answers in any useful time.
    Hang,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Reply::Json {
            status,
            headers: Vec::new(),
            body,
        }
    }

    pub fn with_header(self, name: &'static str, value: &str) -> Self {
        match self {
            Reply::Json {
                status,
                mut headers,
                body,
            } => {
                headers.push((name, value.to_owned()));
                Reply::Json {
                    status,
                    headers,
                    body,
                }
            }
            Reply::Hang => Reply::Hang,
        }
    }
}

/// One request a fake received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    /// The JSON body, `null` when there was none or it was not JSON.
    pub body: Value,
}

/// Picks the reply to the n-th request (counting from 0).
type Responder = Arc<dyn Fn(&Recorded, usize) -> Reply + Send + Sync>;

#[derive(Clone)]
struct Fake {
    respond: Responder,
    calls: Arc<Mutex<Vec<Recorded>>>,
}

/// A running fake provider; it stops with the test's runtime.
pub struct FakeLlm {
    pub base_url: String,
    calls: Arc<Mutex<Vec<Recorded>>>,
}

impl FakeLlm {
    /// Answers the n-th request with the n-th reply; the last one repeats.
    pub async fn start(replies: Vec<Reply>) -> Self {
        assert!(
            !replies.is_empty(),
            "a fake server needs at least one reply"
        );
        Self::serve(Arc::new(move |_, index| {
            replies[index.min(replies.len() - 1)].clone()
        }))
        .await
    }

    /// A Gemini API at `base_url` (`/v1beta/models/{model}:generateContent`).
    pub async fn gemini(behavior: LlmBehavior) -> Self {
        Self::serve(Arc::new(move |request, _| {
            gemini::respond(&behavior, request)
        }))
        .await
    }

    /// An OpenAI-compatible server at `base_url` (`/v1/chat/completions`).
    pub async fn openai(behavior: LlmBehavior) -> Self {
        Self::serve(Arc::new(move |request, _| {
            openai::respond(&behavior, request)
        }))
        .await
    }

    async fn serve(respond: Responder) -> Self {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let fake = Fake {
            respond,
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
    pub fn calls(&self) -> Vec<Recorded> {
        self.calls.lock().expect("calls lock").clone()
    }

    pub fn call_count(&self) -> usize {
        self.calls.lock().expect("calls lock").len()
    }
}

async fn answer(State(fake): State<Fake>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let request = Recorded {
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let index = {
        let mut calls = fake.calls.lock().expect("calls lock");
        calls.push(request.clone());
        calls.len() - 1
    };
    match (fake.respond)(&request, index) {
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Reply::Json {
            status,
            headers,
            body,
        } => {
            let mut response = (
                StatusCode::from_u16(status).expect("a valid status"),
                axum::Json(body),
            )
                .into_response();
            for (name, value) in headers {
                response
                    .headers_mut()
                    .insert(name, value.parse().expect("a valid header value"));
            }
            response
        }
    }
}
