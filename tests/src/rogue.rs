//! In-test nodes that speak protocol v1 over real HTTP: honest but slow ones, and liars
//! (a flipped winner, garbage JSON, a hang, a winner that is not a fighter, NUL bytes and
//! megabyte fields). Each registers signed with a key of its own, on a loopback address of
//! its own, and signs what it answers (unless its behaviour is to forge).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hero_protocol::{BattleRequest, BattleResult, RegistrationReply};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    /// Answers what the Sim engine says, after a delay.
    Honest { delay_ms: u64 },
    /// A well-formed, self-consistent result in which the other fighter wins.
    FlippedWinner,
    /// 200 with a body that is not JSON.
    Garbage,
    /// Never answers.
    Hang,
    /// A result whose winner is not one of the fighters.
    ThirdFighter,
    /// Registers a signing key, then signs honest results with another key.
    ForgedSignature,
    /// 500 with a FastAPI `detail` of NUL bytes and control characters, a megabyte long.
    NulError,
    /// 200 with a winner that holds a NUL byte.
    NulWinner,
    /// The honest result with NUL bytes and escape codes in its log text and description.
    NulText,
    /// Honest after a delay, but at most `max` battles at once: 503 + `Retry-After: 1` beyond.
    Limited { delay_ms: u64, max: usize },
}

/// How a test node registers.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// Operator enrollment token.
    pub token: Option<String>,
    /// `operator` in the registration body.
    pub operator: Option<String>,
    pub weight: Option<u32>,
    /// Register as a seed-style node: no key, results unsigned, heartbeats without a token.
    pub unsigned: bool,
}

#[derive(Clone)]
struct NodeState {
    behavior: Behavior,
    calls: Arc<AtomicUsize>,
    in_flight: Arc<AtomicUsize>,
    signer: Arc<hero_protocol::signing::VoteSigner>,
}

/// The result signed as `hero-node` signs it, for the assignment in the request headers.
fn signed(
    state: &NodeState,
    headers: &HeaderMap,
    battle_id: &str,
    result: &BattleResult,
) -> Response {
    signed_bytes(
        state,
        headers,
        battle_id,
        serde_json::to_vec(result).expect("json"),
    )
}

/// Any body, signed for the assignment in the request headers.
fn signed_bytes(
    state: &NodeState,
    headers: &HeaderMap,
    battle_id: &str,
    body: Vec<u8>,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let message = hero_protocol::signing::vote_message(
        battle_id,
        header(hero_protocol::signing::NODE_ID_HEADER),
        header(hero_protocol::signing::ASSIGNMENT_HEADER),
        &body,
    );
    (
        [
            (
                axum::http::header::CONTENT_TYPE.as_str(),
                "application/json".to_string(),
            ),
            (
                hero_protocol::signing::SIGNATURE_HEADER,
                state.signer.sign(&message),
            ),
        ],
        body,
    )
        .into_response()
}

/// Decrements the in-flight count on drop.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn flip(result: &BattleResult, fighters: &[hero_protocol::Fighter]) -> BattleResult {
    let (a, b) = (fighters[0].id.as_str(), fighters[1].id.as_str());
    let swap = |id: &str| {
        if id == a {
            b.to_string()
        } else {
            a.to_string()
        }
    };
    let mut flipped = result.clone();
    flipped.winner = swap(&result.winner);
    for e in &mut flipped.battle_log {
        e.actor = swap(&e.actor);
        e.target = swap(&e.target);
    }
    flipped
}

async fn generate(
    State(state): State<NodeState>,
    headers: HeaderMap,
    Json(req): Json<BattleRequest>,
) -> Response {
    state.calls.fetch_add(1, Ordering::SeqCst);
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _in_flight = InFlight(Arc::clone(&state.in_flight));
    let fighters = req.fighters.clone().unwrap_or_default();
    let honest = match hero_engine::Sim.battle(&req.battle_id, &fighters, req.seed) {
        Ok(r) => r,
        Err(e) => return (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).into_response(),
    };
    match state.behavior {
        Behavior::Honest { delay_ms } => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            signed(&state, &headers, &req.battle_id, &honest)
        }
        Behavior::Limited { delay_ms, max } => {
            if now > max {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(axum::http::header::RETRY_AFTER, "1")],
                    Json(serde_json::json!({"detail": "at capacity"})),
                )
                    .into_response();
            }
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            signed(&state, &headers, &req.battle_id, &honest)
        }
        Behavior::NulError => {
            let detail = "\u{0}\u{1b}[2J".repeat(100_000);
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(serde_json::json!({"detail": detail})),
            )
                .into_response()
        }
        Behavior::NulWinner => {
            let mut r = honest;
            r.winner = format!("{}\u{0}", r.winner);
            signed(&state, &headers, &req.battle_id, &r)
        }
        Behavior::NulText => {
            let mut r = honest;
            r.battle_description = format!("\u{0}{}\u{1b}[0m", r.battle_description);
            for e in &mut r.battle_log {
                e.text = format!("{}\u{0}", e.text);
            }
            signed(&state, &headers, &req.battle_id, &r)
        }
        Behavior::FlippedWinner => {
            signed(&state, &headers, &req.battle_id, &flip(&honest, &fighters))
        }
        Behavior::Garbage => signed_bytes(
            &state,
            &headers,
            &req.battle_id,
            b"this is not json {".to_vec(),
        ),
        Behavior::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
        Behavior::ForgedSignature => {
            let body = serde_json::to_vec(&honest).expect("json");
            let forger = hero_protocol::signing::VoteSigner::generate().expect("key");
            let message = hero_protocol::signing::vote_message(&req.battle_id, "any", "any", &body);
            (
                [
                    (
                        axum::http::header::CONTENT_TYPE.as_str(),
                        "application/json".to_string(),
                    ),
                    (
                        hero_protocol::signing::SIGNATURE_HEADER,
                        forger.sign(&message),
                    ),
                ],
                body,
            )
                .into_response()
        }
        Behavior::ThirdFighter => {
            let mut r = honest;
            r.winner = "c3".into();
            signed(&state, &headers, &req.battle_id, &r)
        }
    }
}

/// A node served from inside the test process; stops when dropped.
pub struct TestNode {
    pub addr: SocketAddr,
    pub calls: Arc<AtomicUsize>,
    node_id: Arc<std::sync::Mutex<Option<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl TestNode {
    /// Serves `behavior` on a loopback address of its own, registers with the aggregator at
    /// `aggregator_url` (retrying until it is up) and heartbeats every second.
    pub async fn start(aggregator_url: &str, name: &str, behavior: Behavior) -> TestNode {
        Self::start_with(aggregator_url, name, behavior, NodeOptions::default()).await
    }

    /// `start` with an operator token, a body `operator` or a weight.
    pub async fn start_with(
        aggregator_url: &str,
        name: &str,
        behavior: Behavior,
        options: NodeOptions,
    ) -> TestNode {
        let calls = Arc::new(AtomicUsize::new(0));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let signer = Arc::new(hero_protocol::signing::VoteSigner::generate().expect("key"));
        let app = axum::Router::new()
            .route("/generate_battle", post(generate))
            .with_state(NodeState {
                behavior,
                calls: Arc::clone(&calls),
                in_flight: Arc::clone(&in_flight),
                signer: Arc::clone(&signer),
            });
        let listener = tokio::net::TcpListener::bind((crate::process::loopback_host(), 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let aggregator = aggregator_url.to_string();
        let name = name.to_string();
        let registered = Arc::new(std::sync::Mutex::new(None));
        let registered_by_task = Arc::clone(&registered);
        let load = Arc::clone(&in_flight);
        let life = tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut registration = serde_json::json!({
                "name": name, "url": format!("http://{addr}"),
                "weight": options.weight.unwrap_or(1), "max_concurrent_requests": 50
            });
            if let Some(operator) = &options.operator {
                registration["operator"] = operator.clone().into();
            }
            if let Behavior::Limited { max, .. } = behavior {
                registration["max_concurrent_requests"] = max.into();
            }
            loop {
                let (status, reply) = crate::enroll::register(
                    &aggregator,
                    options.token.as_deref(),
                    registration.clone(),
                    (!options.unsigned).then_some(&*signer),
                )
                .await;
                let Ok(reg) = serde_json::from_value::<RegistrationReply>(reply) else {
                    let _ = status;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                if let Ok(mut r) = registered_by_task.lock() {
                    *r = Some(reg.node_id.clone());
                }
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let mut hb = client.post(format!("{aggregator}/api/nodes/heartbeat"));
                    if !options.unsigned {
                        hb = hb.bearer_auth(&reg.node_token);
                    }
                    let hb = hb
                        .json(&serde_json::json!({
                            "node_id": reg.node_id,
                            "current_requests": load.load(Ordering::SeqCst)
                        }))
                        .send()
                        .await;
                    if matches!(&hb, Ok(r) if r.status() == StatusCode::NOT_FOUND) {
                        break;
                    }
                }
            }
        });
        TestNode {
            addr,
            calls,
            node_id: registered,
            tasks: vec![server, life],
        }
    }

    /// The id the aggregator gave this node, once registered.
    pub fn node_id(&self) -> Option<String> {
        self.node_id.lock().ok().and_then(|id| id.clone())
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flipped_result_still_validates_but_names_the_other_winner() {
        let fighters = hero_testkit::fixtures::pair();
        let honest = hero_engine::Sim.battle("b", &fighters, Some(9)).unwrap();
        let flipped = flip(&honest, &fighters);
        assert_ne!(flipped.winner, honest.winner);
        hero_engine::validate(&fighters, &flipped).unwrap();
    }
}
