//! The node's HTTP surface against the real Sim engine: auth, body errors, results, health,
//! stats, metrics.

use std::sync::Arc;

use hero_protocol::{BattleResult, NodeStats};
use serde_json::json;

use crate::common::{API_KEY, battle_body, config, error_of, fighter, spawn_node};

#[tokio::test]
async fn generate_battle_requires_the_api_key() {
    let node = spawn_node(config(), Arc::new(hero_engine::Sim)).await;
    let url = format!("{}/generate_battle", node.url);
    let body = battle_body("b-auth");

    let missing = node.client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    assert_eq!(error_of(missing).await.0, 401);

    let wrong = node
        .client
        .post(&url)
        .bearer_auth("not-the-key")
        .json(&body)
        .send()
        .await;
    let (status, code, _) = error_of(wrong.unwrap()).await;
    assert_eq!((status, code.as_str()), (401, "unauthorized"));

    let almost = node
        .client
        .post(&url)
        .bearer_auth(format!("{API_KEY}x"))
        .json(&body)
        .send();
    assert_eq!(almost.await.unwrap().status(), 401);

    // A bad key is refused before the body is even looked at.
    let garbage = node.client.post(&url).body("{{{").send().await.unwrap();
    assert_eq!(garbage.status(), 401);
    node.stop().await;
}

#[tokio::test]
async fn bad_bodies_get_422_with_a_reason() {
    let node = spawn_node(config(), Arc::new(hero_engine::Sim)).await;
    let url = format!("{}/generate_battle", node.url);
    let send = |body: &'static str| {
        node.client
            .post(&url)
            .bearer_auth(API_KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    let (status, code, reason) = error_of(send("this is not json").await.unwrap()).await;
    assert_eq!((status, code.as_str()), (422, "invalid_body"));
    assert!(reason.contains("expected"), "{reason}");

    let (status, _, reason) = error_of(send(r#"{"battle_id":"b1"}"#).await.unwrap()).await;
    assert_eq!(status, 422);
    assert!(reason.contains("prompt"), "{reason}");

    // Sim cannot fight without fighters: the engine's reason comes back.
    let no_fighters = node
        .battle(&json!({"battle_id": "b1", "prompt": "p"}))
        .send()
        .await;
    let (status, code, reason) = error_of(no_fighters.unwrap()).await;
    assert_eq!((status, code.as_str()), (422, "invalid_request"));
    assert!(reason.contains("fighters"), "{reason}");

    let one = json!({"battle_id": "b1", "prompt": "p", "fighters": [fighter("solo")]});
    let (status, _, reason) = error_of(node.battle(&one).send().await.unwrap()).await;
    assert_eq!(status, 422);
    assert!(reason.contains("two fighters"), "{reason}");
    node.stop().await;
}

#[tokio::test]
async fn oversized_body_is_413_in_our_shape() {
    let node = spawn_node(config(), Arc::new(hero_engine::Sim)).await;
    let mut body = battle_body("big");
    body["prompt"] = json!("x".repeat(hero_node::MAX_BODY_BYTES + 1));
    let (status, code, _) = error_of(node.battle(&body).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (413, "body_too_large"));
    node.stop().await;
}

#[tokio::test]
async fn sim_battle_with_two_fighters_is_a_valid_deterministic_result() {
    let node = spawn_node(config(), Arc::new(hero_engine::Sim)).await;
    let body = battle_body("b-ok");
    let response = node.battle(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let result: BattleResult = response.json().await.unwrap();
    assert!(["hero-a", "hero-b"].contains(&result.winner.as_str()));
    assert!(!result.battle_log.is_empty());
    hero_engine::validate(&[fighter("hero-a"), fighter("hero-b")], &result).unwrap();

    let again: BattleResult = node
        .battle(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again, result, "same fighters and seed, same battle");
    node.stop().await;
}

#[tokio::test]
async fn health_and_stats_reflect_requests() {
    let node = spawn_node(config(), Arc::new(hero_engine::Sim)).await;
    let health = node.health().await;
    assert_eq!(health.status, "ok");
    assert_eq!(health.name, "test-node");
    assert_eq!(health.backend, "sim");
    assert_eq!(
        (health.current_requests, health.max_concurrent_requests),
        (0, 5)
    );
    assert_eq!(health.version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
    // The key the node registers and signs with, so its URL can vouch for it.
    let key = health
        .public_key
        .expect("health presents the node's public key");
    assert!(hero_protocol::signing::is_public_key(&key), "{key}");

    assert_eq!(
        node.battle(&battle_body("s1"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        node.battle(&battle_body("s2"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let no_fighters = json!({"battle_id": "s3", "prompt": "p"});
    assert_eq!(
        node.battle(&no_fighters).send().await.unwrap().status(),
        422
    );
    let unauthorized = node
        .client
        .post(format!("{}/generate_battle", node.url))
        .send();
    assert_eq!(unauthorized.await.unwrap().status(), 401);

    let stats: NodeStats = node
        .client
        .get(format!("{}/stats", node.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats.name, "test-node");
    assert_eq!(stats.backend, "sim");
    assert_eq!((stats.requests, stats.successes, stats.failures), (3, 2, 1));
    assert_eq!(stats.rejected_at_capacity, 0);
    assert_eq!(
        (stats.current_requests, stats.max_concurrent_requests),
        (0, 5)
    );
    assert!(stats.average_latency_ms >= 0.0);
    node.stop().await;
}

#[tokio::test]
async fn metrics_are_exported_in_prometheus_text() {
    let node = spawn_node(config(), Arc::new(hero_engine::Sim)).await;
    assert_eq!(
        node.battle(&battle_body("m1"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let unauthorized = node
        .client
        .post(format!("{}/generate_battle", node.url))
        .send();
    assert_eq!(unauthorized.await.unwrap().status(), 401);

    let response = node
        .client
        .get(format!("{}/metrics", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains(r#"hero_node_battles_total{result="ok"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"hero_node_battles_total{result="unauthorized"}"#),
        "{text}"
    );
    assert!(
        text.contains("hero_node_battle_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("# TYPE hero_node_in_flight gauge"), "{text}");
    node.stop().await;
}

#[tokio::test]
async fn unknown_routes_answer_in_our_shape() {
    let node = spawn_node(config(), Arc::new(hero_engine::Sim)).await;
    let response = node
        .client
        .get(format!("{}/nope", node.url))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(response).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
    node.stop().await;
}

#[tokio::test]
async fn defaults_fill_name_key_and_public_url() {
    let config = hero_node::NodeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..hero_node::NodeConfig::default()
    };
    let app = hero_node::Application::build(config.clone(), Arc::new(hero_engine::Sim))
        .await
        .unwrap();
    let suffix = app.name().strip_prefix("hero-node-").unwrap();
    assert_eq!(suffix.len(), 6);
    assert!(app.api_key().len() >= 32);
    assert_eq!(app.public_url(), format!("http://{}", app.local_addr()));
    assert_eq!(
        app.ready_line(),
        format!(
            "hero-node ready: name={} listening=http://{} engine=sim",
            app.name(),
            app.local_addr()
        )
    );

    // A second node in the same process serves too, with its own key.
    let other = hero_node::Application::build(config, Arc::new(hero_engine::Sim))
        .await
        .unwrap();
    assert_ne!(app.api_key(), other.api_key());
    let key = app.api_key().to_string();
    let url = format!("http://{}/generate_battle", app.local_addr());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let running_other = tokio::spawn(other.run_until_stopped(shutdown.clone()));
    let client = reqwest::Client::new();
    let ok = client
        .post(&url)
        .bearer_auth(&key)
        .json(&battle_body("d1"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    shutdown.cancel();
    running.await.unwrap().unwrap();
    running_other.await.unwrap().unwrap();
}

/// A body that stops arriving is cut off after 10 s with 408 in the error shape, and the
/// answer says the connection closes (the rest of the body would stand in its way).
#[tokio::test]
async fn a_body_that_stops_arriving_gets_408_and_the_connection_closes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let node = spawn_node(config(), Arc::new(hero_engine::Sim)).await;
    let address = node.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "POST /generate_battle HTTP/1.1\r\nHost: node\r\nAuthorization: Bearer {API_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"battle_id\""
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(60),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("the node answers and closes")
    .unwrap();
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 408"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
}
