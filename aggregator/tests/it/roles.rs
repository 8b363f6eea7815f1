//! Token kinds and roles: player, admin and node tokens are each refused on the others' routes
//! with a reason; personal admin accounts work until revoked; the keys that sign player tokens
//! rotate without logging anyone out, across replicas sharing the database.

use hero_aggregator::auth::{admin, rotate_stored_keys};
use hero_aggregator::clock::Clock;
use hero_testkit::{Backend, TestDb, on_both_databases};

use crate::connect;
use crate::harness::{Answer, Game};

on_both_databases!(each_token_kind_only_opens_its_own_routes);
on_both_databases!(signing_keys_rotate_without_logging_anyone_out);

fn refused(a: &Answer, words: &str) {
    assert_eq!(a.status, 401, "{}", a.body);
    let message = a.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(words), "{message:?} should say {words:?}");
}

async fn get(game: &Game, path: &str, token: &str) -> Answer {
    game.call(reqwest::Method::GET, path, token, None).await
}

async fn each_token_kind_only_opens_its_own_routes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let game = Game::start(&db.url, 0, &[]).await;
    let pool = connect(&db.url).await;
    let player = game.guest().await;
    let alice = admin::create(&pool, "alice", game.clock.now_ms())
        .await
        .unwrap();
    assert!(alice.starts_with("hero_admin_"));

    // A personal admin token opens admin routes, not player ones.
    assert_eq!(get(&game, "/api/v1/admin/tasks", &alice).await.status, 200);
    refused(
        &get(&game, "/api/v1/players/me", &alice).await,
        "an admin token",
    );
    // A player token opens player routes, not admin ones.
    assert_eq!(get(&game, "/api/v1/players/me", &player).await.status, 200);
    refused(
        &get(&game, "/api/v1/admin/tasks", &player).await,
        "a player access token",
    );
    // Node and enrollment tokens open neither.
    for (token, words) in [
        ("hero_node_0123456789abcdef", "a node token"),
        (
            "hero_enroll_0123456789abcdef",
            "an operator enrollment token",
        ),
    ] {
        refused(&get(&game, "/api/v1/admin/tasks", token).await, words);
        refused(&get(&game, "/api/v1/players/me", token).await, words);
    }
    // Made-up admin tokens and revoked ones are refused.
    refused(
        &get(&game, "/api/v1/admin/tasks", "hero_admin_forged").await,
        "not valid",
    );
    let accounts = admin::list(&pool).await.unwrap();
    assert_eq!(accounts.len(), 1);
    assert!(accounts[0].last_used_at_ms.is_some(), "uses are recorded");
    assert!(
        admin::revoke(&pool, "alice", game.clock.now_ms())
            .await
            .unwrap()
    );
    refused(&get(&game, "/api/v1/admin/tasks", &alice).await, "revoked");
    assert!(
        !admin::revoke(&pool, "alice", game.clock.now_ms())
            .await
            .unwrap()
    );
    assert!(admin::check_name("admin-token").is_err() && admin::check_name("bad name").is_err());
}

async fn signing_keys_rotate_without_logging_anyone_out(backend: Backend) {
    let db = TestDb::new(backend).await;
    let pool = connect(&db.url).await;
    let a = Game::start(&db.url, 0, &[]).await;
    let before = a.guest().await;

    // Rotate: replica B starts with the new key current and the old one previous.
    rotate_stored_keys(&pool, a.clock.now_ms()).await.unwrap();
    let b = Game::start(&db.url, 0, &[]).await;
    assert_eq!(
        get(&b, "/api/v1/players/me", &before).await.status,
        200,
        "old tokens still work"
    );
    let after = b.guest().await;
    assert_ne!(kid(&before), kid(&after));
    // Replica A has not seen the new key yet: it reloads the keys and accepts the token.
    a.advance(11_000);
    assert_eq!(
        get(&a, "/api/v1/players/me", &after).await.status,
        200,
        "A picked the new key up"
    );

    // A second rotation drops the first key: a replica starting now refuses tokens it signed,
    // and running replicas do within a minute.
    rotate_stored_keys(&pool, a.clock.now_ms()).await.unwrap();
    assert_eq!(
        get(&a, "/api/v1/players/me", &before).await.status,
        200,
        "not yet reloaded"
    );
    a.advance(61_000);
    refused(
        &get(&a, "/api/v1/players/me", &before).await,
        "key this server does not have",
    );
    let third = a.guest().await;
    assert_ne!(kid(&third), kid(&after), "A signs with the newest key");
    let c = Game::start(&db.url, 0, &[]).await;
    refused(
        &get(&c, "/api/v1/players/me", &before).await,
        "key this server does not have",
    );
    assert_eq!(get(&c, "/api/v1/players/me", &after).await.status, 200);
}

/// The `kid` of a JWT's header.
fn kid(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().unwrap();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let header: serde_json::Value = serde_json::from_slice(&json).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}
