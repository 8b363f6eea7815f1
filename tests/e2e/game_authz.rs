//! What a player may not do: touch another player's characters or data, send bad input
//! (always a 4xx with our error shape, never a 500), exceed the rate limits, delete a character
//! that is still fighting, or upgrade without the resources.

use hero_testkit::{Backend, TestDb, on_both_databases};
use hero_tests::game::{Player, send};
use hero_tests::{Aggregator, AggregatorOptions, Behavior, TestNode};
use serde_json::json;

on_both_databases!(
    players_cannot_touch_each_others_characters,
    bad_input_is_a_4xx_never_a_500,
    rate_limits_answer_429_with_retry_after,
    fighting_characters_cannot_be_deleted,
    upgrades_cost_resources_and_stop_when_short,
);

async fn players_cannot_touch_each_others_characters(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let alice = Player::guest(&agg).await;
    let bob = Player::guest(&agg).await;
    let a1 = alice.summon("a knight").await;
    let b1 = bob.summon("a rogue").await;
    let b2 = bob.summon("a bard").await;
    let a1_id = a1["id"].as_str().unwrap();
    let theirs = format!("/api/v1/characters/{a1_id}");
    assert_eq!(bob.get(&theirs).await.status, 404);
    assert_eq!(
        bob.patch(&theirs, json!({ "name": "Stolen" })).await.status,
        404
    );
    assert_eq!(bob.delete(&theirs).await.status, 404);
    assert_eq!(
        bob.post(&format!("{theirs}/upgrade"), json!({}))
            .await
            .status,
        404
    );
    assert_eq!(bob.get(&format!("{theirs}/battles")).await.status, 404);
    // Bob cannot send Alice's character into battle, nor fight himself.
    let hijack = bob
        .post(
            "/api/v1/battles",
            json!({ "character_id": a1_id, "opponent_id": b1["id"] }),
        )
        .await;
    assert_eq!(hijack.status, 404, "{:?}", hijack.body);
    // Nor through matchmaking.
    let matched = bob
        .post("/api/v1/battles", json!({ "character_id": a1_id }))
        .await;
    assert_eq!(matched.status, 404, "{:?}", matched.body);
    let own = bob
        .post(
            "/api/v1/battles",
            json!({ "character_id": b1["id"], "opponent_id": b2["id"] }),
        )
        .await;
    assert_eq!(own.status, 422, "{:?}", own.body);
    let itself = bob
        .post(
            "/api/v1/battles",
            json!({ "character_id": b1["id"], "opponent_id": b1["id"] }),
        )
        .await;
    assert_eq!(itself.status, 422);
    // Alice's character is untouched, and lists only show one's own.
    let mine = alice.get(&theirs).await;
    assert_eq!(
        (mine.status.as_u16(), mine.body["name"].clone()),
        (200, a1["name"].clone())
    );
    let listed = bob.get("/api/v1/characters").await.body;
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["player_id"] == bob.id.as_str())
    );
    let ledger = bob.get("/api/v1/players/me/ledger?limit=100").await.body;
    let refs: Vec<&str> = ledger["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["reference"].as_str())
        .collect();
    assert!(
        !refs.contains(&a1_id),
        "Bob's ledger shows only Bob's entries"
    );
    assert_eq!(bob.me().await["id"], bob.id.as_str());
    // Without a token nothing private is readable.
    let anonymous = reqwest::Client::new();
    for path in [
        "/api/v1/players/me",
        "/api/v1/characters",
        "/api/v1/quests",
        "/api/v1/players/me/ledger",
        "/api/v1/battles?mine=true",
    ] {
        let reply = send(anonymous.get(format!("{}{path}", agg.url()))).await;
        assert_eq!(reply.status, 401, "{path}");
    }
}

async fn bad_input_is_a_4xx_never_a_500(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let p = Player::guest(&agg).await;
    let c = p.summon("a sage").await;
    let cid = c["id"].as_str().unwrap();
    let cases = [
        ("/api/v1/characters", json!({ "prompt": "x", "gold": 5 })),
        ("/api/v1/characters", json!({ "prompt": "" })),
        ("/api/v1/characters", json!({ "prompt": "p".repeat(501) })),
        ("/api/v1/characters", json!({ "prompt": "ok", "power": 11 })),
        ("/api/v1/characters", json!({ "prompt": "ok", "power": -1 })),
        ("/api/v1/characters", json!({ "prompt": 7 })),
        (
            "/api/v1/battles",
            json!({ "character_id": cid, "extra": true }),
        ),
        ("/api/v1/battles", json!({ "character_id": "x".repeat(65) })),
        ("/api/v1/battles", json!({})),
        (
            "/api/v1/auth/refresh",
            json!({ "refresh_token": "t", "x": 1 }),
        ),
        ("/api/v1/auth/device", json!({ "device_id": 1 })),
    ];
    for (path, body) in cases {
        let reply = p.post(path, body.clone()).await;
        assert_eq!(reply.status, 422, "{path} {body}: {:?}", reply.body);
        assert_eq!(reply.code(), "invalid_request");
    }
    for name in ["x", "bad/name", "emoji 🙂", "tab\there", &"n".repeat(51)] {
        let reply = p
            .patch(
                &format!("/api/v1/characters/{cid}"),
                json!({ "name": name }),
            )
            .await;
        assert_eq!(reply.status, 422, "{name:?}");
    }
    let renamed = p
        .patch(
            &format!("/api/v1/characters/{cid}"),
            json!({ "name": "龍 Dragon-1_x" }),
        )
        .await;
    assert_eq!(renamed.status, 200, "{:?}", renamed.body);
    for query in [
        "limit=0",
        "limit=101",
        "limit=abc",
        "cursor=%25%25",
        "kind=weird",
    ] {
        let reply = p.get(&format!("/api/v1/leaderboard?{query}")).await;
        assert_eq!(reply.status, 422, "{query}: {:?}", reply.body);
    }
    assert_eq!(p.get("/api/v1/characters?cursor=bm9wZQ").await.status, 422);
    assert_eq!(
        p.get("/api/v1/battles").await.status,
        422,
        "mine=true is required"
    );
    // Not JSON, no content type, too large.
    let raw = |body: &'static str| {
        p.request(reqwest::Method::POST, "/api/v1/characters")
            .header("content-type", "application/json")
            .body(body)
    };
    assert_eq!(send(raw("{not json")).await.status, 422);
    let plain = send(
        p.request(reqwest::Method::POST, "/api/v1/characters")
            .body("{}"),
    )
    .await;
    assert_eq!(plain.status, 422);
    let huge = json!({ "prompt": "p".repeat(70 * 1024) });
    let too_large = p.post("/api/v1/characters", huge).await;
    assert_eq!(too_large.status, 413, "{:?}", too_large.body);
    let long_key = "k".repeat(256);
    let bad_key = p
        .post_with_key("/api/v1/characters", json!({ "prompt": "ok" }), &long_key)
        .await;
    assert_eq!(bad_key.status, 422);
    let missing_battle = p.get("/api/v1/battles/does-not-exist/replay").await;
    assert_eq!(missing_battle.status, 404);
    let nothing = p
        .post("/api/v1/battles", json!({ "character_id": "nope" }))
        .await;
    assert_eq!(nothing.status, 404);
    // No opponent exists yet: a clear conflict, not an error.
    let lonely = p
        .post("/api/v1/battles", json!({ "character_id": cid }))
        .await;
    assert_eq!(lonely.status, 409, "{:?}", lonely.body);
    assert_eq!(p.me().await["energy"], 100, "refused battles cost nothing");
}

async fn rate_limits_answer_429_with_retry_after(backend: Backend) {
    let db = TestDb::new(backend).await;
    let options = AggregatorOptions {
        extra: [
            "--rate-limit-battles-per-hour",
            "2",
            "--rate-limit-requests-per-hour",
            "60",
            "--rate-limit-summons-per-hour",
            "5",
        ]
        .map(String::from)
        .to_vec(),
        ..AggregatorOptions::default()
    };
    let agg = Aggregator::start(&db, &options);
    let alice = Player::guest(&agg).await;
    let bob = Player::guest(&agg).await;
    let b1 = bob.summon("target").await;
    // Five summons an hour here (ten by default, the seed's limit); the sixth is refused
    // before any charge, though the player could pay for it.
    let mut first = None;
    for i in 0..5 {
        let c = alice.summon(&format!("hero {i}")).await;
        first.get_or_insert(c);
    }
    let sixth = alice
        .post("/api/v1/characters", json!({ "prompt": "one more" }))
        .await;
    assert_eq!(sixth.status, 429, "{:?}", sixth.body);
    assert_eq!(sixth.code(), "rate_limited");
    let wait = sixth.retry_after.expect("Retry-After");
    assert!(wait > 3000 && wait <= 3600, "{wait}");
    let a1 = first.unwrap();
    for _ in 0..2 {
        alice
            .battle(a1["id"].as_str().unwrap(), b1["id"].as_str())
            .await;
    }
    let third = alice
        .post(
            "/api/v1/battles",
            json!({ "character_id": a1["id"], "opponent_id": b1["id"] }),
        )
        .await;
    assert_eq!(third.status, 429);
    assert!(third.retry_after.is_some());
    // The default budget covers every endpoint: 60 requests an hour here.
    let mut ok = 0;
    let mut limited = None;
    for _ in 0..80 {
        let reply = alice.get("/api/v1/quests").await;
        if reply.status == 429 {
            limited = Some(reply);
            break;
        }
        ok += 1;
    }
    let limited = limited.expect("the default limit applies");
    assert!(limited.retry_after.is_some());
    assert!(ok < 60, "{ok} requests passed");
    // Limits are per player.
    assert_eq!(bob.get("/api/v1/quests").await.status, 200);
    // A summon the player cannot pay for is refused before it counts: ten of them leave the
    // hour's ten summons untouched.
    let carol = Player::guest(&agg).await;
    let power = carol.me().await["prompt_power"].as_i64().unwrap();
    for _ in 0..10 {
        let broke = carol
            .post(
                "/api/v1/characters",
                json!({ "prompt": "a mage", "power": power + 1 }),
            )
            .await;
        assert_eq!(broke.status, 409, "{:?}", broke.body);
    }
    let paid = carol
        .post("/api/v1/characters", json!({ "prompt": "a mage" }))
        .await;
    assert_eq!(paid.status, 201, "{:?}", paid.body);
}

async fn fighting_characters_cannot_be_deleted(backend: Backend) {
    let db = TestDb::new(backend).await;
    let options = AggregatorOptions {
        quorum_size: 1,
        extra: vec!["--insecure-single-node".into()],
        node_timeout_ms: 8_000,
        deadline_ms: 10_000,
        lease_ms: 15_000,
        ..AggregatorOptions::default()
    };
    let agg = Aggregator::start(&db, &options);
    let _slow = TestNode::start(&agg.url(), "slow", Behavior::Honest { delay_ms: 3_000 }).await;
    agg.wait_online(1).await;
    let alice = Player::guest(&agg).await;
    let bob = Player::guest(&agg).await;
    let a1 = alice.summon("attacker").await;
    let b1 = bob.summon("defender").await;
    let (a1_id, b1_id) = (a1["id"].as_str().unwrap(), b1["id"].as_str().unwrap());
    let started = alice.battle(a1_id, Some(b1_id)).await;
    let attacker = alice.delete(&format!("/api/v1/characters/{a1_id}")).await;
    assert_eq!(attacker.status, 409, "{:?}", attacker.body);
    let defender = bob.delete(&format!("/api/v1/characters/{b1_id}")).await;
    assert_eq!(defender.status, 409, "{:?}", defender.body);
    let battle = agg
        .settled(started["battle_id"].as_str().unwrap(), 30)
        .await;
    assert_eq!(battle["settled_by"], "quorum");
    assert_eq!(
        alice
            .delete(&format!("/api/v1/characters/{a1_id}"))
            .await
            .status,
        204
    );
    assert_eq!(
        alice
            .get(&format!("/api/v1/characters/{a1_id}"))
            .await
            .status,
        404
    );
    assert_eq!(
        alice
            .delete(&format!("/api/v1/characters/{a1_id}"))
            .await
            .status,
        404
    );
    // The finished battle stays readable.
    let replay = alice
        .get(&format!(
            "/api/v1/battles/{}/replay",
            started["battle_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(replay.status, 200);
}

async fn upgrades_cost_resources_and_stop_when_short(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let p = Player::guest(&agg).await;
    let c = p.summon("apprentice").await;
    let path = format!("/api/v1/characters/{}/upgrade", c["id"].as_str().unwrap());
    let gain = 2 + c["rarity"].as_i64().unwrap();
    // Level 1→2 costs 100 gold + 20 exp_potion, 2→3 costs 200 + 40.
    let up = p.post(&path, json!({})).await;
    assert_eq!(up.status, 200, "{:?}", up.body);
    assert_eq!(up.body["level"], 2);
    assert_eq!(
        up.body["strength"].as_i64().unwrap(),
        c["strength"].as_i64().unwrap() + gain
    );
    assert_eq!(p.post(&path, json!({})).await.body["level"], 3);
    let me = p.me().await;
    assert_eq!(
        (me["gold"].as_i64(), me["exp_potion"].as_i64()),
        (Some(700), Some(40))
    );
    // 3→4 needs 60 exp_potion: refused, and the gold is not taken either.
    let short = p.post(&path, json!({})).await;
    assert_eq!(short.status, 409, "{:?}", short.body);
    assert!(
        short.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exp_potion")
    );
    let me = p.me().await;
    assert_eq!(
        (me["gold"].as_i64(), me["exp_potion"].as_i64()),
        (Some(700), Some(40))
    );
    assert_eq!(
        p.get(&format!("/api/v1/characters/{}", c["id"].as_str().unwrap()))
            .await
            .body["level"],
        3
    );
    let board = p.get("/api/v1/quests").await.body;
    let upgrade = board["quests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["id"] == "daily_upgrade_1")
        .unwrap()
        .clone();
    assert_eq!(upgrade["completed"], true);
}
