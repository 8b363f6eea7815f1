//! The competitive loop through the real HTTP API on a hand-moved clock, with three local
//! nodes over loopback HTTP: season → entries → pairing → betting window → consensus battle →
//! payouts → rank recompute → season close, on SQLite and PostgreSQL.

use hero_testkit::{Backend, TestDb, on_both_databases};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{ADMIN, Game, HOUR, MINUTE};

on_both_databases!(a_season_runs_its_whole_cycle);

/// The start of the current hour.
pub fn hour_zero(game: &Game) -> i64 {
    (game_now(game) / HOUR) * HOUR
}

pub async fn total_gold(db: &TestDb) -> i64 {
    db.scalar_i64(
        "SELECT CAST(SUM(gold) AS BIGINT) FROM players WHERE id <> $1",
        "",
    )
    .await
}

pub async fn gold(game: &Game, token: &str) -> i64 {
    game.get("/api/v1/players/me", token).await["gold"]
        .as_i64()
        .unwrap()
}

/// Every balance equals the sum of its ledger rows (the house's too).
pub async fn assert_ledger_explains_gold(db: &TestDb) {
    let mismatches = db
        .scalar_i64(
            "SELECT COUNT(*) FROM players p WHERE p.gold <> (SELECT CAST(COALESCE(SUM(delta), 0) \
             AS BIGINT) FROM ledger l WHERE l.player_id = p.id AND l.resource = 'gold') \
             AND p.id <> $1",
            "",
        )
        .await;
    assert_eq!(mismatches, 0, "a gold balance differs from its ledger");
}

/// The season's entries, rank order, all pages.
async fn ladder_pages(game: &Game, token: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut path = format!("/api/v1/ladder?limit={limit}");
    loop {
        let page = game.get(&path, token).await;
        let items = page["items"].as_array().unwrap().clone();
        assert!(items.len() <= limit);
        out.extend(items);
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/ladder?limit={limit}&cursor={c}"),
            None => return out,
        }
    }
}

async fn a_season_runs_its_whole_cycle(backend: Backend) {
    let db = TestDb::new(backend).await;
    let game = Game::start(
        &db.url,
        3,
        &["--bet-max", "150", "--bet-max-per-battle", "150"],
    )
    .await;
    let h0 = hour_zero(&game);

    // Catch-up is bounded: of all the hours before the start only the last three are paired.
    let runs = game
        .until("the missed pairing slots to run", || async {
            let list = game
                .get("/api/v1/admin/tasks?task=pair-battles", ADMIN)
                .await;
            let runs = list["runs"]["items"].as_array().unwrap().clone();
            (runs.len() == 3 && runs.iter().all(|r| r["status"] == "done")).then_some(runs)
        })
        .await;
    let slots: Vec<i64> = runs
        .iter()
        .map(|r| r["slot_ms"].as_i64().unwrap())
        .collect();
    assert_eq!(slots, vec![h0, h0 - HOUR, h0 - 2 * HOUR]);
    assert_eq!(runs[0]["outcome"], "no active season");

    // An admin opens a season; only one is active at a time.
    let new_season = |name: &str| json!({"name": name, "starts_at_ms": h0, "ends_at_ms": h0 + 7 * 24 * HOUR, "prize_pool": 1000});
    let season = game
        .post("/api/v1/admin/seasons", ADMIN, new_season("Season 1"))
        .await;
    assert_eq!(season.status, 201, "{}", season.body);
    let season_id = season.body["id"].as_str().unwrap().to_owned();
    assert_eq!(season.body["status"], "draft");
    let other = game
        .post("/api/v1/admin/seasons", ADMIN, new_season("Season 2"))
        .await;
    let activate = |id: &str| format!("/api/v1/admin/seasons/{id}/activate");
    assert_eq!(
        game.post(&activate(&season_id), ADMIN, json!({}))
            .await
            .status,
        200
    );
    let second = game
        .post(
            &activate(other.body["id"].as_str().unwrap()),
            ADMIN,
            json!({}),
        )
        .await;
    assert_eq!(second.status, 409, "{}", second.body);
    let bad = game
        .post(
            "/api/v1/admin/seasons",
            ADMIN,
            json!({"name": "x", "starts_at_ms": 5, "ends_at_ms": 5}),
        )
        .await;
    assert_eq!(bad.status, 422);

    // Four fighters enter; three players will bet.
    let mut fighters = Vec::new();
    for i in 0..4 {
        let (token, player, hero) = game.fighter(&format!("ladder fighter {i}")).await;
        let entry = game
            .post(
                "/api/v1/ladder/entries",
                &token,
                json!({"character_id": hero}),
            )
            .await;
        assert_eq!(entry.status, 201, "{}", entry.body);
        assert_eq!(entry.body["rank_points"], 1000);
        fighters.push((token, player, hero));
    }
    let again = game
        .post(
            "/api/v1/ladder/entries",
            &fighters[0].0,
            json!({"character_id": fighters[0].2}),
        )
        .await;
    assert_eq!(again.status, 409);
    let bettors: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(game.guest().await);
        }
        v
    };
    let theirs = game
        .post(
            "/api/v1/ladder/entries",
            &bettors[0],
            json!({"character_id": fighters[1].2}),
        )
        .await;
    assert_eq!(theirs.status, 404);

    // The next hour's pairing schedules two battles an hour later.
    let h1 = h0 + HOUR;
    game.advance(h1 - game_now(&game));
    let scheduled = game
        .until("two battles to be scheduled", || async {
            let page = game
                .get("/api/v1/scheduled-battles?status=scheduled", &bettors[0])
                .await;
            let items = page["items"].as_array().unwrap().clone();
            (items.len() == 2).then_some(items)
        })
        .await;
    let battle = &scheduled[0];
    let start = h1 + HOUR;
    assert_eq!(battle["starts_at_ms"], start);
    assert_eq!(battle["betting_opens_at_ms"], start - 30 * MINUTE);
    assert_eq!(battle["betting_closes_at_ms"], start - 5 * MINUTE);
    assert_eq!(battle["betting"], "not_open");
    let mut in_battles: Vec<&str> = scheduled
        .iter()
        .flat_map(|b| {
            [
                b["red_player_id"].as_str().unwrap(),
                b["blue_player_id"].as_str().unwrap(),
            ]
        })
        .collect();
    in_battles.sort_unstable();
    in_battles.dedup();
    assert_eq!(in_battles.len(), 4, "every fighter fights once");
    let id = battle["id"].as_str().unwrap().to_owned();
    // Upgrading a fighter after the pairing changes nothing: the battle fights the snapshot.
    let upgrader = fighters
        .iter()
        .find(|f| f.1 == battle["red_player_id"].as_str().unwrap())
        .unwrap();
    let paired_strength = game
        .get(&format!("/api/v1/characters/{}", upgrader.2), &upgrader.0)
        .await["strength"]
        .as_i64()
        .unwrap();
    let upgraded = game
        .post(
            &format!("/api/v1/characters/{}/upgrade", upgrader.2),
            &upgrader.0,
            json!({}),
        )
        .await;
    assert!(upgraded.status < 300, "{}", upgraded.body);
    assert!(
        upgraded.body["strength"].as_i64().unwrap() > paired_strength,
        "{}",
        upgraded.body
    );
    let bets = format!("/api/v1/scheduled-battles/{id}/bets");
    let early = game
        .post(&bets, &bettors[0], json!({"side": "red", "amount": 100}))
        .await;
    assert_eq!(early.status, 409, "{}", early.body);
    assert!(
        early.body["detail"].as_str().unwrap().contains("opens"),
        "{}",
        early.body
    );

    // Betting opens 30 minutes before the start.
    game.advance(35 * MINUTE);
    let gold_before = total_gold(&db).await;
    let bet = |token: &str, side: &'static str, amount: i64, key: &str| {
        let (token, key, path) = (token.to_owned(), key.to_owned(), bets.clone());
        let game = &game;
        async move {
            game.send(
                Method::POST,
                &path,
                &token,
                Some(json!({"side": side, "amount": amount})),
                Some(&key),
            )
            .await
        }
    };
    let first = bet(&bettors[0], "red", 100, "b0-1").await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.body["gold_left"], 900);
    let replay = bet(&bettors[0], "red", 100, "b0-1").await;
    assert_eq!(
        (replay.status, &replay.body),
        (201, &first.body),
        "a retry replays"
    );
    assert_eq!(gold(&game, &bettors[0]).await, 900, "charged once");
    assert_eq!(bet(&bettors[1], "blue", 50, "b1-1").await.status, 201);
    assert_eq!(bet(&bettors[2], "red", 30, "b2-1").await.status, 201);
    // Refusals, each with its reason.
    let red_fighter = fighters
        .iter()
        .find(|f| f.1 == battle["red_player_id"].as_str().unwrap())
        .unwrap();
    assert_eq!(bet(&red_fighter.0, "blue", 10, "f").await.status, 403);
    assert_eq!(
        bet(&bettors[0], "blue", 10, "b0-2").await.status,
        409,
        "both sides"
    );
    assert_eq!(
        bet(&bettors[0], "red", 60, "b0-3").await.status,
        409,
        "per-battle limit"
    );
    for (body, what) in [
        (json!({"side": "red", "amount": 0}), "zero"),
        (json!({"side": "red", "amount": -5}), "negative"),
        (
            json!({"side": "red", "amount": 1_000_000_000_000i64}),
            "huge",
        ),
        (
            json!({"side": "red", "amount": 99999999999999999999999.0}),
            "not an integer",
        ),
        (json!({"side": "green", "amount": 5}), "wrong side"),
        (json!({"side": "red"}), "no amount"),
    ] {
        let a = game.post(&bets, &bettors[1], body).await;
        assert_eq!(a.status, 422, "{what}: {}", a.body);
    }
    let unknown = format!("/api/v1/scheduled-battles/{}/bets", uuid::Uuid::new_v4());
    assert_eq!(
        game.post(&unknown, &bettors[1], json!({"side": "red", "amount": 5}))
            .await
            .status,
        404
    );
    let malformed = game
        .post(
            "/api/v1/scheduled-battles/not-an-id/bets",
            &bettors[1],
            json!({"side": "red", "amount": 5}),
        )
        .await;
    assert_eq!(malformed.status, 404);
    let odds = game
        .get(&format!("/api/v1/scheduled-battles/{id}/odds"), &bettors[1])
        .await;
    assert_eq!(
        (odds["red_pool"].as_i64(), odds["blue_pool"].as_i64()),
        (Some(130), Some(50))
    );
    assert_eq!(
        (odds["red_bettors"].as_i64(), odds["blue_bettors"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(odds["betting"], "open");
    let red_odds = odds["red_payout_per_gold"].as_f64().unwrap();
    assert!((red_odds - 171.0 / 130.0).abs() < 1e-9, "{odds}");

    // Betting closes 5 minutes before the start.
    game.advance(21 * MINUTE);
    let late = bet(&bettors[1], "blue", 5, "b1-late").await;
    assert_eq!(late.status, 409);
    assert!(
        late.body["detail"].as_str().unwrap().contains("closed"),
        "{}",
        late.body
    );

    // At the start the battles run through consensus; the verdict pays the bets. A WebSocket
    // following the ladder sees both battles from their creation to their end.
    let mut ladder_socket = {
        use futures::SinkExt;
        let url = format!("{}/api/v1/ws", game.base.replacen("http://", "ws://", 1));
        let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let subscribe = r#"{"type":"subscribe","topic":"ladder"}"#;
        socket.send(subscribe.into()).await.unwrap();
        socket
    };
    game.advance(4 * MINUTE);
    let settled = game
        .until("the ladder battles to settle", || async {
            let page = game
                .get("/api/v1/scheduled-battles?status=settled", &bettors[0])
                .await;
            let items = page["items"].as_array().unwrap().clone();
            (items.len() == 2).then_some(items)
        })
        .await;
    let mine = settled.iter().find(|b| b["id"] == id.as_str()).unwrap();
    let mut followed: std::collections::HashMap<String, Vec<String>> = Default::default();
    while followed
        .values()
        .filter(|k| k.last().is_some_and(|e| e == "end"))
        .count()
        < 2
    {
        use futures::StreamExt;
        let message =
            tokio::time::timeout(std::time::Duration::from_secs(20), ladder_socket.next())
                .await
                .expect("ladder events")
                .unwrap()
                .unwrap();
        let tokio_tungstenite::tungstenite::Message::Text(text) = message else {
            continue; // pings
        };
        let message: Value = serde_json::from_str(text.as_str()).unwrap();
        if message["type"] == "event" {
            followed
                .entry(message["battle_id"].as_str().unwrap().to_owned())
                .or_default()
                .push(message["event"].as_str().unwrap().to_owned());
        }
    }
    for s in &settled {
        let kinds = &followed[s["battle_id"].as_str().unwrap()];
        assert_eq!(
            kinds.first().map(String::as_str),
            Some("created"),
            "{kinds:?}"
        );
        assert!(kinds.iter().any(|k| k == "verdict"), "{kinds:?}");
    }
    let finished = bet(&bettors[1], "blue", 5, "b1-finished").await;
    assert_eq!(finished.status, 409, "{}", finished.body);
    assert!(
        finished.body["detail"]
            .as_str()
            .unwrap()
            .contains("settled"),
        "{}",
        finished.body
    );
    assert!(mine["void_reason"].is_null(), "{mine}");
    let verdict = game
        .get(
            &format!("/api/v1/battles/{}", mine["battle_id"].as_str().unwrap()),
            &bettors[0],
        )
        .await;
    assert_eq!(verdict["settled_by"], "quorum", "{verdict}");
    let fought = verdict["fighters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == upgrader.2.as_str())
        .unwrap()["strength"]
        .as_i64()
        .unwrap();
    assert_eq!(fought, paired_strength, "fought as paired: {verdict}");
    let winner = mine["winner_side"].as_str().unwrap();
    // The payout, computed here independently: 180 in the pool, a 5% cut of 9.
    let (paid, house) = if winner == "red" {
        (
            vec![(0usize, 100 * 171 / 130), (2, 30 * 171 / 130)],
            180 - 100 * 171 / 130 - 30 * 171 / 130,
        )
    } else {
        (vec![(1usize, 171)], 9)
    };
    assert_eq!(mine["house_take"], house);
    let stakes = [100, 50, 30];
    for (i, token) in bettors.iter().enumerate() {
        let won = paid.iter().find(|(b, _)| *b == i).map_or(0, |(_, p)| *p);
        assert_eq!(
            gold(&game, token).await,
            1000 - stakes[i] + won,
            "bettor {i}"
        );
    }
    let house_gold = db
        .scalar_i64("SELECT gold FROM players WHERE id = $1", "house")
        .await;
    assert_eq!(house_gold, house);
    assert_eq!(
        total_gold(&db).await,
        gold_before,
        "betting moves gold, never makes it"
    );
    assert_ledger_explains_gold(&db).await;
    let my_bets = game.get("/api/v1/players/me/bets", &bettors[0]).await;
    assert_eq!(my_bets["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        my_bets["items"][0]["status"],
        if winner == "red" { "won" } else { "lost" }
    );

    // Rank points moved by Elo (K = 32; 16 between equals).
    let points: Vec<i64> = {
        let mut v = Vec::new();
        for f in &fighters {
            v.push(
                game.get("/api/v1/ladder/me", &f.0).await["rank_points"]
                    .as_i64()
                    .unwrap(),
            );
        }
        v
    };
    let mut sorted = points.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec![984, 984, 1016, 1016]);

    // Ranks are stored by the :30 recompute: until it runs they are the last ones stored.
    let stale = ladder_pages(&game, &bettors[0], 3).await;
    // (stored at :30 before the battles, when all had 1000 points: in player id order)
    let stale_ids: Vec<&str> = stale
        .iter()
        .map(|r| r["player_id"].as_str().unwrap())
        .collect();
    let mut by_id = stale_ids.clone();
    by_id.sort_unstable();
    assert_eq!(stale_ids, by_id);
    game.advance(30 * MINUTE);
    let recompute = "/api/v1/admin/tasks?task=update-ranks";
    game.until("ranks to be recomputed", || async {
        let runs = game.get(recompute, ADMIN).await;
        let latest = &runs["runs"]["items"][0];
        (latest["slot_ms"] == start + 30 * MINUTE && latest["status"] == "done").then_some(())
    })
    .await;
    let ranked = ladder_pages(&game, &bettors[0], 3).await;
    let ranks: Vec<i64> = ranked
        .iter()
        .map(|r| r["current_rank"].as_i64().unwrap())
        .collect();
    assert_eq!(ranks, vec![1, 2, 3, 4]);
    assert_eq!(ranked[0]["rank_points"], 1016);
    assert_eq!(ranked[3]["rank_points"], 984);
    assert_eq!(
        game.call(Method::GET, "/api/v1/ladder?season=nope", &bettors[0], None)
            .await
            .status,
        404
    );
    let unknown_season = format!("/api/v1/ladder?season={}", uuid::Uuid::new_v4());
    assert_eq!(
        game.call(Method::GET, &unknown_season, &bettors[0], None)
            .await
            .status,
        404
    );
    assert_eq!(
        game.call(Method::GET, "/api/v1/ladder/me", &bettors[0], None)
            .await
            .status,
        404
    );

    // Closing pays the prize table once: 500, 300, 200.
    let gold_of = |player: &str| {
        let p = player.to_owned();
        let f = fighters.iter().find(|f| f.1 == p).unwrap().0.clone();
        let game = &game;
        async move { gold(game, &f).await }
    };
    let podium: Vec<String> = ranked[..3]
        .iter()
        .map(|r| r["player_id"].as_str().unwrap().to_owned())
        .collect();
    let mut before = Vec::new();
    for p in &podium {
        before.push(gold_of(p).await);
    }
    let close = format!("/api/v1/admin/seasons/{season_id}/close");
    let closed = game.post(&close, ADMIN, json!({})).await;
    assert_eq!(closed.status, 200, "{}", closed.body);
    assert_eq!(closed.body["season"]["status"], "closed");
    let prizes: Vec<i64> = closed.body["prizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["gold"].as_i64().unwrap())
        .collect();
    assert_eq!(prizes, vec![500, 300, 200]);
    for (i, p) in podium.iter().enumerate() {
        assert_eq!(gold_of(p).await, before[i] + prizes[i]);
    }
    assert_eq!(
        game.post(&close, ADMIN, json!({})).await.status,
        409,
        "paid once"
    );
    let late_entry = game
        .post(
            "/api/v1/ladder/entries",
            &bettors[0],
            json!({"character_id": "x"}),
        )
        .await;
    assert_eq!(late_entry.status, 409);
    assert_ledger_explains_gold(&db).await;

    // Every slot ran once, with its outcome.
    let tasks = game.get("/api/v1/admin/tasks?limit=100", ADMIN).await;
    let names: Vec<&str> = tasks["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "pair-battles",
            "start-battles",
            "update-ranks",
            "close-seasons",
            "cleanup"
        ]
    );
    let runs = tasks["runs"]["items"].as_array().unwrap();
    assert!(
        runs.iter()
            .all(|r| r["status"] == "done" && r["attempts"] == 1),
        "{runs:?}"
    );
    let paired = runs
        .iter()
        .find(|r| r["task"] == "pair-battles" && r["slot_ms"] == h1)
        .unwrap();
    assert!(
        paired["outcome"]
            .as_str()
            .unwrap()
            .starts_with("scheduled 2 battles"),
        "{paired}"
    );
    assert_eq!(
        game.call(Method::GET, "/api/v1/admin/tasks?task=nope", ADMIN, None)
            .await
            .status,
        404
    );
    game.stop().await;
    db.remove().await;
}

pub fn game_now(game: &Game) -> i64 {
    use hero_aggregator::clock::Clock;
    game.clock.now_ms()
}
