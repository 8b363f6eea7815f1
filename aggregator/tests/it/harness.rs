//! An aggregator in this process on a hand-moved clock, with its HTTP API a real client
//! talks to: for the tests of the game's schedule (the ladder, betting, the scheduler).

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use hero_aggregator::Application;
use hero_aggregator::cli::Cli;
use hero_aggregator::clock::ManualClock;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub const ADMIN: &str = "it-admin-token-0123456789";
pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 60 * MINUTE;

pub struct Game {
    pub base: String,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// An HTTP answer: status and JSON body (null when not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Game {
    /// Starts now (the wall clock; then moved by hand) with `extra` flags; waits for `nodes`
    /// local nodes to be online.
    pub async fn start(url: &str, nodes: usize, extra: &[&str]) -> Game {
        use hero_aggregator::clock::{Clock, SystemClock};
        let start_ms = SystemClock.now_ms();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
            )
            .with_test_writer()
            .try_init();
        let clock = Arc::new(ManualClock::new(start_ms));
        let nodes_flag = nodes.to_string();
        let mut args = vec!["hero-aggregator"];
        let base = [
            ("--listen", "127.0.0.1:0"),
            ("--database-url", url),
            ("--admin-token", ADMIN),
            ("--local-nodes", nodes_flag.as_str()),
            ("--access-token-ttl-secs", "86400"),
            // Nodes register once, at the real time (their signature must be fresh), and stay
            // online however far the test moves the clock.
            ("--heartbeat-interval-secs", "3600"),
            ("--missed-heartbeats", "100"),
            ("--scheduler-tick", "20ms"),
            ("--rate-limit-requests-per-hour", "1000000"),
            // Every test talks from 127.0.0.1: the per-address limits have tests of their own.
            ("--ip-limit-auth-per-minute", "100000"),
            ("--ip-limit-accounts-per-day", "0"),
            ("--db-max-connections", "20"),
        ];
        for (flag, value) in base {
            if !extra.contains(&flag) {
                args.extend([flag, value]);
            }
        }
        args.extend_from_slice(extra);
        let cli = Cli::try_parse_from(args).unwrap();
        let app = Application::build_with_clock(cli.serve, clock.clone())
            .await
            .unwrap();
        let game = Game {
            base: format!("http://{}", app.local_addr().unwrap()),
            client: reqwest::Client::new(),
            clock,
            stop: CancellationToken::new(),
            server: tokio::spawn(async { Ok(()) }),
        };
        let stop = game.stop.clone();
        let game = Game {
            server: tokio::spawn(app.run_until_stopped(stop)),
            ..game
        };
        if nodes > 0 {
            game.until("the local nodes to be online", || async {
                let health = game
                    .call(reqwest::Method::GET, "/api/health", "", None)
                    .await;
                (health.body["nodes"]["online"] == nodes).then_some(())
            })
            .await;
        }
        game
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Answer {
        self.send(method, path, token, body, None).await
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> Answer {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(Value::Null);
        Answer { status, body }
    }

    /// A call that must succeed; its body.
    pub async fn ok(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Value {
        let a = self.call(method, path, token, body).await;
        assert!(
            (200..300).contains(&a.status),
            "{path}: {} {}",
            a.status,
            a.body
        );
        a.body
    }

    pub async fn get(&self, path: &str, token: &str) -> Value {
        self.ok(reqwest::Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    /// A new guest's access token.
    pub async fn guest(&self) -> String {
        let a = self
            .call(reqwest::Method::POST, "/api/v1/auth/guest", "", None)
            .await;
        assert_eq!(a.status, 201, "{}", a.body);
        a.body["access_token"].as_str().unwrap().to_owned()
    }

    /// A guest with one character: (token, player id, character id).
    pub async fn fighter(&self, prompt: &str) -> (String, String, String) {
        let token = self.guest().await;
        let me = self.get("/api/v1/players/me", &token).await;
        let hero = self
            .ok(
                reqwest::Method::POST,
                "/api/v1/characters",
                &token,
                Some(serde_json::json!({ "prompt": prompt })),
            )
            .await;
        (
            token,
            me["id"].as_str().unwrap().to_owned(),
            hero["id"].as_str().unwrap().to_owned(),
        )
    }

    pub fn advance(&self, ms: i64) {
        self.clock.advance(ms);
    }

    /// Polls `check` until it answers (the scheduler ticks every 20 ms), for up to 20 s.
    pub async fn until<T, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        for _ in 0..1000 {
            if let Some(v) = check().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("timed out waiting for {what}");
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.server.await;
    }
}
