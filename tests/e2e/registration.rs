//! Node registration rules over real HTTP in an open network (no operator accounts):
//! enrollment tokens, the node URL policy, node tokens on heartbeats and leaves,
//! re-registration of the same URL by the same key.

use hero_protocol::signing::VoteSigner;
use hero_testkit::{Backend, TestDb, on_both_databases};
use hero_tests::enroll::register;
use hero_tests::{Aggregator, AggregatorOptions};
use serde_json::{Value, json};

on_both_databases!(
    enrollment_token_is_required_when_configured,
    private_and_metadata_urls_are_refused,
    heartbeats_and_leaves_need_the_node_token,
    reregistering_a_url_updates_the_node_and_rotates_its_token,
);

const ENROLL: &str = "enroll-0123456789abcdef";

fn key() -> VoteSigner {
    VoteSigner::generate().unwrap()
}

async fn post(url: String, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn registration(url: &str) -> Value {
    json!({"name": "n1", "url": url, "api_key": "k", "weight": 2, "max_concurrent_requests": 4, "operator": "op"})
}

async fn enrollment_token_is_required_when_configured(backend: Backend) {
    let db = TestDb::new(backend).await;
    let options = AggregatorOptions {
        extra: vec!["--enrollment-token".into(), ENROLL.into()],
        ..AggregatorOptions::default()
    };
    let agg = Aggregator::start(&db, &options);
    let k = key();
    let (status, body) = register(
        &agg.url(),
        None,
        registration("http://127.0.0.1:9"),
        Some(&k),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("enrollment token")
    );
    let (status, _) = register(
        &agg.url(),
        Some("wrong"),
        registration("http://127.0.0.1:9"),
        Some(&k),
    )
    .await;
    assert_eq!(status, 401);
    let (status, body) = register(
        &agg.url(),
        Some(ENROLL),
        registration("http://127.0.0.1:9"),
        Some(&k),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["node_token"].as_str().unwrap().len() >= 32);
    // The token is stored hashed, never as given.
    let stored = db
        .scalar_i64(
            "SELECT COUNT(*) FROM nodes WHERE token_hash = $1",
            body["node_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(stored, 0);
}

async fn private_and_metadata_urls_are_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let options = AggregatorOptions {
        allow_private: false,
        ..AggregatorOptions::default()
    };
    let agg = Aggregator::start(&db, &options);
    let k = key();
    for url in [
        "http://127.0.0.1:8001",
        "http://169.254.169.254",
        "ftp://8.8.8.8",
        "http://[fe80::1]",
        "nonsense",
        "http://198.18.0.1",
        "http://240.0.0.1",
        "http://168.63.129.16",
    ] {
        let (status, body) = register(&agg.url(), None, registration(url), Some(&k)).await;
        assert_eq!(status, 422, "{url}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let (status, body) = register(
        &agg.url(),
        None,
        json!({"name": "", "url": "http://8.8.8.8"}),
        Some(&k),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = post(
        format!("{}/api/nodes/register", agg.url()),
        None,
        json!("not an object"),
    )
    .await;
    assert_eq!(status, 422);
    // An open network takes IP addresses only: a host name could later point several nodes
    // (several seats) at one machine.
    let (status, body) = register(
        &agg.url(),
        None,
        registration("http://localhost:8001"),
        Some(&k),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("IP address"),
        "{body}"
    );
    // NUL bytes in any text field: 422, never a 500 (PostgreSQL text cannot hold them).
    for field in ["name", "api_key", "operator", "backend", "version"] {
        let mut body = registration("http://8.8.8.8");
        body[field] = json!("bad\u{0}value");
        let (status, answer) = register(&agg.url(), None, body, Some(&k)).await;
        assert_eq!(status, 422, "{field}: {answer}");
    }
    assert_eq!(
        db.scalar_i64("SELECT COUNT(*) FROM nodes WHERE name <> $1", "")
            .await,
        0
    );
}

async fn heartbeats_and_leaves_need_the_node_token(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let (_, reg) = register(
        &agg.url(),
        None,
        registration("http://127.0.0.1:9"),
        Some(&key()),
    )
    .await;
    let id = reg["node_id"].as_str().unwrap();
    let token = reg["node_token"].as_str().unwrap();
    let heartbeat = format!("{}/api/nodes/heartbeat", agg.url());
    let hb = json!({"node_id": id, "current_requests": 1});
    assert_eq!(post(heartbeat.clone(), None, hb.clone()).await.0, 401);
    assert_eq!(
        post(heartbeat.clone(), Some("forged"), hb.clone()).await.0,
        401
    );
    let (status, body) = post(heartbeat.clone(), Some(token), hb.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["heartbeat_interval_secs"], 1);
    let unknown = json!({"node_id": "00000000-0000-0000-0000-000000000000", "current_requests": 0});
    assert_eq!(post(heartbeat.clone(), Some(token), unknown).await.0, 404);
    let client = reqwest::Client::new();
    let leave = format!("{}/api/nodes/{id}", agg.url());
    assert_eq!(
        client
            .delete(&leave)
            .bearer_auth("forged")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        client
            .delete(&leave)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    // A node that left must register again.
    assert_eq!(post(heartbeat, Some(token), hb).await.0, 404);
    let nodes = agg.get("/api/nodes").await;
    assert_eq!(nodes[0]["status"], "offline");
    // In an open network a node is run by its host, whatever operator it names.
    let anonymous = json!({"name": "anon", "url": "http://127.0.0.1:10", "operator": "me"});
    let (status, _) = register(&agg.url(), None, anonymous, Some(&key())).await;
    assert_eq!(status, 200);
    let nodes = agg.get("/api/nodes").await;
    let anon = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "anon")
        .unwrap();
    assert_eq!(anon["operator"], "host 127.0.0.1");
}

async fn reregistering_a_url_updates_the_node_and_rotates_its_token(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let k = key();
    let (_, first) = register(
        &agg.url(),
        None,
        registration("http://127.0.0.1:9"),
        Some(&k),
    )
    .await;
    let mut again = registration("http://127.0.0.1:9/");
    again["name"] = json!("renamed");
    again["weight"] = json!(7);
    // Signed later than the first (timestamps must grow).
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (status, second) = register(&agg.url(), None, again, Some(&k)).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(first["node_id"], second["node_id"], "same URL, same node");
    assert_ne!(first["node_token"], second["node_token"]);
    let heartbeat = format!("{}/api/nodes/heartbeat", agg.url());
    let hb = json!({"node_id": first["node_id"], "current_requests": 0});
    assert_eq!(
        post(heartbeat.clone(), first["node_token"].as_str(), hb.clone())
            .await
            .0,
        401
    );
    assert_eq!(
        post(heartbeat, second["node_token"].as_str(), hb).await.0,
        200
    );
    let nodes = agg.get("/api/nodes").await;
    assert_eq!(nodes.as_array().unwrap().len(), 1);
    assert_eq!(nodes[0]["name"], "renamed");
    assert_eq!(
        nodes[0]["weight"], 1,
        "an open network gives every node weight 1, whatever it asks"
    );
    assert_eq!(nodes[0]["signed"], true);
}
