//! Two `hero-aggregator` processes on one PostgreSQL database, both running the scheduler on
//! a seconds-long beat: each (task, slot) runs once, pairing never double-books a fighter,
//! and every bet is paid exactly once, whichever replica settles its battle.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use hero_testkit::{Backend, TestDb};
use hero_tests::game::Player;
use hero_tests::{Aggregator, AggregatorOptions};
use serde_json::json;
use sqlx::Row;

const SCHEDULE: &[&str] = &[
    "--schedule",
    "pair-battles=3s,start-battles=1s,update-ranks=2s,close-seasons=1s",
    "--scheduler-tick",
    "100ms",
    "--ladder-battle-delay",
    "4s",
    "--betting-opens-before",
    "3500ms",
    "--betting-closes-before",
    "1s",
];

fn replica(db: &TestDb, local_nodes: &str) -> Aggregator {
    let mut extra: Vec<String> = SCHEDULE.iter().map(|s| s.to_string()).collect();
    extra.extend(["--local-nodes".into(), local_nodes.into()]);
    extra.extend(["--rate-limit-requests-per-hour".into(), "1000000".into()]);
    Aggregator::start(
        db,
        &AggregatorOptions {
            extra,
            ..AggregatorOptions::default()
        },
    )
}

async fn admin(agg: &Aggregator, path: &str, body: serde_json::Value) -> serde_json::Value {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", agg.url()))
        .bearer_auth(hero_tests::process::ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_run_each_slot_and_pay_each_bet_once() {
    let db = TestDb::new(Backend::Postgres).await;
    let a = replica(&db, "3");
    let b = replica(&db, "0");
    a.wait_online(3).await;
    b.wait_online(3).await;
    let now = hero_tests::enroll::now_ms();
    let season = admin(
        &a,
        "/api/v1/admin/seasons",
        json!({"name": "Replicas", "starts_at_ms": now, "ends_at_ms": now + 3_600_000}),
    )
    .await;
    let id = season["id"].as_str().unwrap();
    admin(
        &b,
        &format!("/api/v1/admin/seasons/{id}/activate"),
        json!({}),
    )
    .await;
    for (i, agg) in [&a, &b, &a, &b, &a, &b].into_iter().enumerate() {
        let fighter = Player::guest(agg).await;
        let hero = fighter.summon(&format!("replica fighter {i}")).await;
        let entry = fighter
            .post(
                "/api/v1/ladder/entries",
                json!({"character_id": hero["id"]}),
            )
            .await;
        assert_eq!(entry.status, 201, "{:?}", entry.body);
    }
    // One bettor on each replica, backing opposite sides of every battle they can.
    let bettors = [Player::guest(&a).await, Player::guest(&b).await];
    let gold_before = total_gold(&db).await;
    let mut backed = HashSet::new();
    let mut accepted = 0;
    let until = Instant::now() + Duration::from_secs(16);
    while Instant::now() < until {
        let page = bettors[0]
            .get("/api/v1/scheduled-battles?status=scheduled")
            .await;
        for battle in page.body["items"].as_array().unwrap() {
            let sid = battle["id"].as_str().unwrap().to_owned();
            if battle["betting"] != "open" || backed.contains(&sid) {
                continue;
            }
            let path = format!("/api/v1/scheduled-battles/{sid}/bets");
            for (bettor, (side, amount)) in bettors.iter().zip([("red", 10), ("blue", 20)]) {
                let body = json!({"side": side, "amount": amount});
                let key = format!("{sid}-{side}");
                // Sent twice: the retry replays.
                let first = bettor.post_with_key(&path, body.clone(), &key).await;
                let again = bettor.post_with_key(&path, body, &key).await;
                assert_eq!((first.status, &first.body), (again.status, &again.body));
                assert!(
                    first.status == 201 || first.status == 409,
                    "{:?}",
                    first.body
                );
                accepted += usize::from(first.status == 201);
            }
            backed.insert(sid);
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // Let every started battle settle, then stop pairing by closing the season.
    none_running(&db, "started ladder battles to settle").await;
    admin(&a, &format!("/api/v1/admin/seasons/{id}/close"), json!({})).await;
    // A slot may have started battles between that wait and the close (the close voids only
    // the unstarted ones): let those settle too, so every bet is settled.
    none_running(&db, "battles started before the close to settle").await;

    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    use sqlx::Connection;
    // Each slot ran once and completed; both replicas took part. The scheduler is still
    // ticking, so a slot may be mid-run at any one read: wait for a read in which every slot
    // has finished (a run stuck in `running` or `failed` still fails the test).
    let runs = hero_tests::eventually(30, "every task run to finish", || async {
        let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
        let runs = sqlx::query("SELECT task, slot_ms, status, owner FROM task_runs")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        let _ = conn.close().await;
        runs.iter()
            .all(|r| r.get::<String, _>("status") == "done")
            .then_some(runs)
    })
    .await;
    let pairing: Vec<i64> = runs
        .iter()
        .filter(|r| r.get::<String, _>("task") == "pair-battles")
        .map(|r| r.get("slot_ms"))
        .collect();
    assert!(pairing.len() >= 4, "pairing slots: {pairing:?}");
    let owners: HashSet<String> = runs.iter().map(|r| r.get("owner")).collect();
    assert_eq!(owners.len(), 2, "both replicas ran slots: {owners:?}");
    // No fighter is booked twice by one slot.
    let doubles: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT slot_ms, p FROM (SELECT slot_ms, red_player_id AS p \
         FROM scheduled_battles UNION ALL SELECT slot_ms, blue_player_id FROM scheduled_battles) x \
         GROUP BY slot_ms, p HAVING COUNT(*) > 1) d",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(doubles, 0);
    // Every bet settled, each battle's payouts written once.
    assert!(accepted >= 4, "{accepted} bets on {} battles", backed.len());
    let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bets WHERE status = 'open'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(open, 0);
    let bets: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bets")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(bets as usize, accepted, "one bet per accepted key");
    let repeated: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT player_id, reference FROM ledger \
         WHERE reason IN ('bet_payout', 'bet_refund', 'bet_payouts', 'bet_refunds') \
         GROUP BY player_id, reference HAVING COUNT(*) > 1) d",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(repeated, 0, "a payout written twice");
    let settled: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM scheduled_battles WHERE status = 'settled' AND house_take > 0",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(settled >= 1, "some battle paid its bets by quorum");
    let _ = conn.close().await;
    assert_eq!(total_gold(&db).await, gold_before + prizes(&db).await);
    hero_tests::game::assert_ledger_balances(&db).await;
    drop((a, b));
    db.remove().await;
}

async fn total_gold(db: &TestDb) -> i64 {
    db.scalar_i64(
        "SELECT CAST(SUM(gold) AS BIGINT) FROM players WHERE id <> $1",
        "",
    )
    .await
}

/// Season prizes are minted (the pool here is 0, so none).
async fn prizes(db: &TestDb) -> i64 {
    db.scalar_i64(
        "SELECT CAST(COALESCE(SUM(delta), 0) AS BIGINT) FROM ledger WHERE reason = $1",
        "season_prize",
    )
    .await
}

/// Waits (30 s at most) until no scheduled battle is running.
async fn none_running(db: &TestDb, what: &str) {
    hero_tests::eventually(30, what, || async {
        let running = db
            .scalar_i64(
                "SELECT COUNT(*) FROM scheduled_battles WHERE status = $1",
                "running",
            )
            .await;
        (running == 0).then_some(())
    })
    .await;
}
