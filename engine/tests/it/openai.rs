//! The OpenAI-compatible engine against a local server speaking the chat completions format
//! (as Ollama, vLLM and llama.cpp server do).

use std::time::{Duration, Instant};

use hero_engine::{BattleEngine, EngineError, JsonSchemaMode, OpenAiEngine, OpenAiSettings};
use hero_testkit::fixtures::{battle_request, card, valid_battle};
use hero_testkit::llm::openai::{self, KEY, MODEL};
use hero_testkit::llm::{FakeLlm, Reply};
use serde_json::json;

use crate::FAST_BACKOFF;

/// Engine settings pointing at `server`, with a key and tiny backoffs.
fn settings(server: &FakeLlm) -> OpenAiSettings {
    OpenAiSettings {
        api_key: Some(KEY.into()),
        timeout: Duration::from_secs(5),
        initial_backoff: FAST_BACKOFF,
        max_backoff: Duration::from_millis(200),
        ..OpenAiSettings::new(server.base_url.clone(), MODEL)
    }
}

async fn engine_for(replies: Vec<Reply>) -> (FakeLlm, OpenAiEngine) {
    let server = FakeLlm::start(replies).await;
    let engine = OpenAiEngine::new(settings(&server)).expect("engine builds");
    (server, engine)
}

#[tokio::test]
async fn a_valid_battle_is_returned_and_the_request_is_well_formed() {
    let (server, engine) = engine_for(vec![openai::json_text(&valid_battle("c1"))]).await;
    let result = engine.generate(&battle_request()).await.unwrap();
    assert_eq!(result.winner, "c1");

    let calls = server.calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.path, "/v1/chat/completions");
    assert_eq!(call.headers["authorization"], format!("Bearer {KEY}"));
    let body = &call.body;
    assert_eq!(body["model"], MODEL);
    assert_eq!(body["seed"], 7);
    assert_eq!(body["stream"], false);
    let format = &body["response_format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(format["json_schema"]["name"], "battle_result");
    assert_eq!(format["json_schema"]["strict"], true);
    assert_eq!(
        format["json_schema"]["schema"]["properties"]["winner"]["enum"],
        json!(["c1", "c2"])
    );
    assert_eq!(body["messages"][0]["role"], "system");
    assert!(
        body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("Output contract")
    );
    assert_eq!(body["messages"][1]["role"], "user");
    let user = body["messages"][1]["content"].as_str().unwrap();
    for needle in [
        "id: \"c1\"",
        "name: \"Aria\"",
        "id: \"c2\"",
        "name: \"Borin\"",
        "Flame Lance",
    ] {
        assert!(user.contains(needle), "prompt lacks {needle}: {user}");
    }
    assert_eq!((engine.kind(), engine.model()), ("openai", Some(MODEL)));
}

#[tokio::test]
async fn a_v1_base_url_json_object_mode_and_no_key() {
    let server = FakeLlm::start(vec![openai::json_text(&valid_battle("c1"))]).await;
    let settings = OpenAiSettings {
        json_schema: JsonSchemaMode::Off,
        ..OpenAiSettings::new(format!("{}/v1/", server.base_url), MODEL)
    };
    let engine = OpenAiEngine::new(settings).unwrap();
    assert_eq!(
        engine.generate(&battle_request()).await.unwrap().winner,
        "c1"
    );
    let call = &server.calls()[0];
    assert_eq!(call.path, "/v1/chat/completions");
    assert!(call.headers.get("authorization").is_none());
    assert_eq!(call.body["response_format"]["type"], "json_object");
    let schema = &call.body["response_format"]["schema"];
    assert_eq!(schema["properties"]["winner"]["enum"], json!(["c1", "c2"]));
    assert_eq!(
        &call.body["json_schema"], schema,
        "llama.cpp's server reads it here"
    );
    assert_eq!(engine.output_constraint(), Some("json_object+schema"));
}

#[tokio::test]
async fn auto_falls_back_to_json_object_with_the_schema_once_refused_and_remembers() {
    // llama-cpp-python's answer to a json_schema response_format: a 500 naming it.
    let refused = openai::error(
        500,
        "response_format type json_schema is not supported; use text or json_object",
        "server_error",
        None,
    );
    let (server, engine) = engine_for(vec![
        refused,
        openai::json_text(&valid_battle("c1")),
        openai::json_text(&valid_battle("c1")),
    ])
    .await;
    assert_eq!(engine.output_constraint(), Some("json_schema"));
    assert_eq!(
        engine.generate(&battle_request()).await.unwrap().winner,
        "c1"
    );
    assert_eq!(
        engine.generate(&battle_request()).await.unwrap().winner,
        "c1"
    );
    let calls = server.calls();
    assert_eq!(calls.len(), 3, "one refusal, not retried as it was");
    assert_eq!(calls[0].body["response_format"]["type"], "json_schema");
    for call in &calls[1..] {
        assert_eq!(call.body["response_format"]["type"], "json_object");
        assert!(call.body["response_format"]["schema"].is_object());
    }
    assert_eq!(engine.output_constraint(), Some("json_object+schema"));
}

#[tokio::test]
async fn on_never_falls_back_and_other_errors_do_not_switch() {
    let refused = || {
        openai::error(
            400,
            "response_format json_schema unsupported",
            "invalid_request_error",
            None,
        )
    };
    let settings_on = |server: &FakeLlm| OpenAiSettings {
        json_schema: JsonSchemaMode::On,
        ..settings(server)
    };
    let server = FakeLlm::start(vec![refused()]).await;
    let engine = OpenAiEngine::new(settings_on(&server)).unwrap();
    assert!(engine.generate(&battle_request()).await.is_err());
    assert_eq!(engine.output_constraint(), Some("json_schema"));
    // In auto, an error that does not name response_format changes nothing.
    let (server, engine) = engine_for(vec![openai::error(
        400,
        "model not found",
        "invalid_request_error",
        None,
    )])
    .await;
    assert!(engine.generate(&battle_request()).await.is_err());
    assert_eq!(engine.output_constraint(), Some("json_schema"));
    assert_eq!(server.call_count(), 1);
}

#[tokio::test]
async fn battles_are_asked_at_temperature_zero_with_the_battle_seed() {
    let (server, engine) = engine_for(vec![openai::json_text(&valid_battle("c1"))]).await;
    engine.generate(&battle_request()).await.unwrap();
    let body = &server.calls()[0].body;
    assert_eq!(body["temperature"], 0.0);
    assert_eq!(body["seed"], 7);
}

#[tokio::test]
async fn fenced_json_is_unwrapped() {
    let fenced = format!("```json\n{:#}\n```", valid_battle("c1"));
    let (_server, engine) = engine_for(vec![openai::text(&fenced)]).await;
    assert_eq!(
        engine.generate(&battle_request()).await.unwrap().winner,
        "c1"
    );
}

#[tokio::test]
async fn text_that_is_not_json_is_invalid_output_and_not_retried() {
    let (server, engine) =
        engine_for(vec![openai::text("{\"winner\": \"c1\", \"battle_log\": [")]).await;
    let err = engine.generate(&battle_request()).await.unwrap_err();
    assert!(matches!(err, EngineError::InvalidOutput(_)), "{err}");
    assert_eq!(server.call_count(), 1);
}

#[tokio::test]
async fn a_sloppy_battle_is_repaired_into_a_valid_vote_and_counted() {
    // A stranger as winner and hp that do not add up: the node recomputes the hp from the
    // damages and names the fighter left standing (c1 knocks c2 out), the same way every time.
    let (_server, engine) = engine_for(vec![
        openai::json_text(&valid_battle("c3")),
        openai::json_text(&valid_battle("c3")),
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
async fn a_content_filter_is_a_clear_error() {
    let (_server, engine) = engine_for(vec![openai::finished("", "content_filter")]).await;
    let err = engine.generate(&battle_request()).await.unwrap_err();
    assert!(
        matches!(err, EngineError::Blocked(ref m) if m.contains("content_filter")),
        "{err}"
    );
}

#[tokio::test]
async fn a_length_cut_answer_is_an_error() {
    let half = &valid_battle("c1").to_string()[..80];
    let (_server, engine) = engine_for(vec![openai::finished(half, "length")]).await;
    let err = engine.generate(&battle_request()).await.unwrap_err();
    assert!(
        matches!(err, EngineError::InvalidOutput(ref m) if m.contains("length")),
        "{err}"
    );
}

#[tokio::test]
async fn rate_limit_is_retried_after_retry_after() {
    let limited = openai::error(
        429,
        "Rate limit reached for requests",
        "requests",
        Some("rate_limit_exceeded"),
    )
    .with_header("retry-after-ms", "150");
    let (server, engine) = engine_for(vec![limited, openai::json_text(&valid_battle("c1"))]).await;
    let started = Instant::now();
    assert_eq!(
        engine.generate(&battle_request()).await.unwrap().winner,
        "c1"
    );
    assert_eq!(server.call_count(), 2, "the second attempt must happen");
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "Retry-After was not honoured"
    );
}

#[tokio::test]
async fn server_errors_are_retried() {
    let internal = openai::error(
        500,
        "model runner has unexpectedly stopped",
        "api_error",
        None,
    );
    let (server, engine) = engine_for(vec![internal, openai::json_text(&valid_battle("c1"))]).await;
    assert_eq!(
        engine.generate(&battle_request()).await.unwrap().winner,
        "c1"
    );
    assert_eq!(server.call_count(), 2);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let bad = Reply::json(
        400,
        json!({"error": {"code": 400, "message": "\"max_tokens\" is not supported", "type": "invalid_request_error"}}),
    );
    let (server, engine) = engine_for(vec![bad]).await;
    let err = engine.generate(&battle_request()).await.unwrap_err();
    assert_eq!(server.call_count(), 1);
    let shown = err.to_string();
    assert!(matches!(err, EngineError::Upstream(_)), "{shown}");
    assert!(
        shown.contains("400") && shown.contains("is not supported"),
        "{shown}"
    );

    let missing = Reply::json(
        404,
        json!({"error": "model \"llama9\" not found, try pulling it first"}),
    );
    let (server, engine) = engine_for(vec![missing]).await;
    let err = engine.generate(&battle_request()).await.unwrap_err();
    assert_eq!(server.call_count(), 1);
    assert!(err.to_string().contains("try pulling it first"), "{err}");
    assert!(!err.to_string().contains(KEY));
}

#[tokio::test]
async fn a_hanging_server_times_out() {
    let server = FakeLlm::start(vec![Reply::Hang]).await;
    let settings = OpenAiSettings {
        timeout: Duration::from_millis(300),
        ..settings(&server)
    };
    let engine = OpenAiEngine::new(settings).unwrap();
    let err = engine.generate(&battle_request()).await.unwrap_err();
    assert!(matches!(err, EngineError::Timeout(300)), "{err}");
}

#[tokio::test]
async fn summon_returns_a_checked_card() {
    let (server, engine) = engine_for(vec![openai::json_text(&card("Kitsune"))]).await;
    let card = engine.summon("a fox spirit", 2).await.unwrap();
    assert_eq!(card.name, "Kitsune");
    let body = &server.calls()[0].body;
    assert_eq!(
        body["response_format"]["json_schema"]["name"],
        "character_card"
    );
    assert!(body.get("seed").is_none());
    assert!(
        body["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("\"a fox spirit\"")
    );
}

#[tokio::test]
async fn summon_refuses_an_invalid_name() {
    let (_server, engine) = engine_for(vec![openai::json_text(&card("X"))]).await;
    let err = engine.summon("anything", 1).await.unwrap_err();
    assert!(
        matches!(err, EngineError::InvalidOutput(ref m) if m.contains("name")),
        "{err}"
    );
}
