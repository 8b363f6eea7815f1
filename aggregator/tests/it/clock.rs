//! The game's time rules through the real HTTP API with a hand-moved clock: energy
//! regenerates from the last update, daily quests reset at UTC midnight — no sleeping.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use hero_aggregator::Application;
use hero_aggregator::cli::Cli;
use hero_aggregator::clock::{Clock, ManualClock};
use hero_testkit::{Backend, TestDb};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const DAY_MS: i64 = 86_400_000;

struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Value {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    async fn guest(&self) -> String {
        let resp = self
            .client
            .post(format!("{}/api/v1/auth/guest", self.base))
            .send()
            .await
            .unwrap();
        let body: Value = resp.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }
}

fn summon_progress(quests: &Value) -> i64 {
    quests["quests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["kind"] == "summon")
        .map(|q| q["progress"].as_i64().unwrap())
        .unwrap()
}

async fn energy_regenerates_and_quests_reset(url: &str) {
    // 22:00 UTC on some day: the next UTC midnight is two hours away.
    let start = (1_800_000_000_000 / DAY_MS) * DAY_MS + 22 * 3_600_000;
    let clock = Arc::new(ManualClock::new(start));
    let cli = Cli::try_parse_from([
        "hero-aggregator",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        url,
        "--local-nodes",
        "3",
        "--access-token-ttl-secs",
        "86400",
        "--energy-regen-secs",
        "360",
        "--heartbeat-interval-secs",
        "3600",
    ])
    .unwrap();
    let app = Application::build_with_clock(cli.serve, clock.clone())
        .await
        .unwrap();
    let api = Api {
        base: format!("http://{}", app.local_addr().unwrap()),
        client: reqwest::Client::new(),
    };
    let stop = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(stop.clone()));
    for _ in 0..100 {
        let health: Value = api
            .client
            .get(format!("{}/api/health", api.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if health["nodes"]["online"] == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let me = api.guest().await;
    let rival = api.guest().await;
    let hero = api
        .call(
            reqwest::Method::POST,
            "/api/v1/characters",
            &me,
            Some(json!({"prompt": "a knight"})),
        )
        .await;
    api.call(
        reqwest::Method::POST,
        "/api/v1/characters",
        &rival,
        Some(json!({"prompt": "a monk"})),
    )
    .await;
    let quests = api
        .call(reqwest::Method::GET, "/api/v1/quests", &me, None)
        .await;
    assert_eq!(summon_progress(&quests), 1);

    let started = api
        .call(
            reqwest::Method::POST,
            "/api/v1/battles",
            &me,
            Some(json!({"character_id": hero["id"]})),
        )
        .await;
    assert_eq!(started["energy_left"], 90);
    // 5 × 360 s later, 5 points are back.
    clock.advance(5 * 360_000);
    let profile = api
        .call(reqwest::Method::GET, "/api/v1/players/me", &me, None)
        .await;
    assert_eq!(profile["energy"], 95, "{profile}");
    // Past UTC midnight: a new day, no progress yet; energy stops at the maximum.
    clock.advance(2 * 3_600_000);
    assert!(clock.now_ms() / DAY_MS > start / DAY_MS);
    let quests = api
        .call(reqwest::Method::GET, "/api/v1/quests", &me, None)
        .await;
    assert_eq!(summon_progress(&quests), 0, "{quests}");
    let profile = api
        .call(reqwest::Method::GET, "/api/v1/players/me", &me, None)
        .await;
    assert_eq!(profile["energy"], 100, "{profile}");
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(60), server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn energy_regenerates_and_quests_reset_sqlite() {
    let db = TestDb::new(Backend::Sqlite).await;
    energy_regenerates_and_quests_reset(&db.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn energy_regenerates_and_quests_reset_postgres() {
    let pg = TestDb::new(Backend::Postgres).await;
    energy_regenerates_and_quests_reset(&pg.url).await;
    pg.remove().await;
}
