//! Reads that do not change are cheap: a battle answers with an `ETag` (304 when the client
//! has it), and once its late votes are all in it is served from memory; the leaderboard is
//! served from memory for a moment.

use hero_testkit::fixtures::pair;
use hero_testkit::{Backend, TestDb, on_both_databases};
use hero_tests::{Aggregator, AggregatorOptions, NodeProcess};
use reqwest::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};

on_both_databases!(a_final_battle_is_served_from_memory_with_its_etag);

async fn a_final_battle_is_served_from_memory_with_its_etag(backend: Backend) {
    let db = TestDb::new(backend).await;
    let options = AggregatorOptions {
        // A battle is final a node timeout (plus 5 s for the late-vote writer) after its verdict.
        node_timeout_ms: 500,
        deadline_ms: 2_000,
        ..AggregatorOptions::default()
    };
    let agg = Aggregator::start(&db, &options);
    let _nodes: Vec<_> = (1..=3)
        .map(|i| NodeProcess::start(&agg.url(), &format!("node-{i}"), &[]))
        .collect();
    agg.wait_online(3).await;
    let id = agg.quorum_battle(&pair(), 7).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/battles/{id}", agg.url());

    // Still settling: revalidated on every read, 304 while unchanged.
    let first = client.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let etag = first.headers()[ETAG].to_str().unwrap().to_owned();
    let again = client
        .get(&url)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert!(
        again.status() == 304 || again.headers()[ETAG] != etag.as_str(),
        "an unchanged battle must answer 304: {:?}",
        again.headers()
    );

    // Final: cacheable, and served from memory from then on.
    let final_etag = hero_tests::eventually(20, "the battle to be final", || async {
        let r = client.get(&url).send().await.unwrap();
        (r.headers()[CACHE_CONTROL] == "public, max-age=600")
            .then(|| r.headers()[ETAG].to_str().unwrap().to_owned())
    })
    .await;
    let attempts = db
        .scalar_i64(
            "UPDATE battles SET attempts = attempts + 100 WHERE id = $1 RETURNING attempts",
            &id,
        )
        .await;
    assert!(attempts > 100);
    let cached: serde_json::Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert!(
        cached["attempts"].as_i64().unwrap() < 100,
        "a final battle is not read from the database again: {cached}"
    );
    let revalidated = client
        .get(&url)
        .header(IF_NONE_MATCH, &final_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);
    assert!(revalidated.bytes().await.unwrap().is_empty());

    // The leaderboard: an ETag, 304 while unchanged.
    let board = format!("{}/api/v1/leaderboard?kind=players", agg.url());
    let page = client.get(&board).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let tag = page.headers()[ETAG].to_str().unwrap().to_owned();
    let unchanged = client
        .get(&board)
        .header(IF_NONE_MATCH, &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 304);
    // A bad query is still refused, cached or not.
    let bad = client.get(format!("{board}&limit=0")).send().await.unwrap();
    assert_eq!(bad.status(), 422);
}
