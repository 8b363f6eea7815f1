//! The rewards of a batch of player verdicts written at once (`PlayerRewards::apply_many`)
//! against real databases: the same ratings, counts, quest progress, ledger rows and outcomes
//! as the verdicts applied one after another, a character's rating moved by an earlier battle
//! of the batch counting for the next.

use hero_aggregator::auth::store as players;
use hero_aggregator::battles::store::{self as battles, NewBattle};
use hero_aggregator::battles::{Settled, VerdictEffect};
use hero_aggregator::consensus::Verdict;
use hero_aggregator::db::Db;
use hero_aggregator::game::rewards::PlayerRewards;
use hero_aggregator::ledger::Ledger;
use hero_testkit::fixtures::plain_pair;
use hero_testkit::{Backend, TestDb};

use crate::connect;

async fn character(db: &Db, id: &str, player: &str) {
    sqlx::query(
        "INSERT INTO characters (id, player_id, name, wish, description, skill_description, \
             text_source, rarity, strength, agility, luck, created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $1, 'w', 'd', 's', 'templates', 1, 10, 10, 10, 0, 0)",
    )
    .bind(id)
    .bind(player)
    .execute(&db.pool)
    .await
    .unwrap();
}

/// A battle of `attacker`'s `ca` against `defender`'s `cb`, with its two sides.
async fn battle(db: &Db, attacker: &str, defender: &str) -> String {
    let fighters = plain_pair();
    let mut tx = db.begin_write().await.unwrap();
    let new = NewBattle {
        fighters: &fighters,
        seed: 1,
        prompt: "p",
        created_by: Some(attacker),
    };
    let id = battles::insert(&mut tx, &new, 0).await.unwrap();
    tx.commit().await.unwrap();
    for (player, mine, theirs, side, spent) in [
        (attacker, "ca", "cb", "attacker", 10),
        (defender, "cb", "ca", "defender", 0),
    ] {
        sqlx::query(
            "INSERT INTO game_battles (battle_id, player_id, character_id, \
                 opponent_character_id, side, energy_spent, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, 0)",
        )
        .bind(&id)
        .bind(player)
        .bind(mine)
        .bind(theirs)
        .bind(side)
        .bind(spent)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    id
}

fn won_by(winner: &str) -> Verdict {
    let mut result = hero_engine::Sim
        .battle("x", &plain_pair(), Some(1))
        .unwrap();
    result.winner = winner.to_owned();
    Verdict::Quorum { result }
}

async fn scalar(db: &Db, sql: &str, id: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

async fn a_batch_pays_as_one_by_one(db: &Db) {
    let ledger = Ledger {
        dialect: db.dialect,
        energy_regen_ms: 360_000,
    };
    let mut tx = db.begin_write().await.unwrap();
    let a = players::create(&mut tx, &ledger, "guest", 0).await.unwrap();
    let b = players::create(&mut tx, &ledger, "guest", 0).await.unwrap();
    tx.commit().await.unwrap();
    character(db, "ca", &a).await;
    character(db, "cb", &b).await;
    let (b1, b2, b3) = (
        battle(db, &a, &b).await,
        battle(db, &a, &b).await,
        battle(db, &a, &b).await,
    );
    let (first, second, failed) = (
        won_by("ca"),
        won_by("cb"),
        Verdict::Error("no node answered".into()),
    );
    let batch: Vec<Settled<'_>> = [(&b1, &first), (&b2, &second), (&b3, &failed)]
        .into_iter()
        .map(|(battle, verdict)| Settled {
            battle_id: battle,
            created_by: Some(&a),
            verdict,
            now_ms: 1_000,
        })
        .collect();
    let rewards = PlayerRewards { ledger };
    let mut tx = db.begin_write().await.unwrap();
    rewards.apply_many(&mut tx, &batch).await.unwrap();
    tx.commit().await.unwrap();

    // Battle 1 at 1000 against 1000 moves 16; battle 2, the 984 beating the 1016, moves 17.
    let rating = "SELECT rating FROM characters WHERE id = $1";
    assert_eq!(scalar(db, rating, "ca").await, 1000 + 16 - 17);
    assert_eq!(scalar(db, rating, "cb").await, 1000 - 16 + 17);
    for id in ["ca", "cb"] {
        let counts = "SELECT wins * 100000 + losses * 10000 + win_rate_bp FROM characters \
                      WHERE id = $1";
        assert_eq!(
            scalar(db, counts, id).await,
            100_000 + 10_000 + 5_000,
            "{id}"
        );
    }
    for player in [&a, &b] {
        let counts = "SELECT wins * 10 + losses FROM players WHERE id = $1";
        assert_eq!(scalar(db, counts, player).await, 11);
    }
    // The attacker alone is paid: a win (50 gold, 20 exp) and a loss (10, 5); the ERROR
    // battle's energy comes back.
    let column = |c: &str| format!("SELECT {c} FROM players WHERE id = $1");
    assert_eq!(scalar(db, &column("gold"), &a).await, 1000 + 50 + 10);
    assert_eq!(scalar(db, &column("exp_potion"), &a).await, 100 + 20 + 5);
    assert_eq!(scalar(db, &column("energy"), &a).await, 100 + 10);
    assert_eq!(scalar(db, &column("gold"), &b).await, 1000);
    let gold_rows: Vec<(i64, i64, String)> = sqlx::query_as(
        "SELECT delta, balance_after, reference FROM ledger \
         WHERE player_id = $1 AND resource = 'gold' AND reason = 'battle_reward' \
         ORDER BY balance_after",
    )
    .bind(&a)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        gold_rows,
        vec![(50, 1050, b1.clone()), (10, 1060, b2.clone())]
    );
    let refund = "SELECT balance_after FROM ledger WHERE player_id = $1 \
                  AND reason = 'battle_refund'";
    assert_eq!(scalar(db, refund, &a).await, 110);
    // Quest progress: two fights and one win (for both win quests) for the attacker, nothing
    // for the defender.
    let progress = |quest: &str| {
        format!(
            "SELECT CAST(COALESCE(SUM(progress), 0) AS BIGINT) FROM player_quests \
             WHERE player_id = $1 AND quest_id = '{quest}'"
        )
    };
    assert_eq!(scalar(db, &progress("daily_fight_3"), &a).await, 2);
    assert_eq!(scalar(db, &progress("daily_win_1"), &a).await, 1);
    assert_eq!(scalar(db, &progress("daily_win_3"), &a).await, 1);
    assert_eq!(scalar(db, &progress("daily_fight_3"), &b).await, 0);
    // Each side's outcome.
    let outcomes: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT battle_id, character_id, outcome FROM game_battles \
         ORDER BY battle_id, character_id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let expected = |battle: &str| match battle {
        id if id == b1 => ("win", "loss"),
        id if id == b2 => ("loss", "win"),
        _ => ("error", "error"),
    };
    for (battle, character, outcome) in &outcomes {
        let (ca, cb) = expected(battle);
        let want = if character == "ca" { ca } else { cb };
        assert_eq!(outcome, want, "{battle} {character}");
    }
    assert_eq!(outcomes.len(), 6);
}

#[tokio::test]
async fn a_batch_pays_as_one_by_one_sqlite() {
    let sqlite = TestDb::new(Backend::Sqlite).await;
    a_batch_pays_as_one_by_one(&connect(&sqlite.url).await).await;
}

#[tokio::test]
async fn a_batch_pays_as_one_by_one_postgres() {
    let pg = TestDb::new(Backend::Postgres).await;
    let db = connect(&pg.url).await;
    a_batch_pays_as_one_by_one(&db).await;
    db.pool.close().await;
    db.writer.close().await;
    pg.remove().await;
}
