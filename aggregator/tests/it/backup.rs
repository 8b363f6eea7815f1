//! The restore drill: players fight, battles settle by the nodes' vote, a backup is taken
//! while the aggregator serves, and a new database restored from it answers every battle
//! (with its votes), every profile and every ledger page exactly as before.

use hero_aggregator::db::backup;
use hero_testkit::{Backend, TestDb, on_both_databases};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::Game;

on_both_databases!(a_backup_taken_while_serving_restores_battles_votes_and_ledger);

/// What players and spectators can see: every battle, every profile, every ledger.
async fn seen(game: &Game, battles: &[String], players: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    for id in battles {
        out.push(game.get(&format!("/api/v1/battles/{id}"), "").await);
    }
    for token in players {
        out.push(game.get("/api/v1/players/me", token).await);
        out.push(game.get("/api/v1/players/me/ledger?limit=100", token).await);
    }
    out
}

async fn a_backup_taken_while_serving_restores_battles_votes_and_ledger(backend: Backend) {
    let db = TestDb::new(backend).await;
    let game = Game::start(&db.url, 3, &[]).await;
    let mut players = Vec::new();
    let mut battles = Vec::new();
    let mut fighters = Vec::new();
    for i in 0..3 {
        fighters.push(game.fighter(&format!("drill hero {i}")).await);
    }
    for (token, _, hero) in fighters {
        for _ in 0..2 {
            let started = game
                .ok(
                    Method::POST,
                    "/api/v1/battles",
                    &token,
                    Some(json!({"character_id": hero})),
                )
                .await;
            battles.push(started["battle_id"].as_str().unwrap().to_owned());
        }
        players.push(token);
    }
    game.until("every battle to settle", || async {
        // Settled, and the third vote in too (it may come after the verdict).
        for id in &battles {
            let b = game.get(&format!("/api/v1/battles/{id}"), "").await;
            if b["status"] != "COMPLETED" || b["votes"].as_array().map_or(0, Vec::len) < 3 {
                return None;
            }
        }
        Some(())
    })
    .await;
    let before = seen(&game, &battles, &players).await;
    let votes: usize = before
        .iter()
        .filter_map(|v| v["votes"].as_array())
        .map(Vec::len)
        .sum();
    assert_eq!(votes, 3 * battles.len(), "{before:?}");
    let counted = backup::contents(&db.url).await.unwrap();

    let dir = std::env::temp_dir().join(format!("hero-backup-{}", uuid::Uuid::new_v4()));
    let file = dir.join("hero.backup");
    let copied = backup::backup(&db.url, &file).await.unwrap();
    assert_eq!(copied, counted);
    let again = backup::backup(&db.url, &file).await.unwrap_err();
    assert!(again.to_string().contains("exists"), "{again:#}");
    game.stop().await;

    let target = TestDb::new(backend).await;
    let restored = backup::restore(&target.url, &file, false).await.unwrap();
    assert_eq!(restored, counted);
    let twice = backup::restore(&target.url, &file, false)
        .await
        .unwrap_err();
    assert!(twice.to_string().contains("--replace"), "{twice:#}");
    backup::restore(&target.url, &file, true).await.unwrap();

    let revived = Game::start(&target.url, 0, &[]).await;
    let after = seen(&revived, &battles, &players).await;
    assert_eq!(before, after);
    revived.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
