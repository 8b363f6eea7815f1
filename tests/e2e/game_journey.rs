//! The whole player journey over HTTP against the real binaries: guest login, summons, a
//! battle settled by the nodes' consensus, rewards, quest progress and claims, the leaderboard,
//! the replay and the histories; and the OpenAPI document against the routes really served.

use base64::Engine as _;
use hero_testkit::{Backend, TestDb, on_both_databases};
use hero_tests::game::{Player, assert_ledger_balances, send};
use hero_tests::{Aggregator, AggregatorOptions, NodeProcess};
use serde_json::{Value, json};

on_both_databases!(player_journey, openapi_lists_every_served_route);

fn quest<'a>(board: &'a Value, id: &str) -> &'a Value {
    board["quests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["id"] == id)
        .unwrap_or_else(|| panic!("quest {id} missing from {board}"))
}

async fn player_journey(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let _nodes: Vec<NodeProcess> = (1..=3)
        .map(|i| NodeProcess::start(&agg.url(), &format!("node-{i}"), &[]))
        .collect();
    agg.wait_online(3).await;

    // Guest sign-up: the seed's starting resources.
    let alice = Player::guest(&agg).await;
    let bob = Player::guest(&agg).await;
    let me = alice.me().await;
    for (field, value) in [
        ("gold", 1000),
        ("prompt", 10),
        ("prompt_power", 5),
        ("exp_potion", 100),
        ("energy", 100),
        ("max_energy", 100),
    ] {
        assert_eq!(me[field], value, "{field} in {me}");
    }

    // Two summons for Alice, one for Bob; each costs one prompt.
    let a1 = alice.summon("a storm knight with a silver blade").await;
    let a2 = alice.summon("a quiet archer from the north").await;
    let b1 = bob.summon("a fire monk").await;
    for c in [&a1, &a2, &b1] {
        assert!((1..=5).contains(&c["rarity"].as_i64().unwrap()), "{c}");
        assert_eq!(c["text_source"], "templates");
        assert_eq!(c["level"], 1);
    }
    assert_eq!(alice.me().await["prompt"], 8);
    let listed = alice.get("/api/v1/characters").await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 2);

    // Alice fights without naming an opponent: the only other player's character is Bob's.
    let a1_id = a1["id"].as_str().unwrap();
    let b1_id = b1["id"].as_str().unwrap();
    let started = alice.battle(a1_id, None).await;
    assert_eq!(started["opponent"]["character_id"], b1_id);
    assert_eq!(started["energy_left"], 90);
    let battle_id = started["battle_id"].as_str().unwrap();

    // The nodes settle it by quorum.
    let battle = agg.settled(battle_id, 60).await;
    assert_eq!(battle["status"], "COMPLETED", "{battle}");
    assert_eq!(battle["settled_by"], "quorum");
    assert_eq!(battle["created_by"], alice.id.as_str());
    let winner = battle["winner_id"].as_str().unwrap().to_string();
    assert!(winner == a1_id || winner == b1_id);
    let alice_won = winner == a1_id;

    // Rewards go to the attacker: 50 gold + 20 exp_potion for a win, 10 + 5 for a loss. The
    // defender earns rating, never currency.
    let (alice_gold, alice_exp) = if alice_won { (1050, 120) } else { (1010, 105) };
    let (bob_gold, bob_exp) = (1000, 100);
    let me = alice.me().await;
    assert_eq!(
        (me["gold"].as_i64(), me["exp_potion"].as_i64()),
        (Some(alice_gold), Some(alice_exp)),
        "{me}"
    );
    assert_eq!(me["energy"], 90);
    assert_eq!(me["wins"], i64::from(alice_won));
    let bob_me = bob.me().await;
    assert_eq!(
        (bob_me["gold"].as_i64(), bob_me["exp_potion"].as_i64()),
        (Some(bob_gold), Some(bob_exp))
    );
    assert_eq!(bob_me["energy"], 100, "the defender pays nothing");
    assert_eq!(
        bob_me["wins"],
        i64::from(!alice_won),
        "but its record counts"
    );

    // Quests: the attacker's fight counts, both summons count.
    let board = alice.get("/api/v1/quests").await.body;
    assert_eq!(quest(&board, "daily_fight_3")["progress"], 1);
    assert_eq!(quest(&board, "daily_win_1")["completed"], alice_won);
    assert_eq!(quest(&board, "daily_summon_1")["completed"], true);
    assert!(board["resets_at_ms"].as_i64().unwrap() % 86_400_000 == 0);
    let bob_board = bob.get("/api/v1/quests").await.body;
    assert_eq!(quest(&bob_board, "daily_fight_3")["progress"], 0);
    let claimed = alice
        .post("/api/v1/quests/daily_summon_1/claim", json!({}))
        .await;
    assert_eq!(claimed.status, 200, "{:?}", claimed.body);
    assert_eq!(claimed.body["balance_after"], alice_exp + 30);
    assert_eq!(claimed.body["quest"]["claimed"], true);
    let again = alice
        .post("/api/v1/quests/daily_summon_1/claim", json!({}))
        .await;
    assert_eq!((again.status.as_u16(), again.code()), (409, "conflict"));
    let early = alice
        .post("/api/v1/quests/daily_fight_3/claim", json!({}))
        .await;
    assert_eq!(early.status, 409, "not complete yet: {:?}", early.body);
    let unknown = alice.post("/api/v1/quests/nope/claim", json!({})).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(alice.me().await["exp_potion"], alice_exp + 30);

    // Leaderboards: the winner first.
    let board = send(
        reqwest::Client::new().get(format!("{}/api/v1/leaderboard?kind=characters", agg.url())),
    )
    .await;
    assert_eq!(board.status, 200);
    let first = &board.body["items"][0];
    assert_eq!(
        (
            first["character_id"].as_str(),
            first["wins"].as_i64(),
            first["rank"].as_i64()
        ),
        (Some(winner.as_str()), Some(1), Some(1))
    );
    assert_eq!(first["win_rate_bp"], 10_000);
    let players = send(reqwest::Client::new().get(format!(
        "{}/api/v1/leaderboard?kind=players&limit=1",
        agg.url()
    )))
    .await;
    let winner_owner = if alice_won { &alice.id } else { &bob.id };
    assert_eq!(players.body["items"][0]["player_id"], winner_owner.as_str());
    let cursor = players.body["next_cursor"].as_str().expect("a second page");
    let page2 = send(reqwest::Client::new().get(format!(
        "{}/api/v1/leaderboard?kind=players&limit=1&cursor={cursor}",
        agg.url()
    )))
    .await;
    assert_eq!(page2.body["items"][0]["rank"], 2);
    assert_eq!(page2.body["items"][0]["wins"], 0);
    // A cursor carries its row's rank, sealed: one with the rank changed is refused, not
    // answered with the rank its author chose.
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .unwrap();
    let fields: Vec<String> = String::from_utf8(decoded)
        .unwrap()
        .split('|')
        .map(str::to_owned)
        .collect();
    let mut forged = fields.clone();
    forged[2] = "41".into();
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.join("|"));
    let refused = send(reqwest::Client::new().get(format!(
        "{}/api/v1/leaderboard?kind=players&limit=1&cursor={forged}",
        agg.url()
    )))
    .await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);

    // Replay: rounds in order, and the three votes.
    let with_votes = agg.with_votes(battle_id, 3, 15).await;
    assert_eq!(with_votes["votes"].as_array().unwrap().len(), 3);
    let replay = alice
        .get(&format!("/api/v1/battles/{battle_id}/replay"))
        .await
        .body;
    let rounds: Vec<i64> = replay["rounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["round"].as_i64().unwrap())
        .collect();
    assert!(
        !rounds.is_empty() && rounds.windows(2).all(|w| w[0] < w[1]),
        "{rounds:?}"
    );
    assert_eq!(replay["votes"].as_array().unwrap().len(), 3);
    assert_eq!(replay["winner_id"], winner.as_str());

    // Histories from both sides.
    let mine = alice.get("/api/v1/battles?mine=true").await.body;
    assert_eq!(mine["items"][0]["side"], "attacker");
    assert_eq!(
        mine["items"][0]["outcome"],
        if alice_won { "win" } else { "loss" }
    );
    let theirs = bob.get("/api/v1/battles?mine=true").await.body;
    assert_eq!(theirs["items"][0]["side"], "defender");
    assert_eq!(theirs["items"][0]["energy_spent"], 0);
    let by_char = alice
        .get(&format!("/api/v1/characters/{a1_id}/battles"))
        .await
        .body;
    assert_eq!(by_char["items"][0]["battle_id"], battle_id);
    let ch = alice.get(&format!("/api/v1/characters/{a1_id}")).await.body;
    assert_eq!(
        ch["wins"].as_i64().unwrap() + ch["losses"].as_i64().unwrap(),
        1
    );
    assert_ne!(ch["rating"], 1000, "rating moved");

    // The ledger, paged 3 at a time, explains every gold coin.
    let mut cursor: Option<String> = None;
    let mut gold = 0;
    let mut entries = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/players/me/ledger?limit=3&cursor={c}"),
            None => "/api/v1/players/me/ledger?limit=3".to_string(),
        };
        let page = alice.get(&path).await.body;
        for e in page["items"].as_array().unwrap() {
            entries += 1;
            if e["resource"] == "gold" {
                gold += e["delta"].as_i64().unwrap();
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(gold, alice_gold);
    // 5 signup + 2 summons + 1 battle + 2 rewards + 1 quest reward.
    assert_eq!(entries, 11);
    assert_ledger_balances(&db).await;
}

/// Every operation in the document is served (not the 404 fallback, not 405), and the
/// document lists the game, node and operations routes.
async fn openapi_lists_every_served_route(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let doc = agg.get("/api/openapi.json").await;
    let paths = doc["paths"].as_object().expect("paths");
    for expected in [
        "/api/nodes",
        "/api/v1/admin/battles",
        "/api/v1/battles/{id}",
        "/api/health",
        "/metrics",
        "/api/v1/battles",
        "/api/v1/auth/guest",
    ] {
        assert!(paths.contains_key(expected), "{expected} missing");
    }
    let client = reqwest::Client::new();
    let mut checked = 0;
    for (path, item) in paths {
        for method in ["get", "post", "patch", "delete", "put"] {
            if !item[method].is_object() {
                continue;
            }
            let url = format!(
                "{}{}",
                agg.url(),
                path.replace("{id}", "00000000-0000-0000-0000-000000000000")
            );
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let reply = send(client.request(m, url).json(&json!({}))).await;
            assert_ne!(reply.status, 405, "{method} {path}");
            let fallback =
                reply.status == 404 && reply.body["error"]["message"] == "no such endpoint";
            assert!(!fallback, "{method} {path} is documented but not served");
            assert!(
                reply.status.as_u16() < 500,
                "{method} {path}: {:?}",
                reply.body
            );
            checked += 1;
        }
    }
    assert!(checked >= 29, "only {checked} operations documented");
}
