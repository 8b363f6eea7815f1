//! A rush of battles: many `POST /api/v1/battles` at once (on SQLite they are started together,
//! several in one transaction) give exactly what they would one after another: each player's
//! energy spent once per battle and never below zero, the daily limit per opponent held, every
//! refusal with its reason, and a ledger whose balances follow each other.

use std::collections::HashSet;

use futures::future::join_all;
use hero_testkit::{Backend, TestDb, on_both_databases};
use serde_json::{Value, json};

use crate::harness::Game;

on_both_databases!(a_rush_of_battles_spends_as_one_after_another);

async fn a_rush_of_battles_spends_as_one_after_another(backend: Backend) {
    let db = TestDb::new(backend).await;
    // No nodes: battles settle by the local fallback. The clock stands still: no energy
    // comes back while the rush runs.
    let game = Game::start(&db.url, 0, &[]).await;
    let (a, _, a_hero) = game.fighter("the rusher").await;
    let (b, _, b_hero) = game.fighter("the first target").await;
    let (_, _, c_hero) = game.fighter("the second target").await;
    let (_, _, d_hero) = game.fighter("a fresh target").await;
    let a_second = game
        .post(
            "/api/v1/characters",
            &a,
            json!({"prompt": "the rusher's twin"}),
        )
        .await;
    assert_eq!(a_second.status, 201, "{}", a_second.body);
    let a_twin = a_second.body["id"].as_str().unwrap().to_owned();
    let energy = |token: String| {
        let game = &game;
        async move {
            game.get("/api/v1/players/me", &token).await["energy"]
                .as_i64()
                .unwrap()
        }
    };
    assert_eq!(energy(a.clone()).await, 100);

    // 100 energy and 10 a battle; at most 5 battles a day against the same player.
    let mut asks: Vec<(String, Value, &str)> = Vec::new();
    for _ in 0..12 {
        asks.push((
            a.clone(),
            json!({"character_id": a_hero, "opponent_id": b_hero}),
            "a-b",
        ));
    }
    for _ in 0..6 {
        asks.push((
            a.clone(),
            json!({"character_id": a_hero, "opponent_id": c_hero}),
            "a-c",
        ));
    }
    asks.push((
        a.clone(),
        json!({"character_id": a_hero, "opponent_id": a_twin}),
        "own",
    ));
    asks.push((
        a.clone(),
        json!({"character_id": "no-such-hero"}),
        "missing",
    ));
    for _ in 0..3 {
        asks.push((
            b.clone(),
            json!({"character_id": b_hero, "opponent_id": a_hero}),
            "b-a",
        ));
    }
    let answers = join_all(asks.iter().map(|(token, body, _)| {
        game.call(
            reqwest::Method::POST,
            "/api/v1/battles",
            token,
            Some(body.clone()),
        )
    }))
    .await;
    let count = |kind: &str, status: u16| {
        asks.iter()
            .zip(&answers)
            .filter(|((_, _, k), a)| *k == kind && a.status == status)
            .count()
    };
    // Energy for ten: five against each player, and every other one refused by the limit.
    assert_eq!(
        (count("a-b", 202), count("a-b", 429)),
        (5, 7),
        "{answers:?}"
    );
    assert_eq!(
        (count("a-c", 202), count("a-c", 429)),
        (5, 1),
        "{answers:?}"
    );
    assert_eq!(count("own", 422), 1, "{answers:?}");
    assert_eq!(count("missing", 404), 1, "{answers:?}");
    assert_eq!(count("b-a", 202), 3, "{answers:?}");
    for ((_, _, kind), answer) in asks.iter().zip(&answers) {
        if answer.status == 429 {
            let message = answer.body["error"]["message"].as_str().unwrap();
            assert!(message.contains("5 times today"), "{kind}: {message}");
        }
    }
    // Each accepted battle told its player the energy left; A's answers are 90, 80, ..., 0.
    let mut left: Vec<i64> = asks
        .iter()
        .zip(&answers)
        .filter(|((_, _, k), a)| k.starts_with("a-") && a.status == 202)
        .map(|(_, a)| a.body["energy_left"].as_i64().unwrap())
        .collect();
    left.sort_unstable();
    assert_eq!(left, (0..10).map(|i| i * 10).collect::<Vec<_>>());
    assert_eq!(energy(a.clone()).await, 0);
    assert_eq!(energy(b.clone()).await, 70);

    // A's ledger: one `battle` row per accepted battle, each for its own battle, and the
    // energy balances 90, 80, ..., 0, each once.
    let ledger = game.get("/api/v1/players/me/ledger?limit=100", &a).await;
    // (The clock stands still: every row has the same time, so the page's order says nothing.)
    let rows: Vec<&Value> = ledger["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"] == "energy" && e["reason"] != "signup")
        .collect();
    let battles: HashSet<&str> = answers
        .iter()
        .filter(|a| a.status == 202)
        .map(|a| a.body["battle_id"].as_str().unwrap())
        .collect();
    for row in &rows {
        assert_eq!(row["reason"], "battle", "{row}");
        assert_eq!(row["delta"], -10, "{row}");
        assert!(
            battles.contains(row["reference"].as_str().unwrap()),
            "{row}"
        );
    }
    let mut balances: Vec<i64> = rows
        .iter()
        .map(|r| r["balance_after"].as_i64().unwrap())
        .collect();
    balances.sort_unstable();
    assert_eq!(balances, (0..10).map(|i| i * 10).collect::<Vec<_>>());
    assert_eq!(rows.len(), 10, "{ledger}");
    let references: HashSet<&str> = rows
        .iter()
        .map(|r| r["reference"].as_str().unwrap())
        .collect();
    assert_eq!(references.len(), 10, "one row per battle");

    // Against a player A has not fought, a battle is refused for energy, with the balance.
    let broke = game
        .post(
            "/api/v1/battles",
            &a,
            json!({"character_id": a_twin, "opponent_id": d_hero}),
        )
        .await;
    assert_eq!(broke.status, 409, "{}", broke.body);
    assert!(
        broke.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not enough energy: have 0, need 10"),
        "{}",
        broke.body
    );

    // Two and a half hours later, 25 points came back (one per 6 minutes): a second rush
    // regenerates once, then spends 10 and 10, and refuses the third with 5 left.
    game.advance(25 * 360_000 + 100_000);
    let again = join_all((0..3).map(|_| {
        game.post(
            "/api/v1/battles",
            &a,
            json!({"character_id": a_hero, "opponent_id": d_hero}),
        )
    }))
    .await;
    let mut statuses: Vec<u16> = again.iter().map(|a| a.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [202, 202, 409], "{again:?}");
    let refused = again.iter().find(|a| a.status == 409).unwrap();
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("have 5, need 10"),
        "{}",
        refused.body
    );
    let ledger = game.get("/api/v1/players/me/ledger?limit=100", &a).await;
    let entries = ledger["items"].as_array().unwrap();
    let regenerated: Vec<&Value> = entries
        .iter()
        .filter(|e| e["reason"] == "energy_regen")
        .collect();
    assert_eq!(regenerated.len(), 1, "{ledger}");
    assert_eq!(
        (&regenerated[0]["delta"], &regenerated[0]["balance_after"]),
        (&json!(25), &json!(25))
    );
    let mut after: Vec<i64> = entries
        .iter()
        .filter(|e| e["reason"] == "battle" && e["balance_after"].as_i64().unwrap() % 10 == 5)
        .map(|e| e["balance_after"].as_i64().unwrap())
        .collect();
    after.sort_unstable();
    assert_eq!(after, [5, 15], "{ledger}");
    assert_eq!(energy(a.clone()).await, 5);
    game.stop().await;
}
