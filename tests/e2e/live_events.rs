//! Live events, over real HTTP from the real binaries. On PostgreSQL the client talks to an
//! API-only replica (`--battle-concurrency 0`) while another replica settles the battle, so
//! every event crosses `LISTEN`/`NOTIFY`; on SQLite one process does both. An SSE stream and
//! a WebSocket each see every node's vote and the verdict; a stream resumes after its
//! `Last-Event-ID`; a WebSocket client that stops reading is disconnected, never buffered.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use hero_testkit::fixtures::pair;
use hero_testkit::{Backend, TestDb, on_both_databases};
use hero_tests::game::Player;
use hero_tests::process::ADMIN_TOKEN;
use hero_tests::rogue::{Behavior, TestNode};
use hero_tests::{Aggregator, AggregatorOptions, run_to_exit};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

on_both_databases!(
    another_replica_settles_and_both_streams_see_every_vote,
    a_player_follows_their_own_battles,
    a_websocket_client_that_stops_reading_is_dropped,
    a_revoked_admin_stops_getting_every_event,
);

/// Reads an SSE response to its `end` event: (event name, id, data) of each.
async fn read_sse(mut response: reqwest::Response) -> Vec<(String, u64, Value)> {
    let mut text = String::new();
    let mut events = Vec::new();
    let read = async {
        while let Some(chunk) = response.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let block: String = text.drain(..end + 2).collect();
                let (mut name, mut id, mut data) = (String::new(), 0, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().unwrap();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if name.is_empty() {
                    continue; // a keep-alive comment
                }
                let done = name == "end";
                events.push((name, id, serde_json::from_str(&data).unwrap()));
                if done {
                    return;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the stream reached its end");
    events
}

async fn ws_connect(agg: &Aggregator) -> Socket {
    let url = format!("{}/api/v1/ws", agg.url().replacen("http://", "ws://", 1));
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Sends each message as JSON text.
async fn send_all(socket: &mut Socket, messages: impl IntoIterator<Item = Value>) {
    for message in messages {
        socket
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
    }
}

/// No text message arrives within 2 s.
async fn assert_silent(socket: &mut Socket, what: &str) {
    let after = tokio::time::timeout(Duration::from_secs(2), socket.next()).await;
    if let Ok(Some(Ok(Message::Text(text)))) = after {
        panic!("{what}: {text}");
    }
}

async fn next_json<S>(socket: &mut S) -> Value
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("a message within 30 s")
            .expect("the socket is open")
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

async fn another_replica_settles_and_both_streams_see_every_vote(backend: Backend) {
    let db = TestDb::new(backend).await;
    let settler = Aggregator::start(&db, &AggregatorOptions::default());
    let api_only;
    let client_side = if backend == Backend::Postgres {
        api_only = Aggregator::start(
            &db,
            &AggregatorOptions {
                extra: vec!["--battle-concurrency".into(), "0".into()],
                ..AggregatorOptions::default()
            },
        );
        &api_only
    } else {
        &settler
    };
    // Slow enough that the streams are open before the votes arrive.
    let mut nodes = Vec::new();
    for i in 0..3 {
        nodes.push(
            TestNode::start(
                &settler.url(),
                &format!("live-{i}"),
                Behavior::Honest { delay_ms: 700 },
            )
            .await,
        );
    }
    settler.wait_online(3).await;
    client_side.wait_online(3).await;

    let mut socket = ws_connect(client_side).await;
    socket
        .send(Message::Text(
            json!({"type": "auth", "token": ADMIN_TOKEN})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    assert_eq!(next_json(&mut socket).await["as"], "admin");
    socket
        .send(Message::Text(
            json!({"type": "subscribe", "topic": "all"})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    assert_eq!(next_json(&mut socket).await["type"], "subscribed");

    let id = client_side.create_battle(&pair(), 7).await;
    let sse = reqwest::Client::new()
        .get(format!("{}/api/v1/battles/{id}/events", client_side.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    assert_eq!(
        sse.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let streamed = read_sse(sse).await;
    settler.settled(&id, 30).await;
    // The third vote may come after the verdict (two agreeing settle it).
    let battle = settler.with_votes(&id, 3, 30).await;
    assert_eq!(battle["settled_by"], "quorum", "{battle}");
    let nodes_voted: Vec<&str> = battle["votes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["node_id"].as_str().unwrap())
        .collect();
    assert_eq!(nodes_voted.len(), 3, "{battle}");

    // SSE: a snapshot first; every vote either in it or as an event; the verdict; the end.
    assert_eq!(streamed[0].0, "snapshot", "{streamed:?}");
    let mut seen: Vec<String> = streamed[0].2["votes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["node_id"].as_str().unwrap().to_owned())
        .collect();
    for (name, _, data) in &streamed {
        if name == "vote" {
            assert_eq!(data["valid"], true, "{data}");
            // Before the verdict a vote says who answered, never whom it named.
            if data["late"] == false {
                assert!(data["voted_winner_id"].is_null(), "{data}");
            }
            seen.push(data["node_id"].as_str().unwrap().to_owned());
        }
    }
    for node in &nodes_voted {
        assert!(
            seen.iter().any(|s| s == node),
            "vote of {node} not streamed: {streamed:?}"
        );
    }
    let verdict = &streamed
        .iter()
        .find(|e| e.0 == "verdict")
        .expect("a verdict")
        .2;
    assert_eq!(verdict["winner_id"], battle["winner_id"]);
    assert_eq!(verdict["settled_by"], "quorum");
    // Two agreeing votes of three settle it; the third arrives as a late vote before the end.
    let agreeing = verdict["votes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["agrees"] == true)
        .count();
    assert!(agreeing >= 2, "{verdict}");
    assert!(
        verdict["votes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["voted_winner_id"] == battle["winner_id"]),
        "{verdict}"
    );
    let ids: Vec<u64> = streamed.iter().map(|e| e.1).collect();
    assert!(
        ids.windows(2).all(|w| w[0] <= w[1]),
        "ids increase: {ids:?}"
    );

    // The WebSocket of the same replica saw the whole battle as events.
    let mut kinds = Vec::new();
    loop {
        let message = next_json(&mut socket).await;
        if message["battle_id"] != id.as_str() {
            continue;
        }
        let kind = message["event"].as_str().unwrap().to_owned();
        kinds.push(kind.clone());
        if kind == "end" {
            break;
        }
    }
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("created"),
        "{kinds:?}"
    );
    assert_eq!(count("node_selected"), 3, "{kinds:?}");
    assert_eq!(count("vote"), 3, "{kinds:?}");
    assert_eq!(count("verdict"), 1, "{kinds:?}");

    // Resuming after the first vote replays what followed it, up to the end.
    if let Some(first_vote) = streamed.iter().find(|e| e.0 == "vote") {
        let resumed = reqwest::Client::new()
            .get(format!("{}/api/v1/battles/{id}/events", client_side.url()))
            .header("Last-Event-ID", first_vote.1.to_string())
            .send()
            .await
            .unwrap();
        let again = read_sse(resumed).await;
        assert!(again.iter().all(|e| e.1 > first_vote.1), "{again:?}");
        assert_eq!(again.last().unwrap().0, "end");
        assert!(again.iter().any(|e| e.0 == "verdict"), "{again:?}");
    }
    // A settled battle: its snapshot, then the end.
    let late = reqwest::Client::new()
        .get(format!("{}/api/v1/battles/{id}/events", client_side.url()))
        .send()
        .await
        .unwrap();
    let late = read_sse(late).await;
    assert_eq!(
        late.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        ["snapshot", "end"]
    );
    assert_eq!(late[0].2["status"], "COMPLETED");
    // Unknown battles and bad messages get clear answers.
    let missing = reqwest::get(format!("{}/api/v1/battles/nope/events", client_side.url()))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    socket
        .send(Message::Text("{not json".into()))
        .await
        .unwrap();
    assert_eq!(next_json(&mut socket).await["type"], "error");
    socket
        .send(Message::Text(
            json!({"type": "subscribe", "topic": "mine"})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    let refused = next_json(&mut socket).await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("player access token"),
        "{refused}"
    );
    drop(nodes);
}

async fn a_websocket_client_that_stops_reading_is_dropped(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(
        &db,
        &AggregatorOptions {
            extra: vec!["--local-nodes".into(), "3".into()],
            ..AggregatorOptions::default()
        },
    );
    agg.wait_online(3).await;
    // A client with a tiny receive window, which reads nothing after subscribing.
    let address = agg.url().trim_start_matches("http://").to_owned();
    let tcp = tokio::net::TcpSocket::new_v4().unwrap();
    tcp.set_recv_buffer_size(4096).unwrap();
    let stream = tcp.connect(address.parse().unwrap()).await.unwrap();
    let (mut slow, _) =
        tokio_tungstenite::client_async(format!("ws://{address}/api/v1/ws"), stream)
            .await
            .unwrap();
    slow.send(Message::Text(
        json!({"type": "auth", "token": ADMIN_TOKEN})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    slow.send(Message::Text(
        json!({"type": "subscribe", "topic": "all"})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    assert_eq!(next_json(&mut slow).await["as"], "admin");
    assert_eq!(next_json(&mut slow).await["type"], "subscribed");

    // Thousands of events while the client reads nothing.
    let fighters = pair();
    let creates = (0..1500u64).map(|seed| {
        let (agg, fighters) = (&agg, &fighters);
        async move { agg.create_battle(fighters, seed).await }
    });
    let ids: Vec<String> = futures::stream::iter(creates)
        .buffer_unordered(16)
        .collect()
        .await;
    agg.settled(ids.last().unwrap(), 60).await;
    let dropped = hero_tests::eventually(30, "the slow client to be dropped", || async {
        let metrics = agg.metrics().await;
        metrics
            .lines()
            .find(|l| {
                l.starts_with("hero_live_events_dropped_total")
                    && (l.contains("slow_client") || l.contains("lagged"))
            })
            .map(str::to_owned)
    })
    .await;
    assert!(!dropped.ends_with(" 0"), "{dropped}");
    // What was already on the wire arrives, then the connection ends: it is not kept open.
    let drained = tokio::time::timeout(Duration::from_secs(30), async {
        let mut messages = 0usize;
        while let Some(Ok(message)) = slow.next().await {
            if let Message::Close(frame) = message {
                return (messages, frame.map(|f| u16::from(f.code)));
            }
            messages += 1;
        }
        (messages, None)
    })
    .await
    .expect("the server ended the slow connection");
    assert!(
        drained.0 < 9 * ids.len(),
        "{} messages for {} battles",
        drained.0,
        ids.len()
    );
    // The server is fine, and a new client is served.
    let health = agg.get("/api/health").await;
    assert_eq!(health["status"], "ok", "{health}");
    let mut fresh = ws_connect(&agg).await;
    fresh
        .send(Message::Text(
            json!({"type": "subscribe", "topic": "battle", "battle_id": ids[0]})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    assert_eq!(next_json(&mut fresh).await["type"], "subscribed");
    let snapshot = next_json(&mut fresh).await;
    assert_eq!(snapshot["event"], "snapshot");
    assert_eq!(snapshot["data"]["status"], "COMPLETED");
}

async fn a_player_follows_their_own_battles(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(
        &db,
        &AggregatorOptions {
            extra: vec!["--local-nodes".into(), "3".into()],
            ..AggregatorOptions::default()
        },
    );
    agg.wait_online(3).await;
    let me = Player::guest(&agg).await;
    let rival = Player::guest(&agg).await;
    let stranger = Player::guest(&agg).await;
    let hero = me.summon("a knight of live events").await;
    let foe = rival.summon("a monk of live events").await;
    stranger.summon("a stranger").await;

    let mut mine = ws_connect(&agg).await;
    let mut theirs = ws_connect(&agg).await;
    for (socket, player) in [(&mut mine, &me), (&mut theirs, &stranger)] {
        socket
            .send(Message::Text(
                json!({"type": "auth", "token": player.access_token})
                    .to_string()
                    .into(),
            ))
            .await
            .unwrap();
        assert_eq!(next_json(socket).await["player_id"], player.id.as_str());
        socket
            .send(Message::Text(
                json!({"type": "subscribe", "topic": "mine"})
                    .to_string()
                    .into(),
            ))
            .await
            .unwrap();
        assert_eq!(next_json(socket).await["type"], "subscribed");
    }
    let started = me
        .battle(hero["id"].as_str().unwrap(), foe["id"].as_str())
        .await;
    let id = started["battle_id"].as_str().unwrap();
    let mut events = Vec::new();
    loop {
        let message = next_json(&mut mine).await;
        assert_eq!(message["battle_id"], id, "{message}");
        let kind = message["event"].as_str().unwrap().to_owned();
        events.push((kind.clone(), message["data"].clone()));
        if kind == "end" {
            break;
        }
    }
    let kinds: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(kinds[0], "created", "{kinds:?}");
    assert!(kinds.contains(&"verdict"), "{kinds:?}");
    let rewards: Vec<&Value> = events
        .iter()
        .filter(|e| e.0 == "rewards")
        .map(|e| &e.1)
        .collect();
    let my_reward = rewards
        .iter()
        .find(|r| r["player_id"] == me.id.as_str())
        .expect("the attacker's rewards");
    assert!(my_reward["gold"].as_i64().unwrap() > 0, "{my_reward}");
    let gold = me.me().await["gold"].as_i64().unwrap();
    let ledger = me.get("/api/v1/players/me/ledger?limit=100").await.body;
    let credited: i64 = ledger["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reference"] == id && e["resource"] == "gold")
        .map(|e| e["delta"].as_i64().unwrap())
        .sum();
    assert_eq!(
        my_reward["gold"].as_i64().unwrap(),
        credited,
        "gold now {gold}"
    );
    // Someone else's battle is not the stranger's business.
    let nothing = tokio::time::timeout(Duration::from_millis(500), theirs.next()).await;
    assert!(nothing.is_err(), "the stranger was sent {nothing:?}");
}

/// `admin revoke` also reaches an admin's open WebSocket: within the token re-check it is told,
/// and `all` (every player's private events among them) stops.
async fn a_revoked_admin_stops_getting_every_event(backend: Backend) {
    let db = TestDb::new(backend).await;
    let admin = |args: &[&str]| {
        let mut all = vec!["admin"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--database-url", &db.url]);
        let out = run_to_exit("hero-aggregator", &all, &[("RUST_BACKTRACE", "0")], &[]);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let created = admin(&["create", "ops-eve"]);
    let token = created
        .lines()
        .find_map(|l| l.split("Bearer ...): ").nth(1))
        .expect("the token is printed")
        .trim()
        .to_owned();
    let agg = Aggregator::start(
        &db,
        &AggregatorOptions {
            extra: vec![
                "--local-nodes".into(),
                "3".into(),
                "--live-token-recheck-secs".into(),
                "1".into(),
            ],
            ..AggregatorOptions::default()
        },
    );
    agg.wait_online(3).await;
    let mut socket = ws_connect(&agg).await;
    send_all(
        &mut socket,
        [
            json!({"type": "auth", "token": token}),
            json!({"type": "subscribe", "topic": "all"}),
        ],
    )
    .await;
    assert_eq!(next_json(&mut socket).await["as"], "admin");
    assert_eq!(next_json(&mut socket).await["type"], "subscribed");
    let fighters = pair();
    let first = agg.create_battle(&fighters, 1).await;
    agg.settled(&first, 30).await;
    // Events of the battle arrive while the token is good.
    let heard = next_json(&mut socket).await;
    assert_eq!(heard["type"], "event", "{heard}");

    assert!(admin(&["revoke", "ops-eve"]).contains("revoked"));
    let told = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let message = next_json(&mut socket).await;
            if message["type"] == "error" {
                return message;
            }
        }
    })
    .await
    .expect("the revoked admin is told within the re-check");
    assert!(
        told["message"].as_str().unwrap_or("").contains("revoked"),
        "{told}"
    );
    // Nothing more comes: a battle created now is not heard.
    let second = agg.create_battle(&fighters, 2).await;
    agg.settled(&second, 30).await;
    assert_silent(&mut socket, "after the revocation").await;

    // An admin who authenticates again as a player does not keep `all` under the player's
    // token (which is re-checked as a player's, so revoking the admin would not reach it).
    let mut socket = ws_connect(&agg).await;
    let guest = Player::guest(&agg).await;
    send_all(
        &mut socket,
        [
            json!({"type": "auth", "token": ADMIN_TOKEN}),
            json!({"type": "subscribe", "topic": "all"}),
            json!({"type": "auth", "token": guest.access_token}),
        ],
    )
    .await;
    assert_eq!(next_json(&mut socket).await["as"], "admin");
    assert_eq!(next_json(&mut socket).await["type"], "subscribed");
    assert_eq!(next_json(&mut socket).await["as"], "player");
    let third = agg.create_battle(&fighters, 3).await;
    agg.settled(&third, 30).await;
    assert_silent(&mut socket, "`all` outlived the admin identity").await;
}
