//! Writing verdicts against a real database (SQLite file and PostgreSQL): a batch settles
//! exactly the battles this worker still holds, once.

use hero_aggregator::battles::VerdictEffects;
use hero_aggregator::battles::results::Prepared;
use hero_aggregator::battles::store::{self, NewBattle, Settlement};
use hero_aggregator::consensus::{Verdict, Vote, VoteRole};
use hero_aggregator::db::Db;
use hero_testkit::fixtures::plain_pair;
use hero_testkit::{Backend, TestDb};

use crate::connect;

/// A selected node's on-time vote for `result`, valid unless `error` says why not.
fn vote(
    node: &str,
    result: &hero_protocol::BattleResult,
    latency_ms: u64,
    error: Option<&str>,
) -> Vote {
    Vote {
        node_id: node.into(),
        role: VoteRole::Selected,
        winner: Some(result.winner.clone()),
        result: Some(result.clone()),
        latency_ms,
        valid: error.is_none(),
        error: error.map(str::to_owned),
        result_hash: None,
        reputation: 1.0,
        busy_retry_after_ms: None,
        answered_at: std::time::Instant::now(),
        after_verdict: false,
        elapsed: std::time::Duration::ZERO,
        superseded: false,
        cut_short: false,
    }
}

async fn batch_settles_only_battles_still_held(db: &Db) {
    let db = db.clone();
    let now = 1_000;
    sqlx::query(
        "INSERT INTO nodes (id, name, url, token_hash, created_at_ms, updated_at_ms) \
         VALUES ('n1', 'n1', 'http://n1', 'h', 0, 0), ('n2', 'n2', 'http://n2', 'h', 0, 0)",
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
    let votes = vec![vote("n1", &result, 3, None)];
    let effects = VerdictEffects::default();
    // The batch's result is prepared before the transaction, as the worker does.
    let prepared = Prepared::of(verdict.result().unwrap()).unwrap();
    let one = |job| Settlement {
        job,
        verdict: &verdict,
        votes: &votes,
        published: Some(&prepared),
    };
    // The middle battle is settled first, with another result by another node; the batch
    // must not settle it again, nor leave its own result or vote for it.
    let earlier = hero_engine::Sim.battle("y", &fighters, Some(2)).unwrap();
    let earlier_votes = vec![Vote {
        node_id: "n2".into(),
        winner: Some(earlier.winner.clone()),
        result: Some(earlier.clone()),
        ..votes[0].clone()
    }];
    let earlier_verdict = Verdict::Quorum { result: earlier };
    let first = Settlement {
        job: &jobs[1],
        verdict: &earlier_verdict,
        votes: &earlier_votes,
        published: None,
    };
    assert!(
        store::settle(&db, &first, "me", &effects, now)
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
    let middle_voter: String =
        sqlx::query_scalar("SELECT node_id FROM battle_votes WHERE battle_id = $1")
            .bind(&jobs[1].id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(middle_voter, "n2", "the first settlement's vote stands");
    let results: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM battle_results")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        results, 3,
        "one result per battle: the batch kept none of the one it lost"
    );
}

/// Identical votes share one stored result with the verdict, a rejected result is its own,
/// the API reads the published one back; a row from before results were stored apart still
/// reads.
async fn results_are_stored_once_and_read_back(db: &Db) {
    let now = 1_000;
    for node in ["n1", "n2", "n3", "n4", "n5"] {
        sqlx::query(
            "INSERT INTO nodes (id, name, url, token_hash, created_at_ms, updated_at_ms) \
             VALUES ($1, $1, $2, 'h', 0, 0)",
        )
        .bind(node)
        .bind(format!("http://{node}"))
        .execute(&db.pool)
        .await
        .unwrap();
    }
    let fighters = plain_pair();
    let mut tx = db.begin_write().await.unwrap();
    for _ in 0..2 {
        let battle = NewBattle {
            fighters: &fighters,
            seed: 7,
            prompt: "a duel at dawn",
            created_by: Some("admin:ops"),
        };
        store::insert(&mut tx, &battle, now).await.unwrap();
    }
    tx.commit().await.unwrap();
    let jobs = store::claim(db, "me", 60_000, now, 10).await.unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0].prompt, "a duel at dawn", "a custom prompt is kept");
    let result = hero_engine::Sim
        .battle(&jobs[0].id, &fighters, Some(7))
        .unwrap();
    let mut rejected = result.clone();
    rejected.winner = "nobody".into();
    let vote = |node: &str, valid: bool, result: &hero_protocol::BattleResult| {
        vote(
            node,
            result,
            3,
            (!valid).then_some("winner is not a fighter"),
        )
    };
    let votes = vec![
        vote("n1", true, &result),
        vote("n2", true, &result),
        vote("n3", false, &rejected),
    ];
    let verdict = Verdict::Quorum {
        result: result.clone(),
    };
    let effects = VerdictEffects::default();
    let settlement = Settlement {
        job: &jobs[0],
        verdict: &verdict,
        votes: &votes,
        published: None,
    };
    assert!(
        store::settle(db, &settlement, "me", &effects, now)
            .await
            .unwrap()
    );
    // Votes of the battle that name its published result.
    const NAMING_PUBLISHED: &str = "SELECT COUNT(*) FROM battle_votes v \
         JOIN battles b ON b.id = v.battle_id \
         WHERE v.battle_id = $1 AND v.result_hash = b.result_hash";
    let count = |sql: &'static str| {
        let id = jobs[0].id.clone();
        async move {
            let n: i64 = sqlx::query_scalar(sql)
                .bind(id)
                .fetch_one(&db.pool)
                .await
                .unwrap();
            n
        }
    };
    assert_eq!(
        count("SELECT COUNT(*) FROM battle_results WHERE battle_id = $1").await,
        2
    );
    assert_eq!(
        count(NAMING_PUBLISHED).await,
        2,
        "the agreeing votes name the published result"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM battle_votes WHERE battle_id = $1 AND result_hash IS NOT NULL")
            .await,
        3,
        "the rejected result is kept too"
    );
    // Late votes: one agreeing (its result is the published one: no new row), one with a
    // result of its own (a row of its own).
    let sha = |r: &hero_protocol::BattleResult| -> [u8; 32] {
        let digest = ring::digest::digest(&ring::digest::SHA256, &serde_json::to_vec(r).unwrap());
        digest.as_ref().try_into().unwrap()
    };
    let mut other = result.clone();
    other.battle_description.push_str(" (told otherwise)");
    let late = store::LateVotes {
        battle_id: jobs[0].id.clone(),
        winner: Some(result.winner.clone()),
        votes: vec![
            Vote {
                result_hash: Some(sha(&result)),
                ..vote("n4", true, &result)
            },
            Vote {
                result_hash: Some(sha(&other)),
                ..vote("n5", true, &other)
            },
        ],
        published: Some(Prepared::of(&result).unwrap().hash),
    };
    store::record_late_votes(db, &[late], now).await.unwrap();
    assert_eq!(
        count("SELECT COUNT(*) FROM battle_results WHERE battle_id = $1").await,
        3,
        "the agreeing late vote added no result"
    );
    assert_eq!(
        count(NAMING_PUBLISHED).await,
        3,
        "the agreeing late vote names the published result"
    );
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM battle_votes v JOIN battle_results r \
             ON r.battle_id = v.battle_id AND r.hash = v.result_hash WHERE v.battle_id = $1"
        )
        .await,
        5,
        "every vote's result is stored"
    );
    let view = store::get(db, &jobs[0].id).await.unwrap().unwrap();
    assert_eq!(view.winner_id.as_deref(), Some(result.winner.as_str()));
    assert_eq!(view.battle_log, result.battle_log);
    assert_eq!(
        view.battle_description.as_deref(),
        Some(result.battle_description.as_str())
    );
    assert_eq!(
        view.created_by.as_deref(),
        Some("admin"),
        "the admin's name is not public"
    );

    // A battle settled before results were stored apart: JSON inline, no hash.
    let legacy = &jobs[1].id;
    sqlx::query(
        "UPDATE battles SET status = 'COMPLETED', settled_by = 'quorum', winner_id = $2, \
             result_json = $3, settled_at_ms = 2000 WHERE id = $1",
    )
    .bind(legacy)
    .bind(&result.winner)
    .bind(serde_json::to_string(&result).unwrap())
    .execute(&db.pool)
    .await
    .unwrap();
    let view = store::get(db, legacy).await.unwrap().unwrap();
    assert_eq!(view.battle_log, result.battle_log);
}

#[tokio::test]
async fn results_are_stored_once_and_read_back_sqlite() {
    let sqlite = TestDb::new(Backend::Sqlite).await;
    results_are_stored_once_and_read_back(&connect(&sqlite.url).await).await;
}

#[tokio::test]
async fn results_are_stored_once_and_read_back_postgres() {
    let pg = TestDb::new(Backend::Postgres).await;
    let db = connect(&pg.url).await;
    results_are_stored_once_and_read_back(&db).await;
    db.pool.close().await;
    db.writer.close().await;
    pg.remove().await;
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

/// Text a hostile client or node could send, for the batch statements to carry unchanged.
const AWKWARD: &str = "quote \" backslash \\ apostrophe ' $1 ? %s {\"json\": [1]} \
                       tab\tnewline\n\u{7f} émoji 🐉 \u{200b}zero-width";

/// Batches keep every byte: on PostgreSQL their rows travel as one JSON parameter, on SQLite as
/// a multi-row `VALUES`; both must write what one row at a time would.
async fn batched_rows_keep_every_byte(db: &Db) {
    let now = 1_000;
    for node in ["n1", "n2"] {
        sqlx::query(
            "INSERT INTO nodes (id, name, url, token_hash, created_at_ms, updated_at_ms) \
             VALUES ($1, $1, $2, 'h', 0, 0)",
        )
        .bind(node)
        .bind(format!("http://{node}"))
        .execute(&db.pool)
        .await
        .unwrap();
    }
    let mut fighters = plain_pair();
    fighters[0].name = format!("Ari {AWKWARD}");
    fighters[1].skill_description = AWKWARD.to_owned();
    let prompt = format!("a custom prompt: {AWKWARD}");
    let battles = [
        NewBattle {
            fighters: &fighters,
            seed: 42,
            prompt: &prompt,
            created_by: Some("admin:ops"),
        },
        NewBattle {
            fighters: &fighters,
            seed: store::MAX_SEED,
            prompt: &hero_engine::request_prompt(&fighters),
            created_by: None,
        },
    ];
    let lease = store::Lease {
        owner: "me",
        until_ms: now + 60_000,
    };
    let mut conn = db.writer.acquire().await.unwrap();
    // The first is inserted claimed by "me", the second PENDING.
    let ids = store::insert_many(&mut conn, &battles, now, Some((lease, 1)))
        .await
        .unwrap();
    drop(conn);
    let row = |id: &str| {
        let id = id.to_owned();
        async move {
            let row: (String, Option<String>, Option<i64>, i64) = sqlx::query_as(
                "SELECT status, lease_owner, lease_until_ms, attempts FROM battles WHERE id = $1",
            )
            .bind(id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
            row
        }
    };
    assert_eq!(
        row(&ids[0]).await,
        ("RUNNING".into(), Some("me".into()), Some(now + 60_000), 1)
    );
    assert_eq!(row(&ids[1]).await, ("PENDING".into(), None, None, 0));
    // Past the first one's lease, both are claimed: the prompts and fighters come back whole.
    let later = now + 61_000;
    let mut jobs = store::claim(db, "me", 60_000, later, 10).await.unwrap();
    jobs.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(
        jobs.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        vec![ids[0].as_str(), ids[1].as_str()]
    );
    assert_eq!(jobs[0].prompt, prompt);
    assert_eq!(jobs[1].prompt, hero_engine::request_prompt(&fighters));
    assert_eq!(jobs[0].fighters, fighters);
    assert_eq!(jobs[1].seed, store::MAX_SEED);

    let mut result = hero_engine::Sim
        .battle(&jobs[0].id, &fighters, Some(42))
        .unwrap();
    result.battle_description = format!("{} {AWKWARD}", result.battle_description);
    let mut rejected = result.clone();
    rejected.winner = AWKWARD.to_owned();
    let vote = |node: &str, result: &hero_protocol::BattleResult, error: Option<&str>| {
        vote(node, result, 7, error)
    };
    let quorum = Verdict::Quorum {
        result: result.clone(),
    };
    let quorum_votes = vec![
        vote("n1", &result, None),
        vote("n2", &rejected, Some(AWKWARD)),
    ];
    let fallback = Verdict::Fallback {
        result: result.clone(),
        engine: format!("sim {AWKWARD}"),
        reason: format!("no quorum: {AWKWARD}"),
    };
    let prepared = Prepared::of(&result).unwrap();
    let batch = [
        Settlement {
            job: &jobs[0],
            verdict: &quorum,
            votes: &quorum_votes,
            published: Some(&prepared),
        },
        Settlement {
            job: &jobs[1],
            verdict: &fallback,
            votes: &[],
            published: None,
        },
    ];
    let written = store::settle_many(db, &batch, "me", &VerdictEffects::default(), later)
        .await
        .unwrap();
    assert_eq!(written, vec![true, true]);

    let view = store::get(db, &jobs[0].id).await.unwrap().unwrap();
    assert_eq!(view.status, "COMPLETED");
    assert_eq!(view.settled_by.as_deref(), Some("quorum"));
    assert_eq!(view.fighters, fighters);
    assert_eq!(view.seed, 42);
    assert_eq!(view.settled_at_ms, Some(later));
    assert_eq!(view.battle_log, result.battle_log);
    assert_eq!(
        view.battle_description.as_deref(),
        Some(result.battle_description.as_str())
    );
    let mut votes = view.votes.clone();
    votes.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    assert_eq!(votes.len(), 2);
    assert_eq!(votes[0].response_time_ms, 7);
    assert!(votes[0].is_valid && votes[0].agrees == Some(true));
    assert_eq!(votes[1].error.as_deref(), Some(AWKWARD));
    assert!(!votes[1].is_valid);
    let agreeing_result: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM battle_votes v JOIN battles b ON b.id = v.battle_id \
         WHERE v.battle_id = $1 AND v.node_id = 'n1' AND v.result_hash = b.result_hash",
    )
    .bind(&jobs[0].id)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        agreeing_result, 1,
        "the agreeing vote names the published result"
    );

    let view = store::get(db, &jobs[1].id).await.unwrap().unwrap();
    assert_eq!(view.settled_by.as_deref(), Some("fallback"));
    assert_eq!(view.fallback_engine, Some(format!("sim {AWKWARD}")));
    assert_eq!(view.error, Some(format!("no quorum: {AWKWARD}")));
    assert_eq!(view.seed, store::MAX_SEED);
    assert_eq!(
        view.battle_description.as_deref(),
        Some(result.battle_description.as_str())
    );
}

#[tokio::test]
async fn batched_rows_keep_every_byte_sqlite() {
    let sqlite = TestDb::new(Backend::Sqlite).await;
    batched_rows_keep_every_byte(&connect(&sqlite.url).await).await;
}

#[tokio::test]
async fn batched_rows_keep_every_byte_postgres() {
    let pg = TestDb::new(Backend::Postgres).await;
    let db = connect(&pg.url).await;
    batched_rows_keep_every_byte(&db).await;
    db.pool.close().await;
    db.writer.close().await;
    pg.remove().await;
}
