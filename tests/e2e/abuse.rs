//! Abusive and unlucky traffic against real processes: thousands of idle connections, a
//! registration flood from one address, nodes at capacity shared by two aggregator replicas.

use hero_protocol::signing::VoteSigner;
use hero_testkit::fixtures::pair;
use hero_testkit::{Backend, TestDb, on_both_databases};
use hero_tests::enroll::register;
use hero_tests::{Aggregator, AggregatorOptions, Behavior, NodeProcess, TestNode};
use serde_json::json;

on_both_databases!(
    idle_connections_do_not_stop_honest_traffic,
    a_registration_flood_is_limited_and_the_registry_stays_bounded,
    two_replicas_sharing_busy_nodes_never_quarantine_them,
);

/// Opens `n` TCP connections to `target` from 127.0.0.2 and keeps them idle (no byte sent).
async fn idle_connections(target: std::net::SocketAddr, n: usize) -> Vec<tokio::net::TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        if let Ok(stream) = socket.connect(target).await {
            held.push(stream);
        }
    }
    held
}

async fn idle_connections_do_not_stop_honest_traffic(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let nodes: Vec<_> = (1..=3)
        .map(|i| NodeProcess::start(&agg.url(), &format!("node-{i}"), &[]))
        .collect();
    agg.wait_online(3).await;
    let at_aggregator = idle_connections(agg.process.addr, 2_000).await;
    let at_node = idle_connections(nodes[0].process.addr, 2_000).await;
    assert!(!at_aggregator.is_empty() && !at_node.is_empty());
    // Honest traffic still flows: players, the node protocol, and the aggregator's calls to
    // the node the idle connections target.
    let health = reqwest::get(format!("{}/api/health", agg.url()))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let fighters = pair();
    for seed in 0..5 {
        agg.quorum_battle(&fighters, seed).await;
    }
    let node_health = reqwest::get(format!("{}/health", nodes[0].process.url()))
        .await
        .unwrap();
    assert_eq!(node_health.status(), 200);
    drop(at_aggregator);
    drop(at_node);
}

async fn a_registration_flood_is_limited_and_the_registry_stays_bounded(backend: Backend) {
    let db = TestDb::new(backend).await;
    let options = AggregatorOptions {
        extra: vec![
            "--ip-limit-register-per-minute".into(),
            "5".into(),
            "--ip-limit-auth-per-minute".into(),
            "3".into(),
            "--node-retention-secs".into(),
            "3".into(),
            "--trusted-proxy".into(),
            "127.0.0.1/32".into(),
        ],
        ..AggregatorOptions::default()
    };
    let agg = Aggregator::start(&db, &options);
    let mut accepted = 0;
    let mut limited = 0;
    let mut flooded_id = String::new();
    for i in 0..20 {
        let k = VoteSigner::generate().unwrap();
        let body =
            json!({"name": format!("flood-{i}"), "url": format!("http://127.0.0.1:{}", 1000 + i)});
        let (status, answer) = register(&agg.url(), None, body, Some(&k)).await;
        match status {
            200 => {
                accepted += 1;
                flooded_id = answer["node_id"].as_str().unwrap().to_string();
            }
            429 => {
                limited += 1;
                assert_eq!(answer["error"]["code"], "rate_limited");
            }
            other => panic!("{other}: {answer}"),
        }
    }
    assert_eq!((accepted, limited), (5, 15));
    // Guest sign-ups from one address are limited the same way, with Retry-After.
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = client
            .post(format!("{}/api/v1/auth/guest", agg.url()))
            .send()
            .await
            .unwrap();
        statuses.push((r.status().as_u16(), r.headers().contains_key("retry-after")));
    }
    assert_eq!(statuses[..3], [(201, false), (201, false), (201, false)]);
    assert_eq!(statuses[3], (429, true));
    // Behind a trusted proxy (here 127.0.0.1), X-Forwarded-For names the client: another
    // client is not limited by the first one's sign-ups.
    let other = client
        .post(format!("{}/api/v1/auth/guest", agg.url()))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 201);
    assert_eq!(agg.get("/api/nodes").await.as_array().unwrap().len(), 5);
    // The flood never heartbeats: past the retention period it leaves memory (the rows stay).
    hero_tests::eventually(20, "silent nodes to leave memory", || async {
        agg.get("/api/nodes")
            .await
            .as_array()
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    assert_eq!(
        db.scalar_i64("SELECT COUNT(*) FROM nodes WHERE name LIKE $1", "flood-%")
            .await,
        5
    );
    // A heartbeat with a wrong token does not bring a forgotten node back into memory.
    let hb = client
        .post(format!("{}/api/nodes/heartbeat", agg.url()))
        .bearer_auth("not-its-token")
        .json(&json!({"node_id": flooded_id, "current_requests": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(hb.status(), 401);
    assert!(agg.get("/api/nodes").await.as_array().unwrap().is_empty());
}

async fn two_replicas_sharing_busy_nodes_never_quarantine_them(backend: Backend) {
    let db = TestDb::new(backend).await;
    let options = AggregatorOptions {
        node_timeout_ms: 5_000,
        deadline_ms: 8_000,
        lease_ms: 12_000,
        ..AggregatorOptions::default()
    };
    let a = Aggregator::start(&db, &options);
    let b = Aggregator::start(&db, &options);
    let busy = Behavior::Limited {
        delay_ms: 200,
        max: 1,
    };
    let _nodes = [
        TestNode::start(&a.url(), "busy-1", busy).await,
        TestNode::start(&a.url(), "busy-2", busy).await,
        TestNode::start(&a.url(), "busy-3", busy).await,
    ];
    a.wait_online(3).await;
    b.wait_online(3).await;
    let fighters = pair();
    let mut ids = Vec::new();
    for seed in 0..10 {
        ids.push((a.create_battle(&fighters, seed).await, seed));
        ids.push((b.create_battle(&fighters, 100 + seed).await, 100 + seed));
    }
    for (id, _) in &ids {
        let battle = a.settled(id, 90).await;
        assert_eq!(battle["status"], "COMPLETED", "{battle}");
        for replica in [&a, &b] {
            let nodes = replica.get("/api/nodes").await;
            for node in nodes.as_array().unwrap() {
                assert_ne!(node["status"], "quarantined", "{node}");
                assert_eq!(node["reputation"], 1.0, "busy cost reputation: {node}");
            }
        }
    }
    let mut quorum = 0;
    for (id, _) in &ids {
        if a.get(&format!("/api/v1/battles/{id}")).await["settled_by"] == "quorum" {
            quorum += 1;
        }
    }
    assert!(quorum > 0, "busy nodes still settled battles");
}
