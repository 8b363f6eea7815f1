//! Player sessions against the real aggregator: access tokens expire, refresh tokens rotate,
//! a reused refresh token revokes its whole session, logout really ends a session, device
//! logins, forged tokens, and the one-time nickname change.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hero_testkit::{Backend, TestDb, on_both_databases};
use hero_tests::game::{Player, send};
use hero_tests::{Aggregator, AggregatorOptions};
use serde_json::json;

on_both_databases!(
    tokens_expire_and_refresh_tokens_rotate,
    reused_refresh_token_revokes_the_session,
    device_login_and_logout,
    logout_reaches_the_other_replicas,
    forged_tokens_are_refused,
    nickname_changes_once_and_is_unique,
);

fn short_lived(db: &TestDb) -> Aggregator {
    let options = AggregatorOptions {
        extra: vec!["--access-token-ttl-secs".into(), "2".into()],
        ..AggregatorOptions::default()
    };
    Aggregator::start(db, &options)
}

async fn refresh(agg: &Aggregator, token: &str) -> hero_tests::game::Reply {
    send(
        reqwest::Client::new()
            .post(format!("{}/api/v1/auth/refresh", agg.url()))
            .json(&json!({ "refresh_token": token })),
    )
    .await
}

async fn tokens_expire_and_refresh_tokens_rotate(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = short_lived(&db);
    let mut player = Player::guest(&agg).await;
    assert_eq!(player.get("/api/v1/players/me").await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(3_100)).await;
    let expired = player.get("/api/v1/players/me").await;
    assert_eq!(expired.status, 401);
    assert!(
        expired.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{:?}",
        expired.body
    );

    let renewed = refresh(&agg, &player.refresh_token).await;
    assert_eq!(renewed.status, 200, "{:?}", renewed.body);
    assert_eq!(renewed.body["token_type"], "Bearer");
    assert_eq!(renewed.body["expires_in"], 2);
    let next_refresh = renewed.body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(next_refresh, player.refresh_token, "refresh tokens rotate");
    player.access_token = renewed.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(player.me().await["id"], player.id.as_str());
    // The rotated token keeps working once.
    let again = refresh(&agg, &next_refresh).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
}

async fn reused_refresh_token_revokes_the_session(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let mut player = Player::guest(&agg).await;
    let old = player.refresh_token.clone();
    let rotated = refresh(&agg, &old).await;
    assert_eq!(rotated.status, 200);
    let new_refresh = rotated.body["refresh_token"].as_str().unwrap().to_string();
    player.access_token = rotated.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(player.get("/api/v1/players/me").await.status, 200);

    // Someone replays the old token: refused, and the whole family is revoked.
    let reused = refresh(&agg, &old).await;
    assert_eq!(reused.status, 401);
    assert!(
        reused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    assert_eq!(
        refresh(&agg, &new_refresh).await.status,
        401,
        "the newest token dies too"
    );
    assert_eq!(
        player.get("/api/v1/players/me").await.status,
        401,
        "and the access token"
    );
    assert_eq!(refresh(&agg, "not-a-token").await.status, 401);
    let revoked: i64 = db
        .scalar_i64(
            "SELECT COUNT(*) FROM sessions WHERE player_id = $1 AND revoked_at_ms IS NOT NULL",
            &player.id,
        )
        .await;
    assert_eq!(revoked, 1);
}

async fn device_login_and_logout(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let first = Player::guest(&agg).await;
    let client = reqwest::Client::new();
    let login = |id: String, secret: String| {
        send(
            client
                .post(format!("{}/api/v1/auth/device", agg.url()))
                .json(&json!({ "device_id": id, "device_secret": secret })),
        )
    };
    let wrong = login(first.device_id.clone(), "wrong".into()).await;
    assert_eq!(wrong.status, 401);
    let unknown = login("no-such-device".into(), first.device_secret.clone()).await;
    assert_eq!(unknown.status, 401);
    let again = login(first.device_id.clone(), first.device_secret.clone()).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(
        again.body["player"]["id"],
        first.id.as_str(),
        "same player, new session"
    );
    let mut second = first.clone();
    second.access_token = again.body["access_token"].as_str().unwrap().to_string();
    second.refresh_token = again.body["refresh_token"].as_str().unwrap().to_string();

    // Logging out ends only that session, for access and refresh alike.
    let out = second.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!(out.status, 204);
    assert_eq!(second.get("/api/v1/players/me").await.status, 401);
    assert_eq!(refresh(&agg, &second.refresh_token).await.status, 401);
    assert_eq!(
        first.get("/api/v1/players/me").await.status,
        200,
        "other sessions live on"
    );
    // The device secret is stored hashed.
    let plain = db
        .scalar_i64(
            "SELECT COUNT(*) FROM devices WHERE secret_hash = $1",
            &first.device_secret,
        )
        .await;
    assert_eq!(plain, 0);
}

/// Each replica believes a session it found open for a second without asking the database:
/// a logout on one replica is refused there at once and on the others within that second.
async fn logout_reaches_the_other_replicas(backend: Backend) {
    let db = TestDb::new(backend).await;
    let here = Aggregator::start(&db, &AggregatorOptions::default());
    let there = Aggregator::start(&db, &AggregatorOptions::default());
    let player = Player::guest(&here).await;
    let elsewhere = player.at(&there);
    assert_eq!(elsewhere.get("/api/v1/players/me").await.status, 200);
    let out = player.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!(out.status, 204);
    assert_eq!(player.get("/api/v1/players/me").await.status, 401);
    // Within a second, plus the time the requests take on a busy test machine.
    hero_tests::eventually(3, "the other replica to refuse the session", || async {
        (elsewhere.get("/api/v1/players/me").await.status == 401).then_some(())
    })
    .await;
    let body = elsewhere.get("/api/v1/players/me").await.body;
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("session has ended")),
        "{body}"
    );
}

async fn forged_tokens_are_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let alice = Player::guest(&agg).await;
    let bob = Player::guest(&agg).await;
    let parts: Vec<&str> = alice.access_token.split('.').collect();
    assert_eq!(parts.len(), 3);
    // Alice's token with Bob's id as subject, signature kept.
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["sub"], alice.id.as_str());
    assert_eq!(claims["iss"], "hero-aggregator");
    assert_eq!(claims["aud"], "hero-game");
    claims["sub"] = json!(bob.id);
    let swapped = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let alg_none = format!("{none_header}.{}.", parts[1]);
    let client = reqwest::Client::new();
    for token in [swapped.as_str(), alg_none.as_str(), "garbage", "a.b.c"] {
        let reply = send(
            client
                .get(format!("{}/api/v1/players/me", agg.url()))
                .bearer_auth(token),
        )
        .await;
        assert_eq!(reply.status, 401, "{token}");
        assert_eq!(reply.code(), "unauthorized");
    }
    let missing = send(client.get(format!("{}/api/v1/players/me", agg.url()))).await;
    assert_eq!(missing.status, 401);
    let basic = send(
        client
            .get(format!("{}/api/v1/players/me", agg.url()))
            .header("authorization", "Basic abc"),
    )
    .await;
    assert_eq!(basic.status, 401);
}

async fn nickname_changes_once_and_is_unique(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let alice = Player::guest(&agg).await;
    let bob = Player::guest(&agg).await;
    assert!(
        alice.me().await["nickname"]
            .as_str()
            .unwrap()
            .starts_with("Hero-")
    );
    for bad in ["x", "bad!name", "<script>", &"n".repeat(33)] {
        let reply = alice
            .patch("/api/v1/players/me", json!({ "nickname": bad }))
            .await;
        assert_eq!(reply.status, 422, "{bad}: {:?}", reply.body);
    }
    let unknown_field = alice
        .patch(
            "/api/v1/players/me",
            json!({ "nickname": "Alice", "gold": 1 }),
        )
        .await;
    assert_eq!(unknown_field.status, 422);
    let ok = alice
        .patch("/api/v1/players/me", json!({ "nickname": "Alice 火" }))
        .await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(
        (
            ok.body["nickname"].as_str(),
            ok.body["nickname_changed"].as_bool()
        ),
        (Some("Alice 火"), Some(true))
    );
    let twice = alice
        .patch("/api/v1/players/me", json!({ "nickname": "Alicia" }))
        .await;
    assert_eq!(twice.status, 409);
    let taken = bob
        .patch("/api/v1/players/me", json!({ "nickname": "alice 火" }))
        .await;
    assert_eq!(taken.status, 409, "case-insensitive: {:?}", taken.body);
    // Case folded, not only lower-cased: a final sigma is a sigma.
    let carol = Player::guest(&agg).await;
    let dave = Player::guest(&agg).await;
    let sigma = carol
        .patch("/api/v1/players/me", json!({ "nickname": "ZΣ" }))
        .await;
    assert_eq!(sigma.status, 200, "{:?}", sigma.body);
    let final_sigma = dave
        .patch("/api/v1/players/me", json!({ "nickname": "zσ" }))
        .await;
    assert_eq!(final_sigma.status, 409, "{:?}", final_sigma.body);
    // The house's name is not a player's, however it is spaced or joined.
    for house in ["the HOUSE", "The  House", "the_house", "The-House"] {
        let refused = dave
            .patch("/api/v1/players/me", json!({ "nickname": house }))
            .await;
        assert_eq!(refused.status, 409, "{house}: {:?}", refused.body);
    }
    let bob_ok = bob
        .patch("/api/v1/players/me", json!({ "nickname": "Bob" }))
        .await;
    assert_eq!(
        bob_ok.status, 200,
        "a refused change does not use up the one change"
    );
}
