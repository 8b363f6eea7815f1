//! Durable battles: an aggregator killed mid-battle settles the battle once after restart.

use hero_testkit::fixtures::pair;
use hero_testkit::{Backend, TestDb, on_both_databases};
use hero_tests::fighters::sim_winner;
use hero_tests::{Aggregator, AggregatorOptions, Behavior, TestNode, free_port};

on_both_databases!(aggregator_restarted_mid_battle_settles_it_once);

async fn aggregator_restarted_mid_battle_settles_it_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let port = free_port();
    let options = AggregatorOptions {
        port,
        node_timeout_ms: 4_000,
        deadline_ms: 5_000,
        lease_ms: 6_000,
        ..AggregatorOptions::default()
    };
    let mut agg = Aggregator::start(&db, &options);
    let slow: Vec<TestNode> = futures_join(&agg.url()).await;
    agg.wait_online(3).await;
    let fighters = pair();
    let id = agg.create_battle(&fighters, 77).await;
    hero_tests::eventually(10, "battle to be RUNNING", || async {
        let b = agg.get(&format!("/api/v1/battles/{id}")).await;
        let called = slow.iter().map(TestNode::calls).sum::<usize>();
        (b["status"] == "RUNNING" && called == 3).then_some(())
    })
    .await;
    // Nodes are working on it; the aggregator dies without a chance to write anything.
    agg.process.kill();
    let agg = Aggregator::start(&db, &options);
    let battle = agg.settled(&id, 40).await;
    assert_eq!(battle["status"], "COMPLETED", "{battle}");
    assert_eq!(battle["settled_by"], "quorum", "{battle}");
    assert_eq!(battle["winner_id"], sim_winner(&id, &fighters, 77));
    assert_eq!(
        battle["attempts"], 2,
        "taken over once after the lease expired"
    );
    assert_eq!(
        slow.iter().map(TestNode::calls).sum::<usize>(),
        6,
        "each node asked once per attempt"
    );
    let battle = agg.with_votes(&id, 3, 10).await;
    // Settled once: one vote per node, never a second set.
    assert_eq!(battle["votes"].as_array().unwrap().len(), 3, "{battle}");
    let stored = db
        .scalar_i64(
            "SELECT COUNT(*) FROM battle_votes WHERE battle_id = $1",
            &id,
        )
        .await;
    assert_eq!(stored, 3);
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
}

async fn futures_join(url: &str) -> Vec<TestNode> {
    let mut nodes = Vec::new();
    for i in 1..=3 {
        nodes.push(
            TestNode::start(
                url,
                &format!("slow-{i}"),
                Behavior::Honest { delay_ms: 2_500 },
            )
            .await,
        );
    }
    nodes
}
