//! Life cycle against a stand-in aggregator: register whenever it comes up, heartbeat,
//! register again when forgotten, leave after draining at shutdown.

use std::sync::Arc;
use std::time::Duration;

use hero_node::NodeConfig;

use crate::common::aggregator::{Call, StandIn};
use crate::common::{API_KEY, Events, GatedEngine, battle_body, config, eventually, spawn_node};

fn node_config(aggregator: &str) -> NodeConfig {
    NodeConfig {
        aggregator_url: Some(format!("{aggregator}/")),
        enrollment_token: Some("enroll-me".into()),
        operator: Some("acme".into()),
        weight: 3,
        max_concurrent_requests: 4,
        ..config()
    }
}

#[tokio::test]
async fn node_started_first_registers_once_the_aggregator_comes_up() {
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let aggregator_addr = reserved.local_addr().unwrap();
    drop(reserved);

    let node = spawn_node(
        node_config(&format!("http://{aggregator_addr}")),
        Arc::new(hero_engine::Sim),
    )
    .await;
    // The node is serving while the aggregator is still down.
    assert_eq!(node.health().await.status, "ok");
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let standin = StandIn::start(aggregator_addr, Some("enroll-me"), Events::default()).await;
    eventually("registration", 15, || !standin.registrations().is_empty()).await;

    let registration = &standin.registrations()[0];
    assert_eq!(registration.name, node.name);
    assert_eq!(registration.url, node.public_url);
    assert_eq!(registration.url, node.url);
    assert_eq!(registration.api_key.as_deref(), Some(API_KEY));
    assert_eq!(registration.weight, 3);
    assert_eq!(registration.max_concurrent_requests, 4);
    assert_eq!(registration.operator.as_deref(), Some("acme"));
    assert_eq!(registration.backend.as_deref(), Some("sim"));
    assert!(registration.version.is_some());
    assert!(matches!(
        &standin.calls()[0],
        Call::Register { bearer: Some(token), .. } if token == "enroll-me"
    ));

    eventually("a heartbeat", 10, || {
        !standin.accepted_heartbeats().is_empty()
    })
    .await;
    let (beat, bearer) = standin.accepted_heartbeats()[0].clone();
    assert_eq!(standin.token_of(&beat.node_id), bearer);
    assert_eq!(beat.current_requests, 0);
    node.stop().await;
}

#[tokio::test]
async fn forgotten_node_registers_again() {
    let standin = StandIn::start("127.0.0.1:0".parse().unwrap(), None, Events::default()).await;
    let node = spawn_node(node_config(&standin.url()), Arc::new(hero_engine::Sim)).await;
    eventually("first heartbeat", 10, || {
        !standin.accepted_heartbeats().is_empty()
    })
    .await;
    let first_id = standin.registrations().len();
    assert_eq!(first_id, 1);

    standin.forget_all();
    eventually("re-registration", 10, || standin.registrations().len() == 2).await;
    let refused = standin
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::Heartbeat { known: false, .. }))
        .count();
    assert!(refused >= 1, "re-registration follows a refused heartbeat");

    // Heartbeats continue under the new identity.
    let new_id = standin.node_ids().pop().unwrap();
    eventually("heartbeat with the new id", 10, || {
        standin
            .accepted_heartbeats()
            .iter()
            .any(|(b, _)| b.node_id == new_id)
    })
    .await;
    node.stop().await;
}

#[tokio::test]
async fn refused_registration_keeps_the_node_serving() {
    let standin = StandIn::start(
        "127.0.0.1:0".parse().unwrap(),
        Some("right"),
        Events::default(),
    )
    .await;
    let config = NodeConfig {
        enrollment_token: Some("wrong".into()),
        ..node_config(&standin.url())
    };
    let node = spawn_node(config, Arc::new(hero_engine::Sim)).await;
    eventually("a refused registration", 10, || {
        standin.calls().iter().any(|c| {
            matches!(
                c,
                Call::Register {
                    accepted: false,
                    ..
                }
            )
        })
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!node.handle.is_finished(), "a refusal never stops the node");
    assert_eq!(node.health().await.status, "ok");
    assert!(standin.registrations().is_empty());
    node.stop().await;
}

#[tokio::test]
async fn shutdown_leaves_the_registry_first_then_drains_in_flight_battles() {
    let events = Events::default();
    let standin = StandIn::start("127.0.0.1:0".parse().unwrap(), None, events.clone()).await;
    let engine = GatedEngine {
        events: events.clone(),
        ..GatedEngine::default()
    };
    let node = spawn_node(node_config(&standin.url()), Arc::new(engine.clone())).await;
    eventually("registration", 10, || standin.registrations().len() == 1).await;
    let node_id = standin.node_ids().pop().unwrap();
    let token = standin.token_of(&node_id);

    let in_flight = tokio::spawn(node.battle(&battle_body("drain-1")).send());
    node.wait_in_flight(1).await;
    node.shutdown.cancel();
    // The aggregator hears first, so it assigns nothing more to a node about to stop.
    eventually("deregistration", 10, || {
        standin.deregistrations() == vec![(node_id.clone(), token.clone())]
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!node.handle.is_finished(), "still draining");
    // No new work is accepted while draining.
    assert!(
        node.client
            .get(format!("{}/health", node.url))
            .send()
            .await
            .is_err()
    );

    engine.open();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 200, "the in-flight battle completes");
    tokio::time::timeout(Duration::from_secs(10), node.handle)
        .await
        .expect("node stops after draining")
        .unwrap()
        .unwrap();

    assert_eq!(
        events.all(),
        vec![
            format!("deregistered {node_id}"),
            "battle finished drain-1".to_string(),
        ]
    );
}
