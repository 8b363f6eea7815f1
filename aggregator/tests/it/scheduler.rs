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
