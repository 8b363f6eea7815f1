//! Node trust end to end, with real processes: operators are accounts and hold one seat per
//! battle however many nodes they run; a node is its key (no URL takeover, no replay); what
//! nodes send cannot break a verdict; a colluding minority never decides; new nodes vote in
//! the shadow until they have agreed enough; admins see and steer nodes.

use hero_protocol::signing::VoteSigner;
use hero_testkit::fixtures::pair;
use hero_testkit::{Backend, TestDb, on_both_databases};
use hero_tests::enroll::{create_operator, now_ms, register, register_at};
use hero_tests::fighters::sim_winner;
use hero_tests::process::ADMIN_TOKEN;
use hero_tests::rogue::NodeOptions;
use hero_tests::{Aggregator, AggregatorOptions, Behavior, NodeProcess, TestNode};
use serde_json::{Value, json};

on_both_databases!(
    one_operator_never_holds_two_seats,
    url_takeover_is_refused_and_the_victim_keeps_voting,
    a_squatted_url_goes_back_to_the_node_serving_it,
    replayed_and_stale_registrations_are_refused,
    poisoned_votes_cannot_stop_an_honest_majority,
    a_colluding_minority_never_decides,
    new_nodes_vote_in_the_shadow_until_they_agree,
    admins_inspect_steer_and_revoke,
    unsigned_seed_nodes_only_behind_the_flag,
    an_unsigned_seed_node_votes_behind_the_flag,
    the_first_operator_closes_the_open_network,
);

fn node_by_name<'a>(nodes: &'a Value, name: &str) -> &'a Value {
    nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no node {name}: {nodes}"))
}

async fn admin(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn one_operator_never_holds_two_seats(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let sybil = create_operator(&agg.url(), "sybil", 10, 5).await;
    let honest_a = create_operator(&agg.url(), "honest-a", 1, 1).await;
    let honest_b = create_operator(&agg.url(), "honest-b", 1, 1).await;
    // Ten nodes on one token, each asking for weight 1000 (clamped to the operator's 5).
    let mut sybils = Vec::new();
    for i in 0..10 {
        let options = NodeOptions {
            token: Some(sybil.clone()),
            weight: Some(1000),
            ..NodeOptions::default()
        };
        sybils.push(
            TestNode::start_with(
                &agg.url(),
                &format!("sybil-{i}"),
                Behavior::FlippedWinner,
                options,
            )
            .await,
        );
    }
    let _a = NodeProcess::start(&agg.url(), "honest-a", &["--enrollment-token", &honest_a]);
    let _b = NodeProcess::start(&agg.url(), "honest-b", &["--enrollment-token", &honest_b]);
    agg.wait_online(12).await;
    check_paging(&agg).await;
    let nodes = agg.get("/api/nodes?limit=1000").await;
    assert_eq!(node_by_name(&nodes, "sybil-3")["weight"], 5, "{nodes}");
    assert_eq!(node_by_name(&nodes, "sybil-3")["operator"], "sybil");
    assert_eq!(node_by_name(&nodes, "honest-a")["operator"], "honest-a");
    // An eleventh node is over the operator's max_nodes; a body operator that disagrees
    // with the token is refused.
    let k = VoteSigner::generate().unwrap();
    let (status, body) = register(
        &agg.url(),
        Some(&sybil),
        json!({"name": "sybil-10", "url": "http://127.0.0.1:9"}),
        Some(&k),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = register(
        &agg.url(),
        Some(&honest_a),
        json!({"name": "liar", "url": "http://127.0.0.1:10", "operator": "honest-b"}),
        Some(&k),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let fighters = pair();
    let mut ids = Vec::new();
    for seed in 0..200 {
        ids.push(agg.create_battle(&fighters, seed).await);
    }
    for (seed, id) in ids.iter().enumerate() {
        let battle = agg.settled(id, 60).await;
        // The sybil's ten nodes lie together, yet hold one seat: the two honest nodes win.
        assert_eq!(battle["settled_by"], "quorum", "{battle}");
        assert_eq!(
            battle["winner_id"],
            sim_winner(id, &fighters, seed as u64),
            "{battle}"
        );
    }
    let doubled = db
        .scalar_i64(
            "SELECT COUNT(*) FROM (SELECT v.battle_id FROM battle_votes v \
             JOIN nodes n ON n.id = v.node_id WHERE n.operator = $1 \
             GROUP BY v.battle_id HAVING COUNT(*) > 1) AS t",
            "sybil",
        )
        .await;
    assert_eq!(doubled, 0, "an operator held two seats of a battle");
    let seated = db
        .scalar_i64(
            "SELECT COUNT(DISTINCT v.battle_id) FROM battle_votes v \
             JOIN nodes n ON n.id = v.node_id WHERE n.operator = $1",
            "sybil",
        )
        .await;
    assert_eq!(
        seated, 200,
        "k = 3 over three operators seats each in every battle"
    );
}

/// `GET /api/nodes` pages by `limit` and `cursor`, filters by `status`, refuses nonsense.
async fn check_paging(agg: &Aggregator) {
    let client = reqwest::Client::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut url = format!("{}/api/nodes?limit=5", agg.url());
    let mut pages = 0;
    loop {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let next = response
            .headers()
            .get("x-next-cursor")
            .map(|v| v.to_str().unwrap().to_string());
        let page: Value = response.json().await.unwrap();
        assert!(page.as_array().unwrap().len() <= 5);
        for n in page.as_array().unwrap() {
            assert!(
                seen.insert(n["id"].as_str().unwrap().to_string()),
                "repeated {n}"
            );
        }
        pages += 1;
        match next {
            Some(cursor) => url = format!("{}/api/nodes?limit=5&cursor={cursor}", agg.url()),
            None => break,
        }
    }
    assert_eq!((seen.len(), pages), (12, 3));
    let online = agg.get("/api/nodes?status=online&limit=1000").await;
    assert_eq!(online.as_array().unwrap().len(), 12);
    let offline = agg.get("/api/nodes?status=offline").await;
    assert!(offline.as_array().unwrap().is_empty());
    for (bad, status) in [
        ("limit=0", 422),
        ("status=sleeping", 422),
        ("cursor=bm9wZQ", 422),
        ("cursor=%00", 400),
    ] {
        let r = client
            .get(format!("{}/api/nodes?{bad}", agg.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{bad}");
    }
}

async fn url_takeover_is_refused_and_the_victim_keeps_voting(backend: Backend) {
    let db = TestDb::new(backend).await;
    let options = AggregatorOptions {
        max_replacements: 0,
        ..AggregatorOptions::default()
    };
    let agg = Aggregator::start(&db, &options);
    let victim = NodeProcess::start(&agg.url(), "victim", &[]);
    let _b = NodeProcess::start(&agg.url(), "honest-b", &[]);
    let _c = NodeProcess::start(&agg.url(), "honest-c", &[]);
    agg.wait_online(3).await;
    let nodes = agg.get("/api/nodes").await;
    let target = node_by_name(&nodes, "victim").clone();
    let url = target["url"].as_str().unwrap();
    // Another key, no key, weight 0 or a wrong api_key: all refused, nothing changes.
    let attacker = VoteSigner::generate().unwrap();
    for body in [
        json!({"name": "victim", "url": url, "weight": 0, "api_key": "wrong"}),
        json!({"name": "mine-now", "url": format!("{url}/")}),
    ] {
        let (status, answer) = register(&agg.url(), None, body.clone(), Some(&attacker)).await;
        assert_eq!(status, 409, "{answer}");
        // The aggregator asked the URL, which vouches for the victim's key, not this one.
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains("presents another key"), "{message}");
        let (status, answer) = register(&agg.url(), None, body, None).await;
        assert!(
            status == 409 || status == 422,
            "unsigned: {status} {answer}"
        );
    }
    let after = agg.get("/api/nodes").await;
    let still = node_by_name(&after, "victim");
    assert_eq!(still["id"], target["id"]);
    assert_eq!(still["status"], "online");
    let fighters = pair();
    let id = agg.create_battle(&fighters, 77).await;
    let battle = agg.settled(&id, 30).await;
    assert_eq!(battle["settled_by"], "quorum", "{battle}");
    let battle = agg.with_votes(&id, 3, 10).await;
    let vote = battle["votes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["node_name"] == "victim")
        .unwrap();
    assert_eq!(vote["is_valid"], true, "the victim still votes: {vote}");
    drop(victim);
}

/// A stranger registers a URL with their own key before the node that will serve it: when
/// that node registers, the URL's `/health` presents its key, so the URL is given to it and
/// the squatter leaves; the squatter cannot take it back.
async fn a_squatted_url_goes_back_to_the_node_serving_it(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let host = hero_tests::process::loopback_host();
    let port = std::net::TcpListener::bind((host, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://{host}:{port}");
    let squatter = VoteSigner::generate().unwrap();
    let squat = json!({"name": "squatter", "url": url});
    let (status, squatted) = register(&agg.url(), None, squat.clone(), Some(&squatter)).await;
    assert_eq!(status, 200, "nobody serves the URL yet: {squatted}");
    let nodes = agg.get("/api/nodes").await;
    assert_eq!(
        node_by_name(&nodes, "squatter")["status"],
        "online",
        "{nodes}"
    );
    // The real node starts there and registers (hero-node retries until it is registered).
    let _real = NodeProcess::start_listening(&agg.url(), "real", &format!("{host}:{port}"), &[]);
    let nodes = hero_tests::eventually(30, "the real node online", || async {
        let nodes = agg.get("/api/nodes").await;
        let online =
            nodes.as_array().unwrap().iter().any(|n| {
                n["name"] == "real" && n["status"] == "online" && n["url"] == url.as_str()
            });
        online.then_some(nodes)
    })
    .await;
    assert!(
        !nodes
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["name"] == "squatter" && n["status"] == "online"),
        "the squatter no longer counts: {nodes}"
    );
    let (status, detail) = admin(
        reqwest::Method::GET,
        format!(
            "{}/api/v1/admin/nodes/{}",
            agg.url(),
            squatted["node_id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["status"], "offline", "the squatter left: {detail}");
    // The squatter's next registration is refused: the URL serves another key.
    let (status, again) = register(&agg.url(), None, squat, Some(&squatter)).await;
    assert_eq!(status, 409, "{again}");
    let message = again["error"]["message"].as_str().unwrap();
    assert!(message.contains("presents another key"), "{message}");
    let metrics = agg.metrics().await;
    assert!(
        metrics.contains("hero_node_urls_reclaimed_total 1"),
        "{metrics}"
    );
}

async fn replayed_and_stale_registrations_are_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let k = VoteSigner::generate().unwrap();
    let body = json!({"name": "n", "url": "http://127.0.0.1:9"});
    let at = now_ms();
    let (status, first) = register_at(&agg.url(), None, body.clone(), Some(&k), Some(at)).await;
    assert_eq!(status, 200, "{first}");
    // The same signed registration again (a replay within the minute) gets no new token.
    let (status, replay) = register_at(&agg.url(), None, body.clone(), Some(&k), Some(at)).await;
    assert_eq!(status, 401, "{replay}");
    assert!(
        replay["error"]["message"]
            .as_str()
            .unwrap()
            .contains("replay")
    );
    let (status, stale) =
        register_at(&agg.url(), None, body.clone(), Some(&k), Some(at - 120_000)).await;
    assert_eq!(status, 401, "{stale}");
    // A signature over another body does not verify.
    let other = VoteSigner::generate().unwrap();
    let mut forged = body.clone();
    forged["public_key"] = k.public_key_hex().into();
    let (status, _) = register(&agg.url(), None, forged, Some(&other)).await;
    assert!(status == 401 || status == 409, "{status}");
    let (status, again) = register(&agg.url(), None, body, Some(&k)).await;
    assert_eq!(status, 200, "a fresh signature is fine: {again}");
    assert_eq!(again["node_id"], first["node_id"]);
}

async fn poisoned_votes_cannot_stop_an_honest_majority(backend: Backend) {
    let db = TestDb::new(backend).await;
    let options = AggregatorOptions {
        quorum_size: 5,
        max_replacements: 0,
        ..AggregatorOptions::default()
    };
    let agg = Aggregator::start(&db, &options);
    let _a = NodeProcess::start(&agg.url(), "honest-a", &[]);
    let _b = NodeProcess::start(&agg.url(), "honest-b", &[]);
    let _error = TestNode::start(&agg.url(), "nul-error", Behavior::NulError).await;
    let _winner = TestNode::start(&agg.url(), "nul-winner", Behavior::NulWinner).await;
    let _text = TestNode::start(&agg.url(), "nul-text", Behavior::NulText).await;
    agg.wait_online(5).await;
    let fighters = pair();
    // Three battles: after three failures in a row the breaker takes the two failing
    // poisoners out of selection for a while.
    for seed in 0..3 {
        let battle = agg.quorum_battle(&fighters, seed).await;
        let id = battle["id"].as_str().unwrap();
        let battle = agg.with_votes(id, 5, 15).await;
        let text = serde_json::to_string(&battle).unwrap();
        assert!(!text.contains("\\u0000"), "a NUL was published: {text}");
        assert!(!text.contains("\\u001b"), "an escape code was published");
        let votes = battle["votes"].as_array().unwrap();
        let vote = |name: &str| votes.iter().find(|v| v["node_name"] == name).unwrap();
        let error = vote("nul-error")["error"].as_str().unwrap();
        assert!(
            error.chars().count() <= 512,
            "error kept whole: {}",
            error.len()
        );
        assert_eq!(vote("nul-winner")["voted_winner_id"], "(not a fighter)");
        assert_eq!(vote("nul-winner")["is_valid"], false);
        // NUL bytes stripped, the text agrees with the honest nodes.
        assert_eq!(vote("nul-text")["agrees"], true, "{battle}");
    }
}

async fn a_colluding_minority_never_decides(backend: Backend) {
    let db = TestDb::new(backend).await;
    let options = AggregatorOptions {
        quorum_size: 5,
        max_replacements: 0,
        ..AggregatorOptions::default()
    };
    let agg = Aggregator::start(&db, &options);
    let _honest: Vec<_> = (1..=3)
        .map(|i| NodeProcess::start(&agg.url(), &format!("honest-{i}"), &[]))
        .collect();
    let _x = TestNode::start(&agg.url(), "colluder-x", Behavior::FlippedWinner).await;
    let _y = TestNode::start(&agg.url(), "colluder-y", Behavior::FlippedWinner).await;
    agg.wait_online(5).await;
    let fighters = pair();
    for seed in 0..20 {
        agg.quorum_battle(&fighters, seed).await;
    }
    // The honest nodes lost nothing for disagreeing with the colluders.
    hero_tests::eventually(10, "counters flushed", || async {
        let nodes = agg.get("/api/nodes").await;
        let honest = node_by_name(&nodes, "honest-1");
        let colluder = node_by_name(&nodes, "colluder-x");
        (honest["reputation"] == 1.0
            && honest["agreement_rate"] == 1.0
            && colluder["agreement_rate"].as_f64().unwrap() < 0.5)
            .then_some(())
    })
    .await;
}

async fn new_nodes_vote_in_the_shadow_until_they_agree(backend: Backend) {
    let db = TestDb::new(backend).await;
    let options = AggregatorOptions {
        probation_votes: 2,
        extra: vec!["--shadow-seats".into(), "3".into()],
        ..AggregatorOptions::default()
    };
    let agg = Aggregator::start(&db, &options);
    let _nodes: Vec<_> = (1..=3)
        .map(|i| NodeProcess::start(&agg.url(), &format!("new-{i}"), &[]))
        .collect();
    agg.wait_online(3).await;
    let nodes = agg.get("/api/nodes").await;
    assert!(
        nodes
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["probation"] == true),
        "{nodes}"
    );
    let fighters = pair();
    // On probation nobody counts: the battle falls back, the shadow votes are recorded.
    let id = agg.create_battle(&fighters, 1).await;
    let battle = agg.settled(&id, 30).await;
    assert_eq!(battle["settled_by"], "fallback", "{battle}");
    let battle = agg.with_votes(&id, 3, 15).await;
    for vote in battle["votes"].as_array().unwrap() {
        assert_eq!(vote["role"], "shadow", "{vote}");
        assert_eq!(vote["agrees"], true, "{vote}");
    }
    let id = agg.create_battle(&fighters, 2).await;
    agg.with_votes(&id, 3, 15).await;
    // Two agreed verdicts each: probation is over, and the next battle settles by quorum.
    hero_tests::eventually(15, "probation to end", || async {
        let nodes = agg.get("/api/nodes").await;
        nodes
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["probation"] == false)
            .then_some(())
    })
    .await;
    let id = agg.create_battle(&fighters, 3).await;
    let battle = agg.settled(&id, 30).await;
    assert_eq!(battle["settled_by"], "quorum", "{battle}");
}

async fn admins_inspect_steer_and_revoke(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let tokens: Vec<String> = futures_tokens(&agg).await;
    let _nodes: Vec<_> = (0..3)
        .map(|i| {
            NodeProcess::start(
                &agg.url(),
                &format!("op-{i}-node"),
                &["--enrollment-token", &tokens[i]],
            )
        })
        .collect();
    agg.wait_online(3).await;
    let fighters = pair();
    let id = agg.create_battle(&fighters, 5).await;
    agg.with_votes(&id, 3, 30).await;
    let nodes = agg.get("/api/nodes").await;
    let node_id = node_by_name(&nodes, "op-0-node")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let base = format!("{}/api/v1/admin/nodes/{node_id}", agg.url());
    let (status, details) = admin(reqwest::Method::GET, base.clone(), None).await;
    assert_eq!(status, 200, "{details}");
    assert_eq!(details["recent_votes"][0]["battle_id"], id.as_str());
    assert!(details["public_key"].as_str().unwrap().len() == 64);
    // Without the admin token: refused.
    let anonymous = reqwest::get(&base).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let (status, patched) = admin(
        reqwest::Method::PATCH,
        base.clone(),
        Some(json!({"weight": 7, "maintenance": true})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["weight"], 7);
    assert_eq!(patched["status"], "maintenance");
    let (status, _) = admin(
        reqwest::Method::PATCH,
        base.clone(),
        Some(json!({"weight": 5000})),
    )
    .await;
    assert_eq!(status, 422);
    // In maintenance the node is out of selection: the other two vote.
    let id = agg.create_battle(&fighters, 6).await;
    let battle = agg.with_votes(&id, 2, 30).await;
    assert!(
        battle["votes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["node_id"] != node_id.as_str()),
        "{battle}"
    );
    // Revoking an operator takes its nodes out and its token stops working.
    let (status, revoked) = admin(
        reqwest::Method::DELETE,
        format!("{}/api/v1/admin/operators/op-1", agg.url()),
        None,
    )
    .await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked["nodes_removed"], 1);
    for bad in ["nobody", "%00", "a%0Ab"] {
        let (status, _) = admin(
            reqwest::Method::DELETE,
            format!("{}/api/v1/admin/operators/{bad}", agg.url()),
            None,
        )
        .await;
        assert_eq!(status, 404, "{bad}");
    }
    let (status, _) = admin(
        reqwest::Method::GET,
        format!("{}/api/v1/admin/nodes/%00", agg.url()),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = register(
        &agg.url(),
        Some(&tokens[1]),
        json!({"name": "again", "url": "http://127.0.0.1:9"}),
        Some(&VoteSigner::generate().unwrap()),
    )
    .await;
    assert_eq!(status, 401);
    let metrics = agg.metrics().await;
    assert!(
        metrics.contains("hero_admin_actions_total{action=\"operator_revoked\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("hero_admin_actions_total{action=\"node_maintenance_set\"} 1"));
}

async fn futures_tokens(agg: &Aggregator) -> Vec<String> {
    let mut tokens = Vec::new();
    for i in 0..3 {
        tokens.push(create_operator(&agg.url(), &format!("op-{i}"), 2, 10).await);
    }
    tokens
}

async fn unsigned_seed_nodes_only_behind_the_flag(backend: Backend) {
    let db = TestDb::new(backend).await;
    let strict = Aggregator::start(&db, &AggregatorOptions::default());
    let seed_style = json!({"name": "seed", "url": "http://127.0.0.1:9", "api_key": "k",
        "weight": 1, "max_concurrent_requests": 5});
    let (status, body) = register(&strict.url(), None, seed_style.clone(), None).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--allow-unsigned-nodes")
    );
    // A key of small order (here the identity point) could never sign a vote that verifies:
    // refused with a reason rather than registered.
    let weak = json!({"name": "weak", "url": "http://127.0.0.1:9", "weight": 1,
        "max_concurrent_requests": 5, "public_key": format!("01{}", "00".repeat(31))});
    let (status, body) = register(&strict.url(), None, weak, None).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("small order"),
        "{body}"
    );
    drop(strict);
    let options = AggregatorOptions {
        extra: vec!["--allow-unsigned-nodes".into()],
        ..AggregatorOptions::default()
    };
    let agg = Aggregator::start(&db, &options);
    let (status, reg) = register(&agg.url(), None, seed_style, None).await;
    assert_eq!(status, 200, "{reg}");
    // The seed's node heartbeats without a token.
    let response = reqwest::Client::new()
        .post(format!("{}/api/nodes/heartbeat", agg.url()))
        .json(&json!({"node_id": reg["node_id"], "current_requests": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let nodes = agg.get("/api/nodes").await;
    assert_eq!(node_by_name(&nodes, "seed")["signed"], false);
    assert_eq!(node_by_name(&nodes, "seed")["status"], "online");
    // A signed node's URL is never replaced by an unsigned registration.
    let k = VoteSigner::generate().unwrap();
    let keyed = json!({"name": "keyed", "url": "http://127.0.0.1:11"});
    assert_eq!(
        register(&agg.url(), None, keyed.clone(), Some(&k)).await.0,
        200
    );
    let (status, _) = register(&agg.url(), None, keyed, None).await;
    assert_eq!(status, 409);
    // The seed's node may start signing: the same node (id, history) with a key from now on.
    let seed_key = VoteSigner::generate().unwrap();
    let signed_seed = json!({"name": "seed", "url": "http://127.0.0.1:9", "api_key": "k"});
    let (status, upgraded) = register(&agg.url(), None, signed_seed, Some(&seed_key)).await;
    assert_eq!(status, 200, "{upgraded}");
    assert_eq!(upgraded["node_id"], reg["node_id"]);
}

async fn an_unsigned_seed_node_votes_behind_the_flag(backend: Backend) {
    let db = TestDb::new(backend).await;
    let options = AggregatorOptions {
        max_replacements: 0,
        extra: vec!["--allow-unsigned-nodes".into()],
        ..AggregatorOptions::default()
    };
    let agg = Aggregator::start(&db, &options);
    let _a = NodeProcess::start(&agg.url(), "signed-a", &[]);
    let _b = NodeProcess::start(&agg.url(), "signed-b", &[]);
    let seed = NodeOptions {
        unsigned: true,
        ..NodeOptions::default()
    };
    let _seed = TestNode::start_with(
        &agg.url(),
        "seed-style",
        Behavior::Honest { delay_ms: 0 },
        seed,
    )
    .await;
    agg.wait_online(3).await;
    assert_eq!(
        node_by_name(&agg.get("/api/nodes").await, "seed-style")["signed"],
        false
    );
    let battle = agg.quorum_battle(&pair(), 42).await;
    let battle = agg.with_votes(battle["id"].as_str().unwrap(), 3, 10).await;
    let vote = battle["votes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["node_name"] == "seed-style")
        .unwrap();
    assert_eq!(vote["is_valid"], true, "{vote}");
    assert_eq!(vote["agrees"], true, "{vote}");
}

async fn the_first_operator_closes_the_open_network(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let k = VoteSigner::generate().unwrap();
    let body = json!({"name": "early", "url": "http://127.0.0.1:9", "weight": 1});
    let (status, first) = register(&agg.url(), None, body.clone(), Some(&k)).await;
    assert_eq!(status, 200, "{first}");
    let token = create_operator(&agg.url(), "acme", 3, 2).await;
    // The node of the open network is out; without a token it cannot come back.
    let nodes = agg.get("/api/nodes").await;
    assert_eq!(
        node_by_name(&nodes, "early")["status"],
        "offline",
        "{nodes}"
    );
    let (status, _) = register(&agg.url(), None, body.clone(), Some(&k)).await;
    assert_eq!(status, 401);
    // With an operator's token and its own key it is the same node, now the operator's.
    let (status, again) = register(&agg.url(), Some(&token), body, Some(&k)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["node_id"], first["node_id"]);
    let nodes = agg.get("/api/nodes").await;
    assert_eq!(node_by_name(&nodes, "early")["operator"], "acme");
    assert_eq!(node_by_name(&nodes, "early")["status"], "online");
}
