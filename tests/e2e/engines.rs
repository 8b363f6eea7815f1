//! LLM engines end to end: real `hero-node` processes on the Sim, Gemini and OpenAI-compatible
//! engines (the LLMs replaced by local servers speaking their wire formats) settle battles
//! with the real `hero-aggregator`; failing LLMs lose their votes; the aggregator's own
//! Gemini fallback settles battles and falls through to Sim; bad settings stop a node.

use hero_testkit::fixtures::pair;
use hero_testkit::llm::gemini::{KEY as GEMINI_KEY, MODEL as GEMINI_MODEL};
use hero_testkit::llm::openai::{KEY as OPENAI_KEY, MODEL as OPENAI_MODEL};
use hero_testkit::{Backend, FakeLlm, LlmBehavior, TestDb, on_both_databases};
use hero_tests::fighters::{agree_with_sim, sim_winner};
use hero_tests::{Aggregator, AggregatorOptions, NodeProcess, run_to_exit};
use serde_json::Value;

on_both_databases!(
    three_engines_settle_a_battle_by_quorum,
    failing_llm_nodes_lose_their_votes_and_the_battle_falls_back,
    aggregator_falls_back_to_gemini_when_a_key_is_configured,
    aggregator_falls_back_to_sim_when_gemini_fails,
    summoning_writes_character_text_with_gemini,
    summoning_falls_back_to_templates_when_gemini_fails,
);

/// A Sim node, a Gemini node and an OpenAI-compatible node, each its own operator.
fn start_mixed_network(agg: &Aggregator, gemini: &FakeLlm, openai: &FakeLlm) -> Vec<NodeProcess> {
    let llm = ["--llm-timeout-secs", "2", "--llm-max-retries", "1"];
    let mut gemini_args = vec![
        "--engine",
        "gemini",
        "--gemini-api-key",
        GEMINI_KEY,
        "--gemini-base-url",
        gemini.base_url.as_str(),
    ];
    gemini_args.extend(llm);
    let mut openai_args = vec![
        "--engine",
        "openai",
        "--openai-base-url",
        openai.base_url.as_str(),
        "--openai-model",
        OPENAI_MODEL,
        "--openai-api-key",
        OPENAI_KEY,
    ];
    openai_args.extend(llm);
    vec![
        NodeProcess::start(&agg.url(), "sim-node", &["--engine", "sim"]),
        NodeProcess::start(&agg.url(), "gemini-node", &gemini_args),
        NodeProcess::start(&agg.url(), "openai-node", &openai_args),
    ]
}

/// The vote of the node called `name`.
fn vote_of<'a>(battle: &'a Value, name: &str) -> &'a Value {
    battle["votes"]
        .as_array()
        .and_then(|votes| votes.iter().find(|v| v["node_name"] == name))
        .unwrap_or_else(|| panic!("no vote from {name}: {battle}"))
}

async fn three_engines_settle_a_battle_by_quorum(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (fighters, seed) = (pair(), 4242);
    let gemini = FakeLlm::gemini(agree_with_sim(&fighters, seed)).await;
    let openai = FakeLlm::openai(agree_with_sim(&fighters, seed)).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let nodes = start_mixed_network(&agg, &gemini, &openai);
    agg.wait_online(3).await;

    // Each node tells the aggregator, and anyone asking, which engine and model it runs.
    let listed = agg.get("/api/nodes").await;
    let backend_of = |name: &str| {
        listed
            .as_array()
            .and_then(|nodes| nodes.iter().find(|n| n["name"] == name))
            .map(|n| n["backend"].clone())
            .unwrap_or_else(|| panic!("{name} not listed: {listed}"))
    };
    assert_eq!(backend_of("sim-node"), "sim");
    assert_eq!(backend_of("gemini-node"), "gemini");
    assert_eq!(backend_of("openai-node"), "openai");
    let model_of = |name: &str| {
        listed
            .as_array()
            .and_then(|nodes| nodes.iter().find(|n| n["name"] == name))
            .map(|n| n["model"].clone())
            .unwrap_or_else(|| panic!("{name} not listed: {listed}"))
    };
    assert_eq!(model_of("sim-node"), Value::Null);
    assert_eq!(model_of("gemini-node"), GEMINI_MODEL);
    assert_eq!(model_of("openai-node"), OPENAI_MODEL);
    let health = |i: usize| {
        let url = format!("{}/health", nodes[i].process.url());
        async move {
            reqwest::get(url)
                .await
                .expect("GET /health")
                .json::<Value>()
                .await
                .expect("health json")
        }
    };
    let (sim, gem, oai) = (health(0).await, health(1).await, health(2).await);
    assert_eq!(
        (sim["backend"].as_str(), &sim["model"]),
        (Some("sim"), &Value::Null)
    );
    assert_eq!(
        (gem["backend"].as_str(), gem["model"].as_str()),
        (Some("gemini"), Some(GEMINI_MODEL))
    );
    assert_eq!(
        (oai["backend"].as_str(), oai["model"].as_str()),
        (Some("openai"), Some(OPENAI_MODEL))
    );

    let id = agg.create_battle(&fighters, seed).await;
    let battle = agg.settled(&id, 30).await;
    assert_eq!(battle["status"], "COMPLETED", "{battle}");
    assert_eq!(battle["settled_by"], "quorum", "{battle}");
    assert_eq!(battle["winner_id"], sim_winner(&id, &fighters, seed));
    let battle = agg.with_votes(&id, 3, 10).await;
    for name in ["sim-node", "gemini-node", "openai-node"] {
        let vote = vote_of(&battle, name);
        assert_eq!(vote["is_valid"], true, "{vote}");
        assert_eq!(vote["agrees"], true, "{vote}");
        assert_eq!(vote["voted_winner_id"], battle["winner_id"], "{vote}");
    }

    // The operator view sums agreement per backend and model.
    let expected = serde_json::json!([
        {"backend": "gemini", "model": GEMINI_MODEL, "nodes": 1, "online": 1,
         "valid_votes": 1, "agreed_votes": 1, "agreement_rate": 1.0},
        {"backend": "openai", "model": OPENAI_MODEL, "nodes": 1, "online": 1,
         "valid_votes": 1, "agreed_votes": 1, "agreement_rate": 1.0},
        {"backend": "sim", "model": null, "nodes": 1, "online": 1,
         "valid_votes": 1, "agreed_votes": 1, "agreement_rate": 1.0},
    ]);
    hero_tests::eventually(10, "agreement per backend and model", || async {
        let agreement = agg.get("/api/nodes/agreement").await;
        (agreement == expected).then_some(())
    })
    .await;

    // The LLM servers were asked the way their APIs expect, with the battle's seed.
    let calls = gemini.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        calls[0].path,
        format!("/v1beta/models/{GEMINI_MODEL}:generateContent")
    );
    assert_eq!(calls[0].headers["x-goog-api-key"], GEMINI_KEY);
    let config = &calls[0].body["generationConfig"];
    assert_eq!(config["responseMimeType"], "application/json");
    assert_eq!(config["seed"], seed);
    let prompt = calls[0].body["contents"][0]["parts"][0]["text"]
        .as_str()
        .expect("the prompt text");
    assert!(prompt.contains(&format!("battle_id: \"{id}\"")), "{prompt}");
    let calls = openai.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        calls[0].headers["authorization"],
        format!("Bearer {OPENAI_KEY}")
    );
    assert_eq!(calls[0].body["model"], OPENAI_MODEL);
    assert_eq!(calls[0].body["seed"], seed);
    assert_eq!(calls[0].body["response_format"]["type"], "json_schema");
}

async fn failing_llm_nodes_lose_their_votes_and_the_battle_falls_back(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (fighters, seed) = (pair(), 77);
    let gemini = FakeLlm::gemini(LlmBehavior::Blocked).await;
    let openai = FakeLlm::openai(LlmBehavior::ServerError).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let _nodes = start_mixed_network(&agg, &gemini, &openai);
    agg.wait_online(3).await;

    let id = agg.create_battle(&fighters, seed).await;
    let battle = agg.settled(&id, 30).await;
    assert_eq!(battle["status"], "COMPLETED", "{battle}");
    assert_eq!(battle["settled_by"], "fallback", "{battle}");
    assert_eq!(battle["fallback_engine"], "sim", "{battle}");
    assert_eq!(battle["winner_id"], sim_winner(&id, &fighters, seed));

    let battle = agg.with_votes(&id, 3, 10).await;
    assert_eq!(vote_of(&battle, "sim-node")["is_valid"], true, "{battle}");
    let blocked = vote_of(&battle, "gemini-node");
    assert_eq!(blocked["is_valid"], false, "{blocked}");
    assert_eq!(blocked["voted_winner_id"], Value::Null, "{blocked}");
    let reason = blocked["error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("502") && reason.contains("blocked the prompt (SAFETY)"),
        "{reason}"
    );
    let failed = vote_of(&battle, "openai-node");
    assert_eq!(failed["is_valid"], false, "{failed}");
    let reason = failed["error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("answered 500") && reason.contains("gave up after 2 attempts"),
        "{reason}"
    );
    // A blocked prompt is final; a 500 is retried once (--llm-max-retries 1).
    assert_eq!(gemini.calls().len(), 1);
    assert_eq!(openai.calls().len(), 2);
    let stored = db
        .scalar_i64(
            "SELECT COUNT(*) FROM battle_votes WHERE battle_id = $1 AND is_valid = 0 \
             AND error IS NOT NULL",
            &id,
        )
        .await;
    assert_eq!(stored, 2);
}

/// An aggregator with no nodes whose fallback is the Gemini fake.
fn aggregator_with_gemini(db: &TestDb, gemini: &FakeLlm) -> Aggregator {
    let extra = [
        "--gemini-api-key",
        GEMINI_KEY,
        "--gemini-base-url",
        gemini.base_url.as_str(),
        "--llm-timeout-secs",
        "4",
    ];
    Aggregator::start(
        db,
        &AggregatorOptions {
            lease_ms: 10_000,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            ..AggregatorOptions::default()
        },
    )
}

async fn aggregator_falls_back_to_gemini_when_a_key_is_configured(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (fighters, seed) = (pair(), 31337);
    let gemini = FakeLlm::gemini(agree_with_sim(&fighters, seed)).await;
    let agg = aggregator_with_gemini(&db, &gemini);

    let id = agg.create_battle(&fighters, seed).await;
    let battle = agg.settled(&id, 30).await;
    assert_eq!(battle["status"], "COMPLETED", "{battle}");
    assert_eq!(battle["settled_by"], "fallback", "{battle}");
    assert_eq!(battle["fallback_engine"], "gemini", "{battle}");
    assert_eq!(battle["winner_id"], sim_winner(&id, &fighters, seed));
    assert!(!battle["battle_log"].as_array().expect("a log").is_empty());
    let calls = gemini.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].headers["x-goog-api-key"], GEMINI_KEY);
    let stored = db
        .scalar_i64(
            "SELECT COUNT(*) FROM battles WHERE id = $1 AND fallback_engine = 'gemini'",
            &id,
        )
        .await;
    assert_eq!(stored, 1);
    let log = std::fs::read_to_string(&agg.process.log).expect("the aggregator log");
    assert!(!log.contains(GEMINI_KEY), "the key leaked into the log");
}

async fn aggregator_falls_back_to_sim_when_gemini_fails(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (fighters, seed) = (pair(), 5150);
    let gemini = FakeLlm::gemini(LlmBehavior::ServerError).await;
    let agg = aggregator_with_gemini(&db, &gemini);

    let id = agg.create_battle(&fighters, seed).await;
    let battle = agg.settled(&id, 30).await;
    assert_eq!(battle["status"], "COMPLETED", "{battle}");
    assert_eq!(battle["settled_by"], "fallback", "{battle}");
    assert_eq!(battle["fallback_engine"], "sim", "{battle}");
    assert_eq!(battle["winner_id"], sim_winner(&id, &fighters, seed));
    // Gemini was tried (with its retries) before Sim settled it, and the failure is logged.
    assert_eq!(gemini.calls().len(), 3);
    hero_tests::eventually(10, "the Gemini failure in the log", || async {
        let log = std::fs::read_to_string(&agg.process.log).unwrap_or_default();
        (log.contains("gemini fallback failed") && log.contains("500")).then_some(())
    })
    .await;
}

/// Variables that would hand a node a key behind the test's back.
const KEY_VARS: [&str; 3] = [
    "GEMINI_API_KEY",
    "HERO_NODE_GEMINI_API_KEY",
    "HERO_NODE_OPENAI_API_KEY",
];

#[test]
fn gemini_node_without_a_key_refuses_to_start() {
    let out = run_to_exit(
        "hero-node",
        &["--listen", "127.0.0.1:0", "--engine", "gemini"],
        &[],
        &KEY_VARS,
    );
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--engine gemini needs an API key") && stderr.contains("--gemini-api-key"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ready"));
}

#[test]
fn openai_node_without_server_or_model_refuses_to_start() {
    let removed = ["HERO_NODE_OPENAI_BASE_URL", "HERO_NODE_OPENAI_MODEL"];
    let out = run_to_exit(
        "hero-node",
        &["--listen", "127.0.0.1:0", "--engine", "openai"],
        &[],
        &removed,
    );
    assert!(!out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--openai-base-url"));
    let out = run_to_exit(
        "hero-node",
        &[
            "--listen",
            "127.0.0.1:0",
            "--engine",
            "openai",
            "--openai-base-url",
            "localhost:11434",
            "--openai-model",
            "llama3.1",
        ],
        &[],
        &removed,
    );
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not http(s)"), "{stderr}");
}

#[test]
fn help_never_shows_keys_from_the_environment() {
    let secret = "AIza-help-should-not-show";
    let out = run_to_exit(
        "hero-node",
        &["--help"],
        &[
            ("HERO_NODE_GEMINI_API_KEY", secret),
            ("HERO_NODE_OPENAI_API_KEY", secret),
        ],
        &[],
    );
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--gemini-api-key") && help.contains("--openai-json-schema"));
    assert!(!help.contains(secret), "{help}");
    let out = run_to_exit(
        "hero-aggregator",
        &["--help"],
        &[("HERO_GEMINI_API_KEY", secret)],
        &[],
    );
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--gemini-api-key"), "{help}");
    assert!(!help.contains(secret), "{help}");
}

async fn summoning_writes_character_text_with_gemini(backend: Backend) {
    let db = TestDb::new(backend).await;
    let gemini = FakeLlm::gemini(agree_with_sim(&pair(), 1)).await;
    let agg = aggregator_with_gemini(&db, &gemini);
    let player = hero_tests::game::Player::guest(&agg).await;
    let hero = player.summon("a knight of storms").await;
    assert_eq!(hero["name"], "Storm Warden", "{hero}");
    assert_eq!(hero["skill_description"], "Calls down a bolt that stuns.");
    assert_eq!(hero["text_source"], "llm");
    let calls = gemini.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let prompt = calls[0].body["contents"][0]["parts"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        prompt.contains("a knight of storms"),
        "the wish reaches the model as data: {prompt}"
    );
}

async fn summoning_falls_back_to_templates_when_gemini_fails(backend: Backend) {
    let db = TestDb::new(backend).await;
    let gemini = FakeLlm::gemini(LlmBehavior::ServerError).await;
    let agg = aggregator_with_gemini(&db, &gemini);
    let player = hero_tests::game::Player::guest(&agg).await;
    let hero = player.summon("a knight of storms").await;
    assert_eq!(hero["text_source"], "templates", "{hero}");
    assert_ne!(hero["name"], "Storm Warden");
    assert!(!gemini.calls().is_empty(), "Gemini was asked first");
    let log = std::fs::read_to_string(&agg.process.log).unwrap_or_default();
    assert!(
        log.contains("summoner failed; using templates"),
        "the fallback is logged"
    );
}
