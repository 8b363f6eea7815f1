//! Capacity: at most `max_concurrent_requests` battles at once; the rest get 503.

use std::sync::Arc;

use hero_node::NodeConfig;
use hero_protocol::{ErrorBody, NodeStats};

use crate::common::{GatedEngine, battle_body, config, spawn_node};

#[tokio::test]
async fn third_concurrent_battle_is_refused_until_slots_free_up() {
    let engine = GatedEngine::default();
    let node = spawn_node(
        NodeConfig {
            max_concurrent_requests: 2,
            ..config()
        },
        Arc::new(engine.clone()),
    )
    .await;

    let first = tokio::spawn(node.battle(&battle_body("c1")).send());
    let second = tokio::spawn(node.battle(&battle_body("c2")).send());
    node.wait_in_flight(2).await;

    let third = node.battle(&battle_body("c3")).send().await.unwrap();
    assert_eq!(third.status(), 503);
    assert_eq!(third.headers()["retry-after"], "1");
    let body: ErrorBody = third.json().await.unwrap();
    assert_eq!(body.error.unwrap().code, "at_capacity");

    engine.open();
    assert_eq!(first.await.unwrap().unwrap().status(), 200);
    assert_eq!(second.await.unwrap().unwrap().status(), 200);
    node.wait_in_flight(0).await;

    let fourth = node.battle(&battle_body("c4")).send().await.unwrap();
    assert_eq!(fourth.status(), 200);

    let stats: NodeStats = node
        .client
        .get(format!("{}/stats", node.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats.rejected_at_capacity, 1);
    assert_eq!(stats.successes, 3);
    assert_eq!(stats.requests, 4);
    node.stop().await;
}
