//! Game API helpers for end-to-end tests: a logged-in player talking HTTP to the real
//! aggregator, and direct checks of the ledger against the balances in the database.

use hero_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{Connection, Row};

use crate::Aggregator;

/// A response: status, whether it was an idempotent replay, the `Retry-After` header, body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub replayed: bool,
    pub retry_after: Option<u64>,
    pub body: Value,
}

impl Reply {
    /// The error code of an error reply.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// Sends one request and reads the reply (JSON, or null for an empty body).
pub async fn send(request: reqwest::RequestBuilder) -> Reply {
    let resp = request.send().await.expect("request");
    let status = resp.status();
    let replayed = resp.headers().get("idempotent-replayed").is_some();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let text = resp.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Reply {
        status,
        replayed,
        retry_after,
        body,
    }
}

/// A player logged in as a guest.
#[derive(Clone)]
pub struct Player {
    pub id: String,
    pub access_token: String,
    pub refresh_token: String,
    pub device_id: String,
    pub device_secret: String,
    base: String,
    client: reqwest::Client,
}

impl Player {
    /// Signs up a new guest.
    pub async fn guest(agg: &Aggregator) -> Player {
        let client = reqwest::Client::new();
        let reply = send(client.post(format!("{}/api/v1/auth/guest", agg.url()))).await;
        assert_eq!(reply.status, 201, "guest login: {:?}", reply.body);
        let b = reply.body;
        Player {
            id: b["player"]["id"].as_str().expect("player id").to_string(),
            access_token: b["access_token"].as_str().expect("access").to_string(),
            refresh_token: b["refresh_token"].as_str().expect("refresh").to_string(),
            device_id: b["device_id"].as_str().expect("device id").to_string(),
            device_secret: b["device_secret"].as_str().expect("secret").to_string(),
            base: agg.url(),
            client,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The same player and tokens, talking to another replica.
    pub fn at(&self, agg: &Aggregator) -> Player {
        Player {
            base: agg.url(),
            ..self.clone()
        }
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.access_token)
    }

    pub async fn get(&self, path: &str) -> Reply {
        send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        send(self.request(reqwest::Method::POST, path).json(&body)).await
    }

    pub async fn post_with_key(&self, path: &str, body: Value, key: &str) -> Reply {
        send(
            self.request(reqwest::Method::POST, path)
                .header("Idempotency-Key", key)
                .json(&body),
        )
        .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        send(self.request(reqwest::Method::PATCH, path).json(&body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        send(self.request(reqwest::Method::DELETE, path)).await
    }

    /// The player's profile and balances.
    pub async fn me(&self) -> Value {
        let reply = self.get("/api/v1/players/me").await;
        assert_eq!(reply.status, 200, "me: {:?}", reply.body);
        reply.body
    }

    /// Summons a character; returns it.
    pub async fn summon(&self, prompt: &str) -> Value {
        let reply = self
            .post("/api/v1/characters", json!({ "prompt": prompt }))
            .await;
        assert_eq!(reply.status, 201, "summon: {:?}", reply.body);
        reply.body
    }

    /// Starts a battle; returns the 202 body.
    pub async fn battle(&self, character: &str, opponent: Option<&str>) -> Value {
        let mut body = json!({ "character_id": character });
        if let Some(o) = opponent {
            body["opponent_id"] = json!(o);
        }
        let reply = self.post("/api/v1/battles", body).await;
        assert_eq!(reply.status, 202, "battle: {:?}", reply.body);
        reply.body
    }
}

/// Every player's balances next to the sum of their ledger rows, per resource:
/// `(player, resource, balance, ledger sum)`.
pub async fn ledger_report(db: &TestDb) -> Vec<(String, String, i64, i64)> {
    let mut conn = sqlx::AnyConnection::connect(&db.url)
        .await
        .expect("connect test db");
    let players = sqlx::query(
        "SELECT id, gold, prompt, prompt_power, exp_potion, energy FROM players ORDER BY id",
    )
    .fetch_all(&mut conn)
    .await
    .expect("players");
    let mut out = Vec::new();
    for p in players {
        let id: String = p.get("id");
        for resource in ["gold", "prompt", "prompt_power", "exp_potion", "energy"] {
            let balance: i64 = p.get(resource);
            let sum: i64 = sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(delta), 0) AS BIGINT) FROM ledger \
                 WHERE player_id = $1 AND resource = $2",
            )
            .bind(&id)
            .bind(resource)
            .fetch_one(&mut conn)
            .await
            .expect("ledger sum");
            out.push((id.clone(), resource.to_string(), balance, sum));
        }
    }
    let _ = conn.close().await;
    out
}

/// Asserts that for every player and resource the ledger sums to the balance.
pub async fn assert_ledger_balances(db: &TestDb) {
    let report = ledger_report(db).await;
    assert!(!report.is_empty(), "no players in the database");
    for (player, resource, balance, sum) in &report {
        assert_eq!(
            balance, sum,
            "player {player}: {resource} balance {balance} but the ledger sums to {sum}"
        );
        assert!(*balance >= 0, "player {player}: negative {resource}");
    }
}

/// Waits until no battle is PENDING or RUNNING.
pub async fn all_battles_settled(db: &TestDb, secs: u64) {
    crate::eventually(secs, "every battle to settle", || async {
        let open = db
            .scalar_i64(
                "SELECT COUNT(*) FROM battles WHERE status IN ('PENDING', 'RUNNING') AND id <> $1",
                "",
            )
            .await;
        (open == 0).then_some(())
    })
    .await;
}
