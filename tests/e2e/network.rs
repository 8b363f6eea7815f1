//! The node network end to end: real `hero-aggregator` and `hero-node` processes register,
//! heartbeat, settle battles by quorum, and fall back when the quorum is lost.

use hero_testkit::fixtures::pair;
use hero_testkit::{Backend, TestDb, on_both_databases};
use hero_tests::fighters::sim_winner;
use hero_tests::{Aggregator, AggregatorOptions, NodeProcess, free_port};

on_both_databases!(
    three_nodes_register_and_heartbeat,
    battle_settles_by_quorum_with_three_valid_votes,
    one_node_killed_still_settles_by_quorum,
    two_of_three_killed_falls_back,
    node_started_before_aggregator_joins,
    graceful_node_shutdown_leaves_the_registry,
    busy_nodes_make_battles_wait_not_fall_back,
);

fn start_nodes(agg: &Aggregator, n: usize) -> Vec<NodeProcess> {
    (1..=n)
        .map(|i| NodeProcess::start(&agg.url(), &format!("node-{i}"), &[]))
        .collect()
}

async fn three_nodes_register_and_heartbeat(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let _nodes = start_nodes(&agg, 3);
    agg.wait_online(3).await;
    let before = agg.get("/api/nodes").await;
    let first_hb: Vec<i64> = before
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["last_heartbeat_ms"].as_i64().unwrap())
        .collect();
    // Heartbeats (every second) move every node's last_heartbeat forward.
    hero_tests::eventually(10, "heartbeats to advance", || async {
        let now = agg.get("/api/nodes").await;
        let later: Vec<i64> = now
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["last_heartbeat_ms"].as_i64().unwrap())
            .collect();
        later
            .iter()
            .zip(&first_hb)
            .all(|(l, f)| l > f)
            .then_some(())
    })
    .await;
    // The public list never carries secrets.
    let text = serde_json::to_string(&before).unwrap();
    assert!(
        !text.contains("api_key") && !text.contains("token"),
        "{text}"
    );
    let health = agg.get("/api/health").await;
    assert_eq!(health["database"], "ok");
    assert_eq!(health["nodes"]["online"], 3);
    assert_eq!(health["status"], "ok");
    // Heartbeats are flushed to the database in batches, not lost.
    hero_tests::eventually(10, "heartbeats flushed", || async {
        let stored = db
            .scalar_i64_by_number(
                "SELECT COUNT(*) FROM nodes WHERE last_heartbeat_ms > $1",
                *first_hb.iter().min().unwrap(),
            )
            .await;
        (stored == 3).then_some(())
    })
    .await;
}

async fn battle_settles_by_quorum_with_three_valid_votes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let _nodes = start_nodes(&agg, 3);
    agg.wait_online(3).await;
    let fighters = pair();
    let id = agg.create_battle(&fighters, 4242).await;
    let battle = agg.settled(&id, 30).await;
    assert_eq!(battle["status"], "COMPLETED", "{battle}");
    assert_eq!(battle["settled_by"], "quorum");
    assert_eq!(battle["winner_id"], sim_winner(&id, &fighters, 4242));
    assert!(!battle["battle_log"].as_array().unwrap().is_empty());
    let battle = agg.with_votes(&id, 3, 10).await;
    let votes = battle["votes"].as_array().unwrap();
    assert_eq!(votes.len(), 3);
    for v in votes {
        assert_eq!(v["is_valid"], true, "{v}");
        assert_eq!(v["agrees"], true, "{v}");
        assert_eq!(v["voted_winner_id"], battle["winner_id"]);
    }
    let stored = db
        .scalar_i64(
            "SELECT COUNT(*) FROM battle_votes WHERE battle_id = $1 AND is_valid = 1",
            &id,
        )
        .await;
    assert_eq!(stored, 3);
    assert_eq!(battle["created_by"], "admin", "{battle}");
    let recorded = db
        .scalar_i64(
            "SELECT COUNT(*) FROM battles WHERE id = $1 AND created_by = 'admin:admin-token'",
            &id,
        )
        .await;
    assert_eq!(recorded, 1, "the database records which admin");
    // Three agreeing votes and the verdict share one stored result.
    let results = db
        .scalar_i64(
            "SELECT COUNT(*) FROM battle_results WHERE battle_id = $1",
            &id,
        )
        .await;
    assert_eq!(results, 1);
    let sharing = db
        .scalar_i64(
            "SELECT COUNT(*) FROM battle_votes v JOIN battles b ON b.id = v.battle_id \
             WHERE v.battle_id = $1 AND v.result_hash = b.result_hash",
            &id,
        )
        .await;
    assert_eq!(sharing, 3);
    // The default prompt is not stored (it is made again from the fighters).
    let prompts = db
        .scalar_i64(
            "SELECT COUNT(*) FROM battles WHERE id = $1 AND prompt = ''",
            &id,
        )
        .await;
    assert_eq!(prompts, 1);
    // Node counters reach the database in the batched flush.
    hero_tests::eventually(10, "node counters flushed", || async {
        let requests = db
            .scalar_i64(
                "SELECT CAST(SUM(total_requests) AS BIGINT) FROM nodes WHERE name <> $1",
                "",
            )
            .await;
        (requests == 3).then_some(())
    })
    .await;
    let metrics = reqwest::get(format!("{}/metrics", agg.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("hero_battles_settled_total{outcome=\"quorum\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hero_votes_total{validity=\"valid\"} 3"),
        "{metrics}"
    );
}

async fn one_node_killed_still_settles_by_quorum(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let mut nodes = start_nodes(&agg, 3);
    agg.wait_online(3).await;
    nodes[0].process.kill();
    let fighters = pair();
    let id = agg.create_battle(&fighters, 7).await;
    let battle = agg.settled(&id, 30).await;
    assert_eq!(battle["status"], "COMPLETED", "{battle}");
    assert_eq!(battle["settled_by"], "quorum", "{battle}");
    assert_eq!(battle["winner_id"], sim_winner(&id, &fighters, 7));
    let valid = battle["votes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["is_valid"] == true)
        .count();
    assert!(valid >= 2, "{battle}");
}

async fn two_of_three_killed_falls_back(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let mut nodes = start_nodes(&agg, 3);
    agg.wait_online(3).await;
    nodes[0].process.kill();
    nodes[1].process.kill();
    let fighters = pair();
    let id = agg.create_battle(&fighters, 99).await;
    let battle = agg.settled(&id, 30).await;
    assert_eq!(battle["status"], "COMPLETED", "{battle}");
    assert_eq!(battle["settled_by"], "fallback", "{battle}");
    assert_eq!(battle["fallback_engine"], "sim");
    // The Sim fallback is deterministic: the same winner honest nodes would give.
    assert_eq!(battle["winner_id"], sim_winner(&id, &fighters, 99));
    let votes = battle["votes"].as_array().unwrap();
    let invalid: Vec<_> = votes.iter().filter(|v| v["is_valid"] == false).collect();
    assert!(
        invalid
            .iter()
            .all(|v| v["error"].as_str().is_some_and(|e| !e.is_empty())),
        "{battle}"
    );
    assert!(
        votes.iter().filter(|v| v["is_valid"] == true).count() <= 1,
        "{battle}"
    );
}

async fn node_started_before_aggregator_joins(backend: Backend) {
    let db = TestDb::new(backend).await;
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _early = NodeProcess::start(&url, "early-bird", &[]);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let agg = Aggregator::start(
        &db,
        &AggregatorOptions {
            port,
            ..AggregatorOptions::default()
        },
    );
    agg.wait_online(1).await;
    let nodes = agg.get("/api/nodes").await;
    assert_eq!(nodes[0]["name"], "early-bird");
}

async fn graceful_node_shutdown_leaves_the_registry(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let mut nodes = start_nodes(&agg, 1);
    agg.wait_online(1).await;
    let status = nodes[0].process.terminate();
    assert!(status.success(), "node exited with {status}");
    // Deregistered at once, not after missed heartbeats.
    assert_eq!(agg.online_nodes().await, 0);
    let left = db
        .scalar_i64(
            "SELECT COUNT(*) FROM nodes WHERE left_at_ms IS NOT NULL AND name = $1",
            "node-1",
        )
        .await;
    assert_eq!(left, 1);
}

async fn busy_nodes_make_battles_wait_not_fall_back(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    // Each node takes one battle at a time; twelve battles arrive at once.
    let _nodes: Vec<_> = (1..=3)
        .map(|i| {
            NodeProcess::start(
                &agg.url(),
                &format!("narrow-{i}"),
                &["--max-concurrent-requests", "1"],
            )
        })
        .collect();
    agg.wait_online(3).await;
    let fighters = pair();
    let mut ids = Vec::new();
    for seed in 0..12 {
        ids.push((agg.create_battle(&fighters, seed).await, seed));
    }
    for (id, seed) in ids {
        let battle = agg.settled(&id, 30).await;
        assert_eq!(battle["settled_by"], "quorum", "{battle}");
        assert_eq!(battle["winner_id"], sim_winner(&id, &fighters, seed));
    }
}
