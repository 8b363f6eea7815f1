//! Nodes that lie — a flipped winner, garbage JSON, a hang, a winner that is not a fighter —
//! never decide a battle; their votes are stored as invalid or outvoted.

use hero_testkit::fixtures::pair;
use hero_testkit::{Backend, TestDb, on_both_databases};
use hero_tests::fighters::sim_winner;
use hero_tests::{Aggregator, AggregatorOptions, Behavior, NodeProcess, TestNode};

on_both_databases!(
    honest_majority_outvotes_liars,
    liars_without_honest_majority_force_fallback,
    quorum_does_not_wait_for_a_hanging_node,
    forged_signatures_lose_the_vote,
    a_call_cut_short_by_the_deadline_costs_its_node_nothing,
);

fn vote_of<'a>(battle: &'a serde_json::Value, node_name: &str) -> &'a serde_json::Value {
    battle["votes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["node_name"] == node_name)
        .unwrap_or_else(|| panic!("no vote from {node_name}: {battle}"))
}

async fn honest_majority_outvotes_liars(backend: Backend) {
    let db = TestDb::new(backend).await;
    let options = AggregatorOptions {
        quorum_size: 5,
        max_replacements: 0,
        ..AggregatorOptions::default()
    };
    let agg = Aggregator::start(&db, &options);
    let _honest: Vec<_> = (1..=3)
        .map(|i| NodeProcess::start(&agg.url(), &format!("honest-{i}"), &[]))
        .collect();
    let _flipped = TestNode::start(&agg.url(), "flipped", Behavior::FlippedWinner).await;
    let _garbage = TestNode::start(&agg.url(), "garbage", Behavior::Garbage).await;
    agg.wait_online(5).await;
    let fighters = pair();
    let id = agg.create_battle(&fighters, 2024).await;
    let battle = agg.settled(&id, 30).await;
    assert_eq!(battle["settled_by"], "quorum", "{battle}");
    assert_eq!(battle["winner_id"], sim_winner(&id, &fighters, 2024));
    let battle = agg.with_votes(&id, 5, 10).await;
    let flipped = vote_of(&battle, "flipped");
    assert_eq!(
        flipped["is_valid"], true,
        "a consistent lie is a valid vote: {flipped}"
    );
    assert_eq!(flipped["agrees"], false, "but it is outvoted: {flipped}");
    assert_ne!(flipped["voted_winner_id"], battle["winner_id"]);
    let garbage = vote_of(&battle, "garbage");
    assert_eq!(garbage["is_valid"], false);
    assert!(
        garbage["error"]
            .as_str()
            .unwrap()
            .contains("not a battle result"),
        "{garbage}"
    );
    // Garbage costs reputation; a consistent lie only shows in the agreement rate (being
    // outvoted costs nothing, or a colluding majority could starve the honest minority).
    hero_tests::eventually(10, "reputation to reflect the garbage", || async {
        let nodes = agg.get("/api/nodes").await;
        let field = |name: &str, field: &str| {
            nodes
                .as_array()
                .unwrap()
                .iter()
                .find(|n| n["name"] == name)
                .unwrap()[field]
                .as_f64()
                .unwrap()
        };
        (field("garbage", "reputation") < 1.0
            && field("flipped", "reputation") == 1.0
            && field("flipped", "agreement_rate") < 1.0
            && field("honest-1", "reputation") == 1.0
            && field("honest-1", "agreement_rate") == 1.0)
            .then_some(())
    })
    .await;
}

async fn liars_without_honest_majority_force_fallback(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let _honest = NodeProcess::start(&agg.url(), "honest", &[]);
    let _flipped = TestNode::start(&agg.url(), "flipped", Behavior::FlippedWinner).await;
    let _third = TestNode::start(&agg.url(), "third-fighter", Behavior::ThirdFighter).await;
    agg.wait_online(3).await;
    let fighters = pair();
    let id = agg.create_battle(&fighters, 5).await;
    let battle = agg.settled(&id, 30).await;
    // One honest vote and one valid lie: nobody has 2 of 3, so the local Sim decides.
    assert_eq!(battle["settled_by"], "fallback", "{battle}");
    assert_eq!(battle["winner_id"], sim_winner(&id, &fighters, 5));
    let third = vote_of(&battle, "third-fighter");
    assert_eq!(third["is_valid"], false);
    assert_eq!(
        third["voted_winner_id"], "(not a fighter)",
        "a rejected winner is stored only if it is a fighter"
    );
    assert!(
        third["error"].as_str().unwrap().contains("validation"),
        "{third}"
    );
    assert_eq!(vote_of(&battle, "flipped")["agrees"], false);
    assert_eq!(vote_of(&battle, "honest")["agrees"], true);
}

async fn quorum_does_not_wait_for_a_hanging_node(backend: Backend) {
    let db = TestDb::new(backend).await;
    let options = AggregatorOptions {
        node_timeout_ms: 4_000,
        deadline_ms: 6_000,
        lease_ms: 10_000,
        ..AggregatorOptions::default()
    };
    let agg = Aggregator::start(&db, &options);
    let _a = NodeProcess::start(&agg.url(), "honest-a", &[]);
    let _b = NodeProcess::start(&agg.url(), "honest-b", &[]);
    let hang = TestNode::start(&agg.url(), "hang", Behavior::Hang).await;
    agg.wait_online(3).await;
    let fighters = pair();
    let id = agg.create_battle(&fighters, 11).await;
    let battle = agg.settled(&id, 30).await;
    assert_eq!(battle["settled_by"], "quorum", "{battle}");
    assert_eq!(hang.calls(), 1, "the hanging node was selected");
    let settled_in =
        battle["settled_at_ms"].as_i64().unwrap() - battle["created_at_ms"].as_i64().unwrap();
    assert!(
        settled_in < 4_000,
        "settled after {settled_in} ms: it waited for the hanging node"
    );
    // The hanging node's vote is recorded once its own timeout passes.
    let battle = agg.with_votes(&id, 3, 15).await;
    let hung = vote_of(&battle, "hang");
    assert_eq!(hung["is_valid"], false);
    assert!(
        hung["error"].as_str().unwrap().contains("timed out"),
        "{hung}"
    );
}

async fn forged_signatures_lose_the_vote(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(
        &db,
        &AggregatorOptions {
            max_replacements: 0,
            ..AggregatorOptions::default()
        },
    );
    // hero-node signs every result with the key it registered.
    let _a = NodeProcess::start(&agg.url(), "signed-a", &[]);
    let _b = NodeProcess::start(&agg.url(), "signed-b", &[]);
    let _forger = TestNode::start(&agg.url(), "forger", Behavior::ForgedSignature).await;
    agg.wait_online(3).await;
    let fighters = pair();
    let id = agg.create_battle(&fighters, 8).await;
    let battle = agg.settled(&id, 30).await;
    assert_eq!(battle["settled_by"], "quorum", "{battle}");
    let battle = agg.with_votes(&id, 3, 10).await;
    let forged = vote_of(&battle, "forger");
    assert_eq!(forged["is_valid"], false, "{forged}");
    assert!(
        forged["error"].as_str().unwrap().contains("signature"),
        "{forged}"
    );
    for name in ["signed-a", "signed-b"] {
        assert_eq!(vote_of(&battle, name)["is_valid"], true, "{battle}");
    }
    // Their votes counted because their signatures verified against registered keys.
    let keyed = db
        .scalar_i64(
            "SELECT COUNT(*) FROM nodes WHERE public_key IS NOT NULL AND name LIKE $1",
            "signed-%",
        )
        .await;
    assert_eq!(keyed, 2);
}

/// Two hanging nodes fail at their timeout, late in the round: the replacement asked then has
/// less than a node timeout before the deadline. When it cannot answer in that time, its vote
/// says so and its reputation is untouched (before, hostile nodes could get an honest node
/// asked with milliseconds left and blamed for the timeout until it was quarantined).
async fn a_call_cut_short_by_the_deadline_costs_its_node_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(
        &db,
        &AggregatorOptions {
            node_timeout_ms: 2_500,
            deadline_ms: 4_200,
            lease_ms: 12_000,
            ..AggregatorOptions::default()
        },
    );
    let _honest = TestNode::start(&agg.url(), "honest", Behavior::Honest { delay_ms: 0 }).await;
    let _x = TestNode::start(&agg.url(), "hang-x", Behavior::Hang).await;
    let _y = TestNode::start(&agg.url(), "hang-y", Behavior::Hang).await;
    agg.wait_online(3).await;
    let fighters = pair();
    let id = agg.create_battle(&fighters, 21).await;
    // Joins after the first selection: it is the only backup when the hanging nodes time out
    // (at 2.5 s), with 1.7 s left of the round, and it needs 3 s.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let late = TestNode::start(&agg.url(), "late", Behavior::Honest { delay_ms: 3_000 }).await;
    agg.wait_online(4).await;
    let battle = agg.settled(&id, 30).await;
    assert_eq!(battle["settled_by"], "fallback", "{battle}");
    let battle = agg.with_votes(&id, 4, 15).await;
    assert_eq!(late.calls(), 1, "the backup was asked: {battle}");
    let cut = vote_of(&battle, "late");
    assert_eq!(cut["is_valid"], false, "{cut}");
    assert!(
        cut["error"].as_str().unwrap().starts_with("cut short"),
        "{cut}"
    );
    let hung = vote_of(&battle, "hang-x");
    assert!(
        hung["error"].as_str().unwrap().contains("timed out"),
        "{hung}"
    );
    let nodes = agg.get("/api/nodes").await;
    let node = |name: &str| {
        nodes
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .cloned()
            .unwrap()
    };
    let late = node("late");
    assert_eq!(late["reputation"], 1.0, "{late}");
    assert_eq!(late["total_requests"], 0, "not judged: {late}");
    // A whole node timeout spent hanging is the node's failure.
    assert_eq!(node("hang-x")["total_requests"], 1, "{nodes}");
}
