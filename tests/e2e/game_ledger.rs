//! Money under pressure: concurrent spends stop exactly at zero, the ledger explains every
//! balance after a mixed concurrent workload, Idempotency-Key replays never charge twice,
//! ERROR battles refund their energy, and energy regenerates through the ledger.

use std::sync::Arc;

use futures::future::join_all;
use hero_testkit::{Backend, TestDb, on_both_databases};
use hero_tests::game::{Player, Reply, all_battles_settled, assert_ledger_balances};
use hero_tests::{Aggregator, AggregatorOptions};
use serde_json::json;

on_both_databases!(
    concurrent_spends_stop_exactly_at_zero,
    ledger_explains_every_balance_after_mixed_load,
    idempotent_requests_charge_once,
    concurrent_duplicates_replay_the_first_answer,
    error_battles_refund_their_energy,
    energy_regenerates_through_the_ledger,
);

/// No nodes: battles settle at once through the local fallback. Limits out of the way.
fn aggregator(db: &TestDb, extra: &[&str]) -> Aggregator {
    let mut args: Vec<String> = [
        "--rate-limit-battles-per-hour",
        "100000",
        "--rate-limit-summons-per-hour",
        "100000",
        "--rate-limit-requests-per-hour",
        "1000000",
        "--db-max-connections",
        "20",
    ]
    .map(String::from)
    .to_vec();
    args.extend(extra.iter().map(|s| s.to_string()));
    Aggregator::start(
        db,
        &AggregatorOptions {
            extra: args,
            ..AggregatorOptions::default()
        },
    )
}

fn id(v: &serde_json::Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

async fn concurrent_spends_stop_exactly_at_zero(backend: Backend) {
    let db = TestDb::new(backend).await;
    // 100 energy at 2 per battle covers exactly 50 battles; no regeneration during the test.
    let agg = aggregator(
        &db,
        &["--battle-energy-cost", "2", "--energy-regen-secs", "86400"],
    );
    let alice = Arc::new(Player::guest(&agg).await);
    let bob = Player::guest(&agg).await;
    let mine = id(&alice.summon("spender").await);
    let theirs = id(&bob.summon("target").await);
    let replies: Vec<Reply> = join_all((0..200).map(|_| {
        let alice = Arc::clone(&alice);
        let body = json!({ "character_id": mine, "opponent_id": theirs });
        tokio::spawn(async move { alice.post("/api/v1/battles", body).await })
    }))
    .await
    .into_iter()
    .map(|r| r.expect("task"))
    .collect();
    let accepted = replies.iter().filter(|r| r.status == 202).count();
    let refused: Vec<&Reply> = replies.iter().filter(|r| r.status != 202).collect();
    assert_eq!(
        accepted,
        50,
        "refusals: {:?}",
        refused.first().map(|r| &r.body)
    );
    for r in &refused {
        assert_eq!(r.status, 409, "{:?}", r.body);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not enough energy")
        );
    }
    assert_eq!(alice.me().await["energy"], 0);
    let battles = db
        .scalar_i64(
            "SELECT COUNT(*) FROM game_battles WHERE player_id = $1 AND side = 'attacker'",
            &alice.id,
        )
        .await;
    assert_eq!(battles, 50);
    let spends = db
        .scalar_i64(
            "SELECT COUNT(*) FROM ledger WHERE player_id = $1 AND reason = 'battle'",
            &alice.id,
        )
        .await;
    assert_eq!(spends, 50);
    all_battles_settled(&db, 60).await;
    assert_ledger_balances(&db).await;
}

async fn ledger_explains_every_balance_after_mixed_load(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = aggregator(&db, &[]);
    let mut players = Vec::new();
    let mut characters = Vec::new();
    for i in 0..4 {
        let p = Player::guest(&agg).await;
        characters.push((i, id(&p.summon(&format!("champion {i}")).await)));
        characters.push((i, id(&p.summon(&format!("squire {i}")).await)));
        players.push(Arc::new(p));
    }
    let characters = Arc::new(characters);
    let mut work = Vec::new();
    for (i, p) in players.iter().enumerate() {
        let own: Vec<String> = characters
            .iter()
            .filter(|(o, _)| *o == i)
            .map(|(_, c)| c.clone())
            .collect();
        let others: Vec<String> = characters
            .iter()
            .filter(|(o, _)| *o != i)
            .map(|(_, c)| c.clone())
            .collect();
        for n in 0..12 {
            let (p, body) = (
                Arc::clone(p),
                json!({ "character_id": own[n % 2], "opponent_id": others[n % others.len()] }),
            );
            work.push(tokio::spawn(async move {
                p.post("/api/v1/battles", body).await
            }));
        }
        for n in 0..3 {
            let p = Arc::clone(p);
            work.push(tokio::spawn(async move {
                p.post(
                    "/api/v1/characters",
                    json!({ "prompt": format!("recruit {n}"), "power": 1 }),
                )
                .await
            }));
        }
        for _ in 0..3 {
            let (p, path) = (
                Arc::clone(p),
                format!("/api/v1/characters/{}/upgrade", own[0]),
            );
            work.push(tokio::spawn(async move { p.post(&path, json!({})).await }));
        }
        for quest in ["daily_summon_1", "daily_upgrade_1", "daily_summon_1"] {
            let (p, path) = (Arc::clone(p), format!("/api/v1/quests/{quest}/claim"));
            work.push(tokio::spawn(async move { p.post(&path, json!({})).await }));
        }
    }
    let replies: Vec<Reply> = join_all(work)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    for r in &replies {
        assert!(r.status.as_u16() < 500, "{:?}", r.body);
    }
    let battles = replies.iter().filter(|r| r.status == 202).count();
    assert_eq!(battles, 40, "10 battles of 10 energy each per player");
    all_battles_settled(&db, 60).await;
    assert_ledger_balances(&db).await;
    // Rewards were paid for every settled battle, to its attacker only (defenders earn rating,
    // never currency): 40 battles, one reward each.
    let rewards = db
        .scalar_i64(
            "SELECT COUNT(*) FROM ledger WHERE reason = 'battle_reward' AND resource = $1",
            "gold",
        )
        .await;
    assert_eq!(rewards, 40);
    let wins = db
        .scalar_i64(
            "SELECT CAST(SUM(wins) AS BIGINT) FROM players WHERE id <> $1",
            "",
        )
        .await;
    assert_eq!(wins, 40);
}

async fn idempotent_requests_charge_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = aggregator(&db, &[]);
    let alice = Arc::new(Player::guest(&agg).await);
    let bob = Player::guest(&agg).await;
    let body = json!({ "prompt": "a twin" });
    let first = alice
        .post_with_key("/api/v1/characters", body.clone(), "summon-1")
        .await;
    assert_eq!(first.status, 201);
    assert!(!first.replayed);
    let second = alice
        .post_with_key("/api/v1/characters", body.clone(), "summon-1")
        .await;
    assert_eq!(second.status, 201);
    assert!(second.replayed);
    assert_eq!(second.body, first.body, "the same character, not a new one");
    assert_eq!(alice.me().await["prompt"], 9, "charged once");
    let other = alice
        .post_with_key(
            "/api/v1/characters",
            json!({ "prompt": "something else" }),
            "summon-1",
        )
        .await;
    assert_eq!(other.status, 422, "{:?}", other.body);
    // Keys belong to a player: Bob's "summon-1" is his own request.
    let bobs = bob
        .post_with_key("/api/v1/characters", body.clone(), "summon-1")
        .await;
    assert_eq!((bobs.status.as_u16(), bobs.replayed), (201, false));

    // Ten concurrent retries of one battle: one battle, one charge, ten identical answers.
    let mine = id(&first.body);
    let battle = json!({ "character_id": mine, "opponent_id": bobs.body["id"] });
    let replies: Vec<Reply> = join_all((0..10).map(|_| {
        let (alice, battle) = (Arc::clone(&alice), battle.clone());
        tokio::spawn(async move {
            alice
                .post_with_key("/api/v1/battles", battle, "battle-1")
                .await
        })
    }))
    .await
    .into_iter()
    .map(|r| r.expect("task"))
    .collect();
    for r in &replies {
        assert_eq!(r.status, 202, "{:?}", r.body);
        assert_eq!(r.body["battle_id"], replies[0].body["battle_id"]);
    }
    assert_eq!(replies.iter().filter(|r| !r.replayed).count(), 1);
    assert_eq!(alice.me().await["energy"], 90);
    let created = db
        .scalar_i64(
            "SELECT COUNT(*) FROM game_battles WHERE player_id = $1",
            &alice.id,
        )
        .await;
    assert_eq!(created, 1);

    // Upgrades too.
    let path = format!("/api/v1/characters/{mine}/upgrade");
    let up = alice.post_with_key(&path, json!({}), "up-1").await;
    let again = alice.post_with_key(&path, json!({}), "up-1").await;
    assert_eq!(
        (up.status.as_u16(), again.status.as_u16(), again.replayed),
        (200, 200, true)
    );
    assert_eq!(again.body["level"], 2);
    all_battles_settled(&db, 60).await;
    let upgrades = db
        .scalar_i64(
            "SELECT COUNT(*) FROM ledger WHERE player_id = $1 AND reason = 'upgrade'",
            &alice.id,
        )
        .await;
    assert_eq!(upgrades, 2, "one gold and one exp_potion debit");
    let gold = db
        .scalar_i64("SELECT CAST(SUM(delta) AS BIGINT) FROM ledger WHERE player_id = $1 AND reason = 'upgrade' AND resource = 'gold'", &alice.id)
        .await;
    assert_eq!(gold, -100);
    assert_ledger_balances(&db).await;
}

/// Twenty concurrent copies of one request (same key, same body) all get the first answer,
/// even when the balance covers exactly one charge, and count once against the rate limit.
async fn concurrent_duplicates_replay_the_first_answer(backend: Backend) {
    let db = TestDb::new(backend).await;
    // One battle takes all of a new player's 100 energy; two summons an hour.
    let agg = Aggregator::start(
        &db,
        &AggregatorOptions {
            extra: [
                "--battle-energy-cost",
                "100",
                "--rate-limit-summons-per-hour",
                "2",
                "--db-max-connections",
                "30",
            ]
            .map(String::from)
            .to_vec(),
            ..AggregatorOptions::default()
        },
    );
    let alice = Arc::new(Player::guest(&agg).await);
    let bob = Player::guest(&agg).await;
    let concurrently = |path: &'static str, body: serde_json::Value, key: &'static str| {
        join_all((0..20).map(|_| {
            let (alice, body) = (Arc::clone(&alice), body.clone());
            tokio::spawn(async move { alice.post_with_key(path, body, key).await })
        }))
    };
    let summons: Vec<Reply> = concurrently("/api/v1/characters", json!({ "prompt": "one" }), "s-1")
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    for r in &summons {
        assert_eq!(r.status, 201, "{:?}", r.body);
        assert_eq!(
            r.body, summons[0].body,
            "every duplicate gets the first answer"
        );
    }
    assert_eq!(summons.iter().filter(|r| !r.replayed).count(), 1);
    assert_eq!(alice.me().await["prompt"], 9, "charged once");
    // The twenty counted as one summon: the hour's second is still allowed, the third is not.
    let second = alice
        .post_with_key("/api/v1/characters", json!({ "prompt": "two" }), "s-2")
        .await;
    assert_eq!(second.status, 201, "{:?}", second.body);
    let third = alice
        .post_with_key("/api/v1/characters", json!({ "prompt": "three" }), "s-3")
        .await;
    assert_eq!(third.status, 429, "{:?}", third.body);

    let opponent = bob.summon("rival").await;
    let battle = json!({ "character_id": id(&summons[0].body), "opponent_id": id(&opponent) });
    let battles: Vec<Reply> = concurrently("/api/v1/battles", battle, "b-1")
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    for r in &battles {
        assert_eq!(r.status, 202, "not a 409 for the balance: {:?}", r.body);
        assert_eq!(r.body, battles[0].body);
    }
    assert_eq!(battles.iter().filter(|r| !r.replayed).count(), 1);
    assert_eq!(alice.me().await["energy"], 0, "charged once");
    let created = db
        .scalar_i64(
            "SELECT COUNT(*) FROM game_battles WHERE player_id = $1",
            &alice.id,
        )
        .await;
    assert_eq!(created, 1);
    all_battles_settled(&db, 60).await;
    assert_ledger_balances(&db).await;
}

async fn error_battles_refund_their_energy(backend: Backend) {
    let db = TestDb::new(backend).await;
    // Zero attempts allowed: every battle ends in ERROR.
    let agg = aggregator(&db, &["--max-battle-attempts", "0"]);
    let alice = Player::guest(&agg).await;
    let bob = Player::guest(&agg).await;
    let a1 = id(&alice.summon("doomed").await);
    let b1 = id(&bob.summon("bystander").await);
    let started = alice.battle(&a1, Some(&b1)).await;
    assert_eq!(started["energy_left"], 90);
    let battle = agg
        .settled(started["battle_id"].as_str().unwrap(), 30)
        .await;
    assert_eq!(battle["status"], "ERROR");
    let me = alice.me().await;
    assert_eq!(
        (
            me["energy"].as_i64(),
            me["gold"].as_i64(),
            me["wins"].as_i64(),
            me["losses"].as_i64()
        ),
        (Some(100), Some(1000), Some(0), Some(0))
    );
    let mine = alice.get("/api/v1/battles?mine=true").await.body;
    assert_eq!(mine["items"][0]["outcome"], "error");
    let refunds = db
        .scalar_i64(
            "SELECT COUNT(*) FROM ledger WHERE player_id = $1 AND reason = 'battle_refund'",
            &alice.id,
        )
        .await;
    assert_eq!(refunds, 1);
    assert_ledger_balances(&db).await;
}

async fn energy_regenerates_through_the_ledger(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = aggregator(
        &db,
        &["--energy-regen-secs", "1", "--battle-energy-cost", "30"],
    );
    let alice = Player::guest(&agg).await;
    let bob = Player::guest(&agg).await;
    let a1 = id(&alice.summon("tired").await);
    let b1 = id(&bob.summon("rested").await);
    alice.battle(&a1, Some(&b1)).await;
    let spent = alice.battle(&a1, Some(&b1)).await;
    let low = spent["energy_left"].as_i64().unwrap();
    assert!((40..=45).contains(&low), "{low}");
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    let me = alice.me().await;
    assert!(me["energy"].as_i64().unwrap() >= low + 2, "{me}");
    assert!(me["next_energy_at_ms"].is_i64());
    // Spending writes the regenerated energy into the ledger first.
    alice.battle(&a1, Some(&b1)).await;
    let regen = db
        .scalar_i64(
            "SELECT COUNT(*) FROM ledger WHERE player_id = $1 AND reason = 'energy_regen'",
            &alice.id,
        )
        .await;
    assert!(regen >= 1);
    all_battles_settled(&db, 60).await;
    assert_ledger_balances(&db).await;
}
