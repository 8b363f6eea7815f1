//! Local stand-ins for the LLM providers: an axum server on 127.0.0.1:0 that answers from a
//! script (the last reply repeats) and records every request it receives.
#![allow(
    dead_code,
    reason = "each test binary uses its own part of the support code"
)]

pub mod gemini;
pub mod openai;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hero_protocol::{BattleRequest, Fighter};
use serde_json::{Value, json};

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

/// What the fake server received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Clone)]
struct Script {
    replies: Arc<Vec<Reply>>,
    calls: Arc<Mutex<Vec<Recorded>>>,
}

/// A running fake provider.
pub struct FakeServer {
    pub base_url: String,
    calls: Arc<Mutex<Vec<Recorded>>>,
}

impl FakeServer {
    pub async fn start(replies: Vec<Reply>) -> Self {
        assert!(
            !replies.is_empty(),
            "a fake server needs at least one reply"
        );
        let calls = Arc::new(Mutex::new(Vec::new()));
        let script = Script {
            replies: Arc::new(replies),
            calls: calls.clone(),
        };
        let app = Router::new().fallback(answer).with_state(script);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("fake server runs") });
        Self {
            base_url: format!("http://{addr}"),
            calls,
        }
    }

    pub fn calls(&self) -> Vec<Recorded> {
        self.calls.lock().expect("calls lock").clone()
    }

    pub fn call_count(&self) -> usize {
        self.calls.lock().expect("calls lock").len()
    }
}

async fn answer(
    State(script): State<Script>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let index = {
        let mut calls = script.calls.lock().expect("calls lock");
        calls.push(Recorded {
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
        calls.len() - 1
    };
    let reply = script.replies[index.min(script.replies.len() - 1)].clone();
    match reply {
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

/// Two fixed fighters: `c1` (Aria) and `c2` (Borin).
pub fn fighters() -> Vec<Fighter> {
    let fighter = |id: &str, name: &str, strength, skill: &str| Fighter {
        id: id.into(),
        name: name.into(),
        strength,
        agility: 6,
        luck: 4,
        rarity: 2,
        skill_description: skill.into(),
    };
    vec![
        fighter("c1", "Aria", 10, "Flame Lance: a spear of fire."),
        fighter("c2", "Borin", 12, "Stone Skin: shrugs off a blow."),
    ]
}

/// A battle request between [`fighters`] with seed 7.
pub fn battle_request() -> BattleRequest {
    BattleRequest {
        battle_id: "battle-1".into(),
        prompt: "Aria vs Borin".into(),
        seed: Some(7),
        fighters: Some(fighters()),
    }
}

/// A result that passes validation for [`fighters`]: Aria wins by knockout.
pub fn valid_battle(winner: &str) -> Value {
    json!({
        "battle_log": [
            {"round": 1, "actor": "c1", "target": "c2", "action": "attack", "damage": 60, "target_hp": 140, "text": "Aria strikes."},
            {"round": 1, "actor": "c2", "target": "c1", "action": "attack", "damage": 40, "target_hp": 130, "text": "Borin hits back."},
            {"round": 2, "actor": "c1", "target": "c2", "action": "skill", "damage": 140, "target_hp": 0, "text": "Flame Lance ends it."}
        ],
        "winner": winner,
        "battle_description": "Aria wins by knockout in round 2."
    })
}

/// A character card as a model would write it.
pub fn card(name: &str) -> Value {
    json!({
        "name": name,
        "description": "A fox spirit who guards the bamboo forest.",
        "skill_description": "Foxfire: blinding blue flames that confuse the foe."
    })
}

/// Tiny waits, so retry tests stay fast.
pub const FAST_BACKOFF: Duration = Duration::from_millis(5);
