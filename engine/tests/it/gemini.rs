//! The Gemini engine against a local server speaking Gemini's `generateContent` wire format.

use std::time::{Duration, Instant};

use hero_engine::{BattleEngine, EngineError, GeminiEngine, GeminiSettings};
use hero_protocol::BattleRequest;
use hero_testkit::fixtures::{battle_request, card, valid_battle};
use hero_testkit::llm::gemini::{self, KEY, PATH};
use hero_testkit::llm::{FakeLlm, Reply};
use serde_json::json;

use crate::FAST_BACKOFF;

/// Engine settings pointing at `server`, with tiny backoffs.
fn settings(server: &FakeLlm) -> GeminiSettings {
    GeminiSettings {
        base_url: server.base_url.clone(),
        timeout: Duration::from_secs(5),
        initial_backoff: FAST_BACKOFF,
        max_backoff: Duration::from_millis(200),
        ..GeminiSettings::new(KEY)
    }
}

async fn engine_for(replies: Vec<Reply>) -> (FakeLlm, GeminiEngine) {
    let server = FakeLlm::start(replies).await;
    let engine = GeminiEngine::new(settings(&server)).expect("engine builds");
    (server, engine)
}

#[tokio::test]
async fn a_valid_battle_is_returned_and_the_request_is_well_formed() {
    let (server, engine) = engine_for(vec![gemini::json_text(&valid_battle("c1"))]).await;
    let result = engine.generate(&battle_request()).await.unwrap();
    assert_eq!(result.winner, "c1");
    assert_eq!(result.battle_log.len(), 3);

    let calls = server.calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.path, PATH);
    assert_eq!(call.query, None, "the key must not travel in the URL");
    assert_eq!(call.headers["x-goog-api-key"], KEY);
    assert!(call.headers.get("authorization").is_none());
    let config = &call.body["generationConfig"];
    assert_eq!(config["responseMimeType"], "application/json");
    assert_eq!(config["seed"], 7);
    assert_eq!(
        config["temperature"].as_f64(),
        Some(0.0),
        "battles at temperature 0: with the seed, one question gets one answer"
    );
    assert_eq!(config["responseSchema"]["type"], "OBJECT");
    assert_eq!(
        config["responseSchema"]["properties"]["winner"]["enum"],
        json!(["c1", "c2"])
    );
    assert_eq!(call.body["contents"][0]["role"], "user");
    let user = call.body["contents"][0]["parts"][0]["text"]
        .as_str()
        .unwrap();
    for needle in [
        "id: \"c1\"",
        "name: \"Aria\"",
        "id: \"c2\"",
        "name: \"Borin\"",
        "Stone Skin",
    ] {
        assert!(user.contains(needle), "prompt lacks {needle}: {user}");
    }
    let system = call.body["systemInstruction"]["parts"][0]["text"]
        .as_str()
        .unwrap();
    assert!(system.contains("Output contract"));
    assert_eq!(
        (engine.kind(), engine.model()),
        ("gemini", Some("gemini-2.0-flash"))
    );
}

#[tokio::test]
async fn fenced_json_is_unwrapped() {
    let fenced = format!(
        "Here is the battle:\n```json\n{:#}\n```\n",
        valid_battle("c1")
    );
    let (_server, engine) = engine_for(vec![gemini::text(&fenced)]).await;
    assert_eq!(
        engine.generate(&battle_request()).await.unwrap().winner,
        "c1"
    );
}

#[tokio::test]
async fn text_that_is_not_json_is_invalid_output_and_not_retried() {
    let (server, engine) = engine_for(vec![gemini::text("Aria wins, obviously.")]).await;
    let err = engine.generate(&battle_request()).await.unwrap_err();
    assert!(matches!(err, EngineError::InvalidOutput(_)), "{err}");
    assert_eq!(server.call_count(), 1);
}

#[tokio::test]
async fn a_sloppy_battle_is_repaired_into_a_valid_vote_and_counted() {
    // A stranger as winner and hp that do not add up: the node recomputes the hp from the
    // damages and names the fighter left standing (c1 knocks c2 out), the same way every time.
    let (_server, engine) = engine_for(vec![
        gemini::json_text(&valid_battle("c3")),
        gemini::json_text(&valid_battle("c3")),
    ])
    .await;
    let first = engine.generate(&battle_request()).await.unwrap();
    assert_eq!(first.winner, "c1");
    assert_eq!(first.battle_log.last().unwrap().target_hp, 0);
    assert!(hero_engine::validate(battle_request().fighters.as_deref().unwrap(), &first).is_ok());
    let second = engine.generate(&battle_request()).await.unwrap();
    assert_eq!(first, second, "identical outputs give identical votes");
    assert_eq!(engine.repaired_results(), 2);
}

#[tokio::test]
async fn a_blocked_prompt_is_a_clear_error() {
    let (_server, engine) = engine_for(vec![gemini::blocked("PROHIBITED_CONTENT")]).await;
    let err = engine.generate(&battle_request()).await.unwrap_err();
    assert!(
        matches!(err, EngineError::Blocked(ref m) if m.contains("PROHIBITED_CONTENT")),
        "{err}"
    );
}

#[tokio::test]
async fn unfinished_answers_never_become_a_winner() {
    let answer = valid_battle("c1").to_string();
    for (reason, blocked) in [
        ("SAFETY", true),
        ("RECITATION", true),
        ("MAX_TOKENS", false),
        ("OTHER", false),
    ] {
        let (_server, engine) = engine_for(vec![gemini::finished(&answer, reason)]).await;
        let err = engine.generate(&battle_request()).await.unwrap_err();
        assert_eq!(
            matches!(err, EngineError::Blocked(_)),
            blocked,
            "{reason}: {err}"
        );
        assert!(matches!(
            err,
            EngineError::Blocked(_) | EngineError::InvalidOutput(_)
        ));
        assert!(err.to_string().contains(reason), "{err}");
    }
}

#[tokio::test]
async fn rate_limit_is_retried_after_the_servers_retry_delay() {
    let quota = gemini::error(
        429,
        "RESOURCE_EXHAUSTED",
        "Resource has been exhausted (e.g. check quota).",
        Some("0.150s"),
    );
    let (server, engine) = engine_for(vec![quota, gemini::json_text(&valid_battle("c1"))]).await;
    let started = Instant::now();
    let result = engine.generate(&battle_request()).await.unwrap();
    assert_eq!(result.winner, "c1");
    assert_eq!(server.call_count(), 2, "the second attempt must happen");
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "retryDelay was not honoured"
    );
}

#[tokio::test]
async fn a_long_retry_delay_is_capped() {
    let quota = gemini::error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", Some("3600s"));
    let (server, engine) = engine_for(vec![quota, gemini::json_text(&valid_battle("c1"))]).await;
    assert_eq!(
        engine.generate(&battle_request()).await.unwrap().winner,
        "c1"
    );
    assert_eq!(server.call_count(), 2);
}

#[tokio::test]
async fn server_errors_are_retried() {
    let unavailable = gemini::error(
        503,
        "UNAVAILABLE",
        "The model is overloaded. Please try again later.",
        None,
    )
    .with_header("retry-after", "0");
    let internal = gemini::error(500, "INTERNAL", "An internal error has occurred.", None);
    let (server, engine) = engine_for(vec![
        internal,
        unavailable,
        gemini::json_text(&valid_battle("c1")),
    ])
    .await;
    assert_eq!(
        engine.generate(&battle_request()).await.unwrap().winner,
        "c1"
    );
    assert_eq!(server.call_count(), 3);
}

#[tokio::test]
async fn persistent_rate_limits_give_up_with_the_servers_message() {
    let quota = gemini::error(
        429,
        "RESOURCE_EXHAUSTED",
        "Quota exceeded for metric.",
        Some("0.001s"),
    );
    let (server, engine) = engine_for(vec![quota]).await;
    let err = engine.generate(&battle_request()).await.unwrap_err();
    assert_eq!(
        server.call_count(),
        3,
        "one attempt and max_retries = 2 retries"
    );
    let message = err.to_string();
    assert!(
        message.contains("RESOURCE_EXHAUSTED: Quota exceeded for metric."),
        "{message}"
    );
    assert!(message.contains("gave up after 3 attempts"), "{message}");
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    for (code, status, message) in [
        (
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
        ),
        (
            403,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers.",
        ),
        (
            404,
            "NOT_FOUND",
            "models/gemini-9 is not found for API version v1beta.",
        ),
    ] {
        let (server, engine) = engine_for(vec![gemini::error(code, status, message, None)]).await;
        let err = engine.generate(&battle_request()).await.unwrap_err();
        assert_eq!(server.call_count(), 1, "{code} must not be retried");
        let shown = err.to_string();
        assert!(matches!(err, EngineError::Upstream(_)), "{shown}");
        assert!(
            shown.contains(message) && shown.contains(&code.to_string()),
            "{shown}"
        );
        assert!(!shown.contains(KEY), "the key leaked: {shown}");
    }
}

#[tokio::test]
async fn a_hanging_server_times_out() {
    let server = FakeLlm::start(vec![Reply::Hang]).await;
    let settings = GeminiSettings {
        timeout: Duration::from_millis(300),
        ..settings(&server)
    };
    let engine = GeminiEngine::new(settings).unwrap();
    let err = engine.generate(&battle_request()).await.unwrap_err();
    assert!(matches!(err, EngineError::Timeout(300)), "{err}");
}

#[tokio::test]
async fn a_seed_style_request_uses_its_prompt() {
    let (server, engine) = engine_for(vec![gemini::json_text(&valid_battle("c1"))]).await;
    let request = BattleRequest {
        battle_id: "b2".into(),
        prompt: "Aria the lancer against Borin the stone wall".into(),
        seed: None,
        fighters: None,
    };
    assert_eq!(engine.generate(&request).await.unwrap().winner, "c1");
    let body = &server.calls()[0].body;
    let user = body["contents"][0]["parts"][0]["text"].as_str().unwrap();
    assert!(
        user.contains("battle_text: \"Aria the lancer against Borin the stone wall\""),
        "{user}"
    );
    assert!(
        body["generationConfig"]["seed"].is_u64(),
        "a seed is derived from the battle id"
    );
    assert!(
        body["generationConfig"]["responseSchema"]["properties"]["winner"]
            .get("enum")
            .is_none()
    );
}

#[tokio::test]
async fn summon_returns_a_checked_card() {
    let (server, engine) = engine_for(vec![gemini::json_text(&card("Kitsune 狐"))]).await;
    let card = engine
        .summon("a fox spirit of the bamboo forest", 4)
        .await
        .unwrap();
    assert_eq!(card.name, "Kitsune 狐");
    assert!(card.skill_description.starts_with("Foxfire"));
    let body = &server.calls()[0].body;
    let user = body["contents"][0]["parts"][0]["text"].as_str().unwrap();
    assert!(
        user.contains("\"a fox spirit of the bamboo forest\"") && user.contains("rarity 4"),
        "{user}"
    );
    let schema = &body["generationConfig"]["responseSchema"];
    assert_eq!(schema["properties"]["skill_description"]["type"], "STRING");
}

#[tokio::test]
async fn summon_refuses_an_invalid_name() {
    let (_server, engine) =
        engine_for(vec![gemini::json_text(&card("<script>alert(1)</script>"))]).await;
    let err = engine.summon("anything", 1).await.unwrap_err();
    assert!(
        matches!(err, EngineError::InvalidOutput(ref m) if m.contains("name")),
        "{err}"
    );
}

#[tokio::test]
async fn a_redirect_never_carries_the_key_elsewhere() {
    let elsewhere = FakeLlm::start(vec![gemini::json_text(&valid_battle("c1"))]).await;
    let gateway = FakeLlm::start(vec![
        Reply::json(307, json!({}))
            .with_header("location", &format!("{}{PATH}", elsewhere.base_url)),
    ])
    .await;
    let engine = GeminiEngine::new(settings(&gateway)).expect("engine builds");
    assert!(engine.generate(&battle_request()).await.is_err());
    assert_eq!(elsewhere.call_count(), 0, "the key followed a redirect");
}
