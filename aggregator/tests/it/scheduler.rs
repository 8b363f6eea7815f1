//! The scheduler's slot claims against real databases: a slot is claimed by one replica even
//! when many race for it, a dead replica's slot is taken over once its lease passes (and
//! only then), a failed slot is retried up to three attempts, and a runner that lost its
//! lease cannot mark the slot done.

use futures::future::join_all;
use hero_aggregator::scheduler::runs;
use hero_testkit::{Backend, TestDb, on_both_databases};

on_both_databases!(slots_are_claimed_once_and_taken_over_after_the_lease);

async fn slots_are_claimed_once_and_taken_over_after_the_lease(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let db = crate::connect(&test_db.url).await;
    let now = 1_000_000;

    // Eight replicas race for a new slot: one wins.
    let claims = join_all((0..8).map(|i| {
        let db = db.clone();
        async move { runs::claim(&db, "t", 60_000, &format!("r{i}"), now, now + 5_000).await }
    }))
    .await;
    let won: Vec<usize> = (0..8).filter(|i| *claims[*i].as_ref().unwrap()).collect();
    assert_eq!(won.len(), 1, "{claims:?}");
    let owner = format!("r{}", won[0]);

    // While the lease holds nobody else may take it; after it, one replica takes it over.
    assert!(
        !runs::claim(&db, "t", 60_000, "late", now + 4_999, now + 9_000)
            .await
            .unwrap()
    );
    assert!(
        runs::claim(&db, "t", 60_000, "heir", now + 5_000, now + 10_000)
            .await
            .unwrap()
    );
    assert!(
        !runs::claim(&db, "t", 60_000, "third", now + 5_001, now + 10_000)
            .await
            .unwrap()
    );

    // The dead owner, come back, cannot finish the slot it lost.
    let mut tx = db.begin_write().await.unwrap();
    assert!(
        !runs::finish(&mut tx, "t", 60_000, &owner, now + 6_000, "late")
            .await
            .unwrap()
    );
    tx.rollback().await.unwrap();
    let mut tx = db.begin_write().await.unwrap();
    assert!(
        runs::finish(&mut tx, "t", 60_000, "heir", now + 6_000, "did it")
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    // A done slot is never claimed again, however old its lease.
    assert!(
        !runs::claim(&db, "t", 60_000, "again", now + 99_000, now + 100_000)
            .await
            .unwrap()
    );
    let attempts = test_db
        .scalar_i64("SELECT attempts FROM task_runs WHERE task = $1", "t")
        .await;
    assert_eq!(attempts, 2);

    // A failing slot is retried after its delay, three attempts in all.
    let mut at = now;
    for attempt in 1..=3 {
        assert!(
            runs::claim(&db, "f", 0, "r", at, at + 1_000).await.unwrap(),
            "attempt {attempt}"
        );
        runs::fail(&db, "f", 0, "r", at, at + 10, "boom")
            .await
            .unwrap();
        assert!(
            !runs::claim(&db, "f", 0, "r", at + 5, at + 1_000)
                .await
                .unwrap()
        );
        at += 10;
    }
    assert!(
        !runs::claim(&db, "f", 0, "r", at + 1_000, at + 2_000)
            .await
            .unwrap()
    );
    let outcome = test_db
        .scalar_i64("SELECT COUNT(*) FROM task_runs WHERE status = $1", "failed")
        .await;
    assert_eq!(outcome, 1);
    test_db.remove().await;
}

on_both_databases!(cleanup_deletes_what_is_past_its_retention);

/// Old settled battles and their votes, old idempotency keys, expired refresh tokens and the
/// sessions they leave empty go; the ledger and recent battles stay.
async fn cleanup_deletes_what_is_past_its_retention(backend: Backend) {
    use crate::harness::{ADMIN, Game, HOUR};
    use serde_json::json;

    let test_db = TestDb::new(backend).await;
    let game = Game::start(&test_db.url, 0, &["--schedule", "cleanup=1h"]).await;
    let count = |table: &'static str| {
        let db = &test_db;
        async move {
            db.scalar_i64(&format!("SELECT COUNT(*) FROM {table} WHERE $1 = $1"), "")
                .await
        }
    };
    let (token, _, hero) = game.fighter("an old hero").await;
    let (_, _, rival) = game.fighter("an old rival").await;
    let started = game
        .send(
            reqwest::Method::POST,
            "/api/v1/battles",
            &token,
            Some(json!({"character_id": hero, "opponent_id": rival})),
            Some("old-battle"),
        )
        .await;
    assert_eq!(started.status, 202, "{}", started.body);
    game.until("the old battle to settle", || async {
        (test_db
            .scalar_i64(
                "SELECT COUNT(*) FROM battles WHERE status = $1",
                "COMPLETED",
            )
            .await
            == 1)
            .then_some(())
    })
    .await;
    assert_eq!(count("idempotency_keys").await, 1);
    assert_eq!(count("sessions").await, 2);
    assert_eq!(count("battle_results").await, 1, "the old battle's result");
    let ledger = count("ledger").await;

    // 91 days later (refresh tokens live 30): a new battle, then the cleanup slot.
    game.advance(91 * 24 * HOUR);
    let fresh = game
        .post(
            "/api/v1/admin/battles",
            ADMIN,
            json!({"fighters": hero_testkit::fixtures::pair()}),
        )
        .await;
    assert_eq!(fresh.status, 202, "{}", fresh.body);
    let outcome = game
        .until("a cleanup run", || async {
            let runs = game.get("/api/v1/admin/tasks?task=cleanup", ADMIN).await;
            let latest = runs["runs"]["items"][0].clone();
            let now = crate::ladder::game_now(&game);
            (latest["status"] == "done" && latest["slot_ms"].as_i64().unwrap() > now - HOUR)
                .then_some(latest["outcome"].clone())
        })
        .await;
    let outcome = outcome.as_str().unwrap();
    assert!(outcome.starts_with("deleted 1 battles"), "{outcome}");
    assert_eq!(count("idempotency_keys").await, 0);
    assert_eq!(count("refresh_tokens").await, 0);
    assert_eq!(count("sessions").await, 0);
    assert_eq!(count("game_battles").await, 0);
    assert_eq!(count("battles").await, 1, "the recent battle stays");
    assert_eq!(
        test_db
            .scalar_i64(
                "SELECT COUNT(*) FROM battle_results r WHERE NOT EXISTS \
                 (SELECT 1 FROM battles b WHERE b.id = r.battle_id) AND $1 = $1",
                "",
            )
            .await,
        0,
        "results go with their battles"
    );
    assert_eq!(
        count("ledger").await,
        ledger,
        "the ledger is history, never cleaned"
    );
    game.stop().await;
    test_db.remove().await;
}
