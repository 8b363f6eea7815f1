//! The hand-off: a battle created while the worker has a free slot is inserted already claimed
//! by this replica (never seen PENDING) and settled once; battles created when every slot is
//! taken are inserted PENDING and claimed in turn, each settled once, at its first attempt.
//! The 202 names the status the battle was committed with.

use futures::future::join_all;
use hero_testkit::{Backend, TestDb, on_both_databases};
use serde_json::{Value, json};
use sqlx::Row;

use crate::harness::{ADMIN, Game};

on_both_databases!(a_battle_created_with_a_free_slot_starts_claimed);
on_both_databases!(battles_beyond_the_free_slots_wait_their_turn);

fn order(n: usize) -> Value {
    json!({"fighters": [
        {"id": format!("a{n}"), "name": "Aria", "strength": 12, "agility": 8, "luck": 5, "rarity": 3},
        {"id": format!("b{n}"), "name": "Brom", "strength": 10, "agility": 9, "luck": 6, "rarity": 2},
    ]})
}

async fn create(game: &Game, n: usize) -> String {
    create_told(game, n).await.0
}

/// A new admin battle's id, and the status its 202 answer gave.
async fn create_told(game: &Game, n: usize) -> (String, String) {
    let created = game.post("/api/v1/admin/battles", ADMIN, order(n)).await;
    assert_eq!(created.status, 202, "{}", created.body);
    (
        created.body["battle_id"].as_str().unwrap().to_owned(),
        created.body["status"].as_str().unwrap().to_owned(),
    )
}

async fn settled(game: &Game, id: &str) -> Value {
    game.until("the battle to settle", || async {
        let battle = game.get(&format!("/api/v1/battles/{id}"), "").await;
        (battle["status"] == "COMPLETED").then_some(battle)
    })
    .await
}

/// `(status, attempts, lease_owner)` of the battle's row.
async fn row(db: &hero_aggregator::db::Db, id: &str) -> (String, i64, Option<String>) {
    let row = sqlx::query("SELECT status, attempts, lease_owner FROM battles WHERE id = $1")
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    (
        row.get("status"),
        row.get("attempts"),
        row.get("lease_owner"),
    )
}

async fn a_battle_created_with_a_free_slot_starts_claimed(backend: Backend) {
    let db = TestDb::new(backend).await;
    // No nodes: battles settle by the local fallback.
    // No poll for expired leases during the test: a claim holds the free slots while it runs.
    let flags = ["--battle-concurrency", "8", "--poll-interval-ms", "600000"];
    let game = Game::start(&db.url, 0, &flags).await;
    let store = crate::connect(&db.url).await;
    // Until the worker's first claim has looked, battles from before a start may be waiting:
    // the first battle may be inserted PENDING.
    let first = create(&game, 0).await;
    settled(&game, &first).await;
    // Each battle settles before the next is made: at most one slot is still held by the
    // battle before (its task ends just after its verdict is written).
    for n in 1..6 {
        let (id, told) = create_told(&game, n).await;
        // Committed claimed, in the transaction that created it, before the answer.
        assert_eq!(told, "RUNNING", "battle {n}");
        let (status, attempts, owner) = row(&store, &id).await;
        assert_ne!(status, "PENDING", "battle {n} was inserted PENDING");
        assert_eq!(attempts, 1);
        if status == "RUNNING" {
            assert!(owner.is_some_and(|o| o.starts_with("aggregator-")));
        }
        settled(&game, &id).await;
    }
    // A player's battle likewise, where player battles are batched (SQLite); on PostgreSQL
    // each is its own transaction and is inserted PENDING for the worker to claim.
    let (token, _, mine) = game.fighter("a careful knight").await;
    let (_, _, opponent) = game.fighter("a reckless mage").await;
    let started = game
        .post(
            "/api/v1/battles",
            &token,
            json!({"character_id": mine, "opponent_id": opponent}),
        )
        .await;
    assert_eq!(started.status, 202, "{}", started.body);
    let id = started.body["battle_id"].as_str().unwrap();
    let expected = match backend {
        Backend::Sqlite => "RUNNING",
        Backend::Postgres => "PENDING",
    };
    assert_eq!(started.body["status"], expected, "{}", started.body);
    settled(&game, id).await;
    let (_, attempts, _) = row(&store, id).await;
    assert_eq!(attempts, 1);
}

async fn battles_beyond_the_free_slots_wait_their_turn(backend: Backend) {
    let db = TestDb::new(backend).await;
    // No poll: a battle inserted PENDING is claimed only because the worker was woken for it.
    let flags = ["--battle-concurrency", "2", "--poll-interval-ms", "600000"];
    let game = Game::start(&db.url, 0, &flags).await;
    let store = crate::connect(&db.url).await;
    let told: Vec<(String, String)> = join_all((0..16).map(|n| create_told(&game, n))).await;
    for (_, status) in &told {
        assert!(status == "PENDING" || status == "RUNNING", "{status}");
    }
    let ids: Vec<String> = told.into_iter().map(|(id, _)| id).collect();
    for id in &ids {
        let battle = settled(&game, id).await;
        assert_eq!(battle["settled_by"], "fallback", "{battle}");
        let (status, attempts, _) = row(&store, id).await;
        assert_eq!(status, "COMPLETED");
        assert_eq!(attempts, 1, "battle {id} ran more than once");
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM battles")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(count, 16);
}
