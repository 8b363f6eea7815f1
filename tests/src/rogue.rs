//! In-test nodes that speak protocol v1 over real HTTP: honest but slow ones, and liars
//! (a flipped winner, garbage JSON, a hang, a winner that is not a fighter).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
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
}

#[derive(Clone)]
struct NodeState {
    behavior: Behavior,
    calls: Arc<AtomicUsize>,
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

async fn generate(State(state): State<NodeState>, Json(req): Json<BattleRequest>) -> Response {
    state.calls.fetch_add(1, Ordering::SeqCst);
    let fighters = req.fighters.clone().unwrap_or_default();
    let honest = match hero_engine::Sim.battle(&req.battle_id, &fighters, req.seed) {
        Ok(r) => r,
        Err(e) => return (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).into_response(),
    };
    match state.behavior {
        Behavior::Honest { delay_ms } => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            Json(honest).into_response()
        }
        Behavior::FlippedWinner => Json(flip(&honest, &fighters)).into_response(),
        Behavior::Garbage => (StatusCode::OK, "this is not json {").into_response(),
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
            Json(r).into_response()
        }
    }
}

/// A node served from inside the test process; stops when dropped.
pub struct TestNode {
    pub addr: SocketAddr,
    pub calls: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl TestNode {
    /// Serves `behavior`, registers with the aggregator at `aggregator_url` (retrying until it
    /// is up) and heartbeats every second.
    pub async fn start(aggregator_url: &str, name: &str, behavior: Behavior) -> TestNode {
        let calls = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new()
            .route("/generate_battle", post(generate))
            .with_state(NodeState {
                behavior,
                calls: Arc::clone(&calls),
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let aggregator = aggregator_url.to_string();
        let name = name.to_string();
        let life = tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut registration = serde_json::json!({
                "name": name, "url": format!("http://{addr}"), "operator": name,
                "weight": 1, "max_concurrent_requests": 50
            });
            if behavior == Behavior::ForgedSignature {
                let key = hero_protocol::signing::VoteSigner::generate().expect("key");
                registration["public_key"] = key.public_key_hex().into();
            }
            loop {
                let reply = client
                    .post(format!("{aggregator}/api/nodes/register"))
                    .json(&registration)
                    .send()
                    .await;
                let Ok(reply) = reply else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                let Ok(reg) = reply.json::<RegistrationReply>().await else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let hb = client
                        .post(format!("{aggregator}/api/nodes/heartbeat"))
                        .bearer_auth(&reg.node_token)
                        .json(&serde_json::json!({"node_id": reg.node_id, "current_requests": 0}))
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
            tasks: vec![server, life],
        }
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
        let fighters = crate::fighters::pair();
        let honest = hero_engine::Sim.battle("b", &fighters, Some(9)).unwrap();
        let flipped = flip(&honest, &fighters);
        assert_ne!(flipped.winner, honest.winner);
        hero_engine::validate(&fighters, &flipped).unwrap();
    }
}
