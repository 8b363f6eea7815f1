//! Shared test harness: start a node on port 0, engines that wait for a gate, a stand-in
//! aggregator.
#![expect(clippy::unwrap_used, reason = "a test harness fails loudly")]

pub mod aggregator;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hero_engine::{BattleEngine, EngineError};
use hero_node::{Application, NodeConfig};
use hero_protocol::{BattleLogEntry, BattleRequest, BattleResult, ErrorBody, Fighter, NodeHealth};
use hero_testkit::fixtures;
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const API_KEY: &str = "test-api-key";

/// Things that happened, in order, across the node's engine and the stand-in aggregator.
#[derive(Clone, Default)]
pub struct Events(Arc<Mutex<Vec<String>>>);

impl Events {
    pub fn push(&self, event: impl Into<String>) {
        self.0.lock().unwrap().push(event.into());
    }
    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// An engine whose battles wait until [`GatedEngine::open`] is called.
#[derive(Clone, Default)]
pub struct GatedEngine {
    pub gate: CancellationToken,
    pub events: Events,
}

impl GatedEngine {
    pub fn open(&self) {
        self.gate.cancel();
    }
}

#[async_trait]
impl BattleEngine for GatedEngine {
    fn kind(&self) -> &'static str {
        "gated"
    }

    async fn generate(&self, request: &BattleRequest) -> Result<BattleResult, EngineError> {
        self.gate.cancelled().await;
        self.events
            .push(format!("battle finished {}", request.battle_id));
        Ok(BattleResult {
            winner: "hero-a".into(),
            battle_log: vec![BattleLogEntry {
                round: 1,
                actor: "hero-a".into(),
                target: "hero-b".into(),
                action: "attack".into(),
                damage: 100,
                target_hp: 0,
                text: "hero-a wins".into(),
            }],
            battle_description: "a short fight".into(),
        })
    }
}

pub struct TestNode {
    pub url: String,
    pub public_url: String,
    pub name: String,
    pub shutdown: CancellationToken,
    pub handle: JoinHandle<anyhow::Result<()>>,
    pub client: reqwest::Client,
}

pub fn config() -> NodeConfig {
    NodeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        api_key: Some(API_KEY.into()),
        name: Some("test-node".into()),
        ..NodeConfig::default()
    }
}

pub async fn spawn_node(config: NodeConfig, engine: Arc<dyn BattleEngine>) -> TestNode {
    let app = Application::build(config, engine).await.unwrap();
    let addr = app.local_addr();
    let public_url = app.public_url();
    let name = app.name().to_string();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    TestNode {
        url: format!("http://{addr}"),
        public_url,
        name,
        shutdown,
        handle,
        client: reqwest::Client::new(),
    }
}

impl TestNode {
    pub fn battle(&self, body: &serde_json::Value) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}/generate_battle", self.url))
            .bearer_auth(API_KEY)
            .json(body)
    }

    pub async fn health(&self) -> NodeHealth {
        let response = self
            .client
            .get(format!("{}/health", self.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Waits until `n` battles are in flight.
    pub async fn wait_in_flight(&self, n: u32) {
        for _ in 0..200 {
            if self.health().await.current_requests == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("never saw {n} battles in flight");
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .expect("node did not stop")
            .unwrap()
            .unwrap();
    }
}

pub fn fighter(id: &str) -> Fighter {
    let knight = fixtures::fighter(id, &format!("Sir {id}"), 50, 40, 30, 3);
    fixtures::skilled(knight, "swings a big sword")
}

pub fn battle_body(battle_id: &str) -> serde_json::Value {
    json!({
        "battle_id": battle_id,
        "prompt": "fight!",
        "seed": 42,
        "fighters": [fighter("hero-a"), fighter("hero-b")],
    })
}

/// Status, error code and reason of an error answer, checking FastAPI's `detail` too.
pub async fn error_of(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    let parsed: ErrorBody = serde_json::from_value(body.clone()).unwrap();
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        body["detail"], body["error"]["message"],
        "FastAPI's detail mirrors our message"
    );
    (status, code, parsed.message())
}

/// Polls `check` until it holds, for up to `secs` seconds.
pub async fn eventually(what: &str, secs: u64, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for: {what}");
}
