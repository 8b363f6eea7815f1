//! Many credits in one go (`Ledger::credit_many`, used by battle rewards and sign-up) against
//! real databases: one row per change with the balance after it as if written one by one,
//! energy through regeneration, an unknown player refused, and nothing half-written.

use hero_aggregator::auth::store as players;
use hero_aggregator::db::Db;
use hero_aggregator::ledger::{Change, Ledger, Resource};
use hero_testkit::{Backend, TestDb};

use crate::connect;

/// `(resource, delta, balance_after)` of a player's ledger rows for `reason`, by resource and
/// balance.
async fn rows(db: &Db, player: &str, reason: &str) -> Vec<(String, i64, i64)> {
    let mut rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT resource, delta, balance_after FROM ledger WHERE player_id = $1 AND reason = $2",
    )
    .bind(player)
    .bind(reason)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    rows.sort();
    rows
}

async fn balance(db: &Db, player: &str, column: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT {column} FROM players WHERE id = $1"))
        .bind(player)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

async fn credits_in_one_go(db: &Db) {
    let ledger = Ledger {
        dialect: db.dialect,
        energy_regen_ms: 360_000,
    };
    let now = 1_000;
    let mut tx = db.begin_write().await.unwrap();
    let player = players::create(&mut tx, &ledger, "guest", now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // Sign-up: five credits, one row each, balances as the seed gives them.
    let signup = rows(db, &player, "signup").await;
    assert_eq!(
        signup,
        vec![
            ("energy".to_owned(), 100, 100),
            ("exp_potion".to_owned(), 100, 100),
            ("gold".to_owned(), 1000, 1000),
            ("prompt".to_owned(), 10, 10),
            ("prompt_power".to_owned(), 5, 5),
        ]
    );

    let mut tx = db.begin_write().await.unwrap();
    let other = players::create(&mut tx, &ledger, "guest", now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // Two players, a resource named twice for one of them, and an energy refund (which goes
    // through regeneration on its own): each row carries the balance after its own change.
    fn change<'a>(
        player: &'a str,
        resource: Resource,
        delta: i64,
        reference: &'a str,
    ) -> Change<'a> {
        Change {
            player,
            resource,
            delta,
            reason: "battle_reward",
            reference: Some(reference),
        }
    }
    let (a, b) = (player.as_str(), other.as_str());
    let batch = [
        change(a, Resource::Gold, 50, "b1"),
        change(a, Resource::ExpPotion, 20, "b1"),
        change(b, Resource::Gold, 10, "b2"),
        change(a, Resource::Gold, 5, "b3"),
        change(a, Resource::Energy, 3, "b4"),
    ];
    let mut tx = db.begin_write().await.unwrap();
    ledger.credit_many(&mut tx, &batch, now).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        rows(db, a, "battle_reward").await,
        vec![
            ("energy".to_owned(), 3, 103),
            ("exp_potion".to_owned(), 20, 120),
            ("gold".to_owned(), 5, 1055),
            ("gold".to_owned(), 50, 1050),
        ]
    );
    assert_eq!(
        rows(db, b, "battle_reward").await,
        vec![("gold".to_owned(), 10, 1010)]
    );
    assert_eq!(balance(db, a, "gold").await, 1055);
    assert_eq!(balance(db, a, "exp_potion").await, 120);
    assert_eq!(balance(db, a, "energy").await, 103);
    assert_eq!(balance(db, b, "gold").await, 1010);
    let references: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT reference FROM ledger WHERE player_id = $1 AND resource = 'exp_potion' \
         AND reason = 'battle_reward'",
    )
    .bind(a)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(references, vec![Some("b1".to_owned())]);

    // An unknown player among known ones: refused, and the transaction is rolled back whole.
    let mut tx = db.begin_write().await.unwrap();
    let err = ledger
        .credit_many(
            &mut tx,
            &[
                change(a, Resource::Gold, 1, "b5"),
                change("nobody", Resource::Gold, 1, "b5"),
            ],
            now,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no such player"), "{err}");
    tx.rollback().await.unwrap();
    assert_eq!(balance(db, a, "gold").await, 1055);
    let stray: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ledger WHERE reference = 'b5'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(stray, 0);

    // A debit has no place among credits: refused before anything is written.
    let mut tx = db.begin_write().await.unwrap();
    let err = ledger
        .credit_many(&mut tx, &[change(a, Resource::Gold, -1, "b6")], now)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("credits only"), "{err}");
    tx.rollback().await.unwrap();
    assert_eq!(balance(db, a, "gold").await, 1055);
}

#[tokio::test]
async fn credits_in_one_go_sqlite() {
    let sqlite = TestDb::new(Backend::Sqlite).await;
    credits_in_one_go(&connect(&sqlite.url).await).await;
}

#[tokio::test]
async fn credits_in_one_go_postgres() {
    let pg = TestDb::new(Backend::Postgres).await;
    let db = connect(&pg.url).await;
    credits_in_one_go(&db).await;
    db.pool.close().await;
    db.writer.close().await;
    pg.remove().await;
}
