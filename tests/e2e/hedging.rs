//! A slow node no longer sets a battle's latency: once a round runs longer than the pool's
//! usual answer time, a backup is asked for the seat of a node still thinking. The first valid
//! answer takes the seat, the other call is cancelled and recorded, and the cancelled node is
//! not blamed for it.

use hero_testkit::fixtures::pair;
use hero_testkit::{Backend, TestDb, on_both_databases};
use hero_tests::fighters::sim_winner;
use hero_tests::rogue::NodeOptions;
use hero_tests::{Aggregator, AggregatorOptions, Behavior, TestNode};

on_both_databases!(a_backup_takes_the_seat_of_a_slow_node);

const CANCELLED: &str = "cancelled: the other node asked for this seat answered first";

/// Creates `n` battles at once and waits for all of them; returns them settled.
async fn wave(
    agg: &Aggregator,
    fighters: &[hero_protocol::Fighter],
    seeds: std::ops::Range<u64>,
) -> Vec<(String, u64, serde_json::Value)> {
    let mut ids = Vec::new();
    for seed in seeds {
        ids.push((agg.create_battle(fighters, seed).await, seed));
    }
    let mut settled = Vec::new();
    for (id, seed) in ids {
        let battle = agg.settled(&id, 30).await;
        settled.push((id, seed, battle));
    }
    settled
}

fn counter(metrics: &str, line_start: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn a_backup_takes_the_seat_of_a_slow_node(backend: Backend) {
    let db = TestDb::new(backend).await;
    let options = AggregatorOptions {
        node_timeout_ms: 10_000,
        deadline_ms: 12_000,
        lease_ms: 20_000,
        // Hedge after the pool's median answer, and as often as needed: the test is about
        // what a hedge does, not how rare it is (the budget has unit tests).
        extra: ["--hedge-percentile", "50", "--hedge-budget-percent", "100"]
            .map(String::from)
            .to_vec(),
        ..AggregatorOptions::default()
    };
    let agg = Aggregator::start(&db, &options);
    let url = agg.url();
    // The slow node and the liar weigh the most, so most battles ask both of them and one
    // quick node: the quick node and the liar disagree, and the seat of the slow node decides.
    let heavy = || NodeOptions {
        weight: Some(50),
        ..NodeOptions::default()
    };
    let _slow =
        TestNode::start_with(&url, "slow", Behavior::Honest { delay_ms: 2_000 }, heavy()).await;
    let _liar = TestNode::start_with(&url, "flipped", Behavior::FlippedWinner, heavy()).await;
    let _quick = [
        TestNode::start(&url, "quick-1", Behavior::Honest { delay_ms: 0 }).await,
        TestNode::start(&url, "quick-2", Behavior::Honest { delay_ms: 0 }).await,
    ];
    agg.wait_online(4).await;
    let fighters = pair();
    // The first battles teach the aggregator the pool's answer times (no hedge before that).
    wave(&agg, &fighters, 0..30).await;
    let battles = wave(&agg, &fighters, 100..130).await;

    let mut hedged = 0;
    for (id, seed, battle) in &battles {
        assert_eq!(battle["settled_by"], "quorum", "{battle}");
        assert_eq!(
            battle["winner_id"],
            sim_winner(id, &fighters, *seed),
            "{battle}"
        );
        // Every call ends as a vote: the seats, plus the backup when one was asked.
        let battle = hero_tests::eventually(15, "every vote recorded", || async {
            let b = agg.get(&format!("/api/v1/battles/{id}")).await;
            let votes = b["votes"].as_array().map_or(0, Vec::len);
            let backup = b["votes"]
                .as_array()
                .is_some_and(|v| v.iter().any(|v| v["role"] == "replacement"));
            (votes >= 3 + usize::from(backup)).then_some(b)
        })
        .await;
        let votes = battle["votes"].as_array().unwrap().clone();
        let cancelled: Vec<_> = votes.iter().filter(|v| v["error"] == CANCELLED).collect();
        if cancelled.is_empty() {
            continue;
        }
        hedged += 1;
        // The call that lost the race is recorded, never counted; a backup was asked.
        for v in &cancelled {
            assert_eq!(v["is_valid"], false, "{v}");
            assert_ne!(v["agrees"], true, "{v}");
        }
        assert!(
            votes.iter().any(|v| v["role"] == "replacement"),
            "a cancelled call without a backup: {battle}"
        );
        let agreeing = votes.iter().filter(|v| v["agrees"] == true).count();
        assert!(agreeing >= 2, "{battle}");
        // One seat, one vote: the race never lets k + 1 valid votes stand.
        let valid = votes.iter().filter(|v| v["is_valid"] == true).count();
        assert!(valid <= 3, "more valid votes than seats: {battle}");
    }
    assert!(hedged > 0, "no battle hedged: {battles:?}");
    let metrics = agg.metrics().await;
    assert!(
        counter(&metrics, "hero_node_hedges_total{seat=\"backup\"}") > 0.0,
        "{metrics}"
    );
    // Losing a race is not a failure: the slow node keeps its reputation.
    let nodes = agg.get("/api/nodes").await;
    let slow = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "slow")
        .unwrap();
    assert_eq!(slow["reputation"], 1.0, "{slow}");
}
