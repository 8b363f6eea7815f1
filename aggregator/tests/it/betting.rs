//! Betting as a bank: 1,000 concurrent bets from 100 players, each sent twice with the same
//! `Idempotency-Key`, then a fallback verdict and a battle whose fighter left — after which
//! every balance equals its ledger, gold is conserved and every stake came back exactly once.
//! No nodes run: battles settle by the local fallback, which never pays bets.

use std::sync::Arc;

use futures::future::join_all;
use hero_testkit::{Backend, TestDb, on_both_databases};
use reqwest::Method;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::harness::{ADMIN, Game, HOUR, MINUTE};
use crate::ladder::{assert_ledger_explains_gold, game_now, gold, hour_zero, total_gold};

on_both_databases!(concurrent_bets_keep_the_books);

const PLAYERS: usize = 100;
const BETS_EACH: usize = 10;

async fn concurrent_bets_keep_the_books(backend: Backend) {
    let db = TestDb::new(backend).await;
    let game = Arc::new(Game::start(&db.url, 0, &["--flag-burst-bets", "5"]).await);
    let h0 = hour_zero(&game);
    let season = game
        .post(
            "/api/v1/admin/seasons",
            ADMIN,
            json!({"name": "Bank", "starts_at_ms": h0, "ends_at_ms": h0 + 30 * 24 * HOUR}),
        )
        .await;
    let season_id = season.body["id"].as_str().unwrap();
    let activated = game
        .post(
            &format!("/api/v1/admin/seasons/{season_id}/activate"),
            ADMIN,
            json!({}),
        )
        .await;
    assert_eq!(activated.status, 200, "{}", activated.body);
    let mut fighters = Vec::new();
    for i in 0..4 {
        let f = game.fighter(&format!("bank fighter {i}")).await;
        let entry = game
            .post("/api/v1/ladder/entries", &f.0, json!({"character_id": f.2}))
            .await;
        assert_eq!(entry.status, 201);
        fighters.push(f);
    }
    let mut bettors = Vec::new();
    for _ in 0..PLAYERS {
        bettors.push(game.guest().await);
    }
    game.advance(h0 + HOUR - game_now(&game));
    let battles: Vec<String> = game
        .until("two battles to be scheduled", || async {
            let page = game
                .get("/api/v1/scheduled-battles?status=scheduled", &bettors[0])
                .await;
            let items = page["items"].as_array().unwrap().clone();
            (items.len() == 2).then(|| {
                items
                    .iter()
                    .map(|b| b["id"].as_str().unwrap().to_owned())
                    .collect()
            })
        })
        .await;
    game.advance(35 * MINUTE);
    let gold_before = total_gold(&db).await;

    // Every bet twice, concurrently, under the same key.
    let gate = Arc::new(Semaphore::new(64));
    let mut calls = Vec::new();
    for (p, token) in bettors.iter().enumerate() {
        for i in 0..BETS_EACH {
            let battle = &battles[i % 2];
            let side = if (p + i % 2) % 2 == 0 { "red" } else { "blue" };
            let amount = 1 + (p * 37 + i * 101) % 300;
            let key = format!("bet-{p}-{i}");
            for _ in 0..2 {
                let (game, gate) = (Arc::clone(&game), Arc::clone(&gate));
                let (token, key) = (token.clone(), key.clone());
                let path = format!("/api/v1/scheduled-battles/{battle}/bets");
                let body = json!({"side": side, "amount": amount});
                calls.push(tokio::spawn(async move {
                    let _permit = gate.acquire_owned().await.unwrap();
                    let answer = game
                        .send(Method::POST, &path, &token, Some(body), Some(&key))
                        .await;
                    (key, answer)
                }));
            }
        }
    }
    let answers: Vec<_> = join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let mut by_key: std::collections::HashMap<String, Vec<_>> = Default::default();
    for (key, answer) in answers {
        assert!(
            answer.status == 201 || answer.status == 409,
            "{key}: {} {}",
            answer.status,
            answer.body
        );
        by_key.entry(key).or_default().push(answer);
    }
    let mut accepted = 0;
    for (key, pair) in &by_key {
        assert_eq!(
            pair[0].status, pair[1].status,
            "{key}: a retry answers like the first"
        );
        if pair[0].status == 201 {
            assert_eq!(
                pair[0].body, pair[1].body,
                "{key}: the retry replays the first"
            );
            accepted += 1;
        }
    }
    assert!(
        accepted > 100 && accepted < PLAYERS * BETS_EACH,
        "{accepted} accepted"
    );
    let rows = db
        .scalar_i64("SELECT COUNT(*) FROM bets WHERE id <> $1", "")
        .await;
    assert_eq!(rows, accepted as i64, "one bet per accepted key");

    // The books: every stake left a player and reached the house, nothing else moved.
    for (p, token) in bettors.iter().enumerate().step_by(7) {
        let me = game.get("/api/v1/players/me", token).await;
        let staked = db
            .scalar_i64(
                "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM bets WHERE player_id = $1",
                me["id"].as_str().unwrap(),
            )
            .await;
        assert_eq!(me["gold"].as_i64().unwrap(), 1000 - staked, "bettor {p}");
    }
    let staked = db
        .scalar_i64(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM bets WHERE id <> $1",
            "",
        )
        .await;
    let house = db
        .scalar_i64("SELECT gold FROM players WHERE id = $1", "house")
        .await;
    assert_eq!(house, staked);
    let pools = db
        .scalar_i64(
            "SELECT CAST(SUM(red_pool + blue_pool) AS BIGINT) FROM scheduled_battles WHERE id <> $1",
            "",
        )
        .await;
    assert_eq!(pools, staked);
    assert_eq!(total_gold(&db).await, gold_before);
    assert_ledger_explains_gold(&db).await;

    // Suspicious patterns are flagged, not dropped.
    let flags = game.get("/api/v1/admin/flags?limit=100", ADMIN).await;
    let kinds: Vec<&str> = flags["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"bet_burst"), "{kinds:?}");
    assert!(kinds.contains(&"new_accounts_one_side"), "{kinds:?}");

    // One battle loses a fighter; the other is settled by the fallback: all stakes refunded.
    let second = game
        .get(
            &format!("/api/v1/scheduled-battles/{}", battles[1]),
            &bettors[0],
        )
        .await;
    let leaver = fighters
        .iter()
        .find(|f| f.1 == second["red_player_id"].as_str().unwrap())
        .unwrap();
    let deleted = game
        .call(
            Method::DELETE,
            &format!("/api/v1/characters/{}", leaver.2),
            &leaver.0,
            None,
        )
        .await;
    assert!(deleted.status < 300, "{}", deleted.body);
    game.advance(25 * MINUTE);
    let done = game
        .until("both battles to finish", || async {
            let page = game.get("/api/v1/scheduled-battles", &bettors[0]).await;
            let items = page["items"].as_array().unwrap().clone();
            // Only these two: the next hour's pairing may already schedule new battles.
            let ours: Vec<_> = items
                .into_iter()
                .filter(|b| battles.iter().any(|id| b["id"] == id.as_str()))
                .collect();
            (ours.len() == 2
                && ours
                    .iter()
                    .all(|b| b["status"] == "settled" || b["status"] == "void"))
            .then_some(ours)
        })
        .await;
    let reason_of = |id: &str| {
        done.iter().find(|b| b["id"] == id).unwrap()["void_reason"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(reason_of(&battles[0]).contains("fallback"), "{done:?}");
    assert!(reason_of(&battles[1]).contains("fighter left"), "{done:?}");
    for token in bettors.iter().step_by(9) {
        assert_eq!(gold(&game, token).await, 1000, "every stake came back");
    }
    assert_eq!(
        db.scalar_i64("SELECT gold FROM players WHERE id = $1", "house")
            .await,
        0
    );
    let open = db
        .scalar_i64(
            "SELECT COUNT(*) FROM bets WHERE status <> 'refunded' AND id <> $1",
            "",
        )
        .await;
    assert_eq!(open, 0);
    // Exactly one refund per player and battle they backed.
    let backed = db
        .scalar_i64(
            "SELECT COUNT(*) FROM (SELECT DISTINCT player_id, scheduled_battle_id FROM bets) b \
             WHERE b.player_id <> $1",
            "",
        )
        .await;
    let refunds = db
        .scalar_i64(
            "SELECT COUNT(*) FROM ledger WHERE reason = $1",
            "bet_refund",
        )
        .await;
    assert_eq!(refunds, backed);
    assert_eq!(total_gold(&db).await, gold_before);
    assert_ledger_explains_gold(&db).await;
    Arc::into_inner(game).unwrap().stop().await;
    db.remove().await;
}
