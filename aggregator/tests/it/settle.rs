//! Writing verdicts against a real database (SQLite file and PostgreSQL): a batch settles
//! exactly the battles this worker still holds, once.

use hero_aggregator::battles::VerdictEffects;
use hero_aggregator::battles::store::{self, NewBattle, Settlement};
use hero_aggregator::consensus::{Verdict, Vote, VoteRole};
use hero_aggregator::db::Db;
use hero_testkit::fixtures::plain_pair;
use hero_testkit::{Backend, TestDb};

use crate::connect;

async fn batch_settles_only_battles_still_held(db: &Db) {
    let db = db.clone();
    let now = 1_000;
    sqlx::query(
        "INSERT INTO nodes (id, name, url, token_hash, created_at_ms, updated_at_ms) \
         VALUES ('n1', 'n1', 'http://n1', 'h', 0, 0)",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let fighters = plain_pair();
    let mut tx = db.begin_write().await.unwrap();
    for _ in 0..3 {
        let battle = NewBattle {
            fighters: &fighters,
            seed: 1,
            prompt: "p",
            created_by: None,
        };
        store::insert(&mut tx, &battle, now).await.unwrap();
    }
    tx.commit().await.unwrap();
    let mut jobs = store::claim(&db, "me", 60_000, now, 10).await.unwrap();
    jobs.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(jobs.len(), 3);
    let result = hero_engine::Sim.battle("x", &fighters, Some(1)).unwrap();
    let verdict = Verdict::Quorum {
        result: result.clone(),
    };
    let votes = vec![Vote {
        node_id: "n1".into(),
        role: VoteRole::Selected,
        winner: Some(result.winner.clone()),
        result: Some(result),
        latency_ms: 3,
        valid: true,
        error: None,
        result_hash: None,
        reputation: 1.0,
        busy_retry_after_ms: None,
        answered_at: std::time::Instant::now(),
        after_verdict: false,
    }];
    let effects = VerdictEffects::default();
    let one = |job| Settlement {
        job,
        verdict: &verdict,
        votes: &votes,
    };
    // The middle battle is settled first; the batch must not settle it again.
    assert!(
        store::settle(&db, &one(&jobs[1]), "me", &effects, now)
            .await
            .unwrap()
    );
    let batch: Vec<Settlement<'_>> = jobs.iter().map(one).collect();
    let written = store::settle_many(&db, &batch, "me", &effects, now)
        .await
        .unwrap();
    assert_eq!(written, vec![true, false, true]);
    // Someone who does not hold the lease settles nothing.
    let other = store::settle_many(&db, &batch, "someone-else", &effects, now)
        .await
        .unwrap();
    assert_eq!(other, vec![false, false, false]);
    let completed: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM battles WHERE status = 'COMPLETED'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(completed, 3);
    let votes_stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM battle_votes")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(votes_stored, 3, "one vote per battle, never twice");
}

#[tokio::test]
async fn batch_settles_only_battles_still_held_sqlite() {
    let sqlite = TestDb::new(Backend::Sqlite).await;
    batch_settles_only_battles_still_held(&connect(&sqlite.url).await).await;
}

#[tokio::test]
async fn batch_settles_only_battles_still_held_postgres() {
    let pg = TestDb::new(Backend::Postgres).await;
    let db = connect(&pg.url).await;
    batch_settles_only_battles_still_held(&db).await;
    db.pool.close().await;
    db.writer.close().await;
    pg.remove().await;
}
