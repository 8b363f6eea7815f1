//! Benchmark: what the LLM engines add to a battle on top of the model's own time.
//!
//! Starts an in-process server that answers Gemini's `generateContent` and OpenAI's chat
//! completions instantly with a valid battle, then times N sequential `generate` calls of
//! each engine, and N raw HTTP exchanges of the same sizes (the loopback transport floor).
//! The difference is the engine's own work: prompt and schema building, JSON encoding,
//! response parsing, fence stripping and validation.
//!
//! ```text
//! cargo run --release -p hero-engine --example llm_overhead -- [N]
//! ```

use std::error::Error;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use hero_engine::{BattleEngine, GeminiEngine, GeminiSettings, OpenAiEngine, OpenAiSettings, Sim};
use hero_protocol::{BattleRequest, Fighter};
use serde_json::json;

const WARM_UP: usize = 200;

fn fighter(id: &str, name: &str, strength: u32, skill: &str) -> Fighter {
    Fighter {
        id: id.into(),
        name: name.into(),
        strength,
        agility: 40,
        luck: 30,
        rarity: 3,
        skill_description: skill.into(),
    }
}

fn request() -> BattleRequest {
    BattleRequest {
        battle_id: "0b6c7c1e-5d4f-4d8a-9c39-3f1f8f0f2a11".into(),
        prompt: String::new(),
        seed: Some(4242),
        fighters: Some(vec![
            fighter("c1", "Aria", 60, "Storm Blade: lightning along the sword."),
            fighter(
                "c2",
                "Borin",
                45,
                "Shield Bash: stuns the foe for a moment.",
            ),
        ]),
    }
}

/// Canned provider answers carrying a valid battle, built once.
struct Answers {
    gemini: Bytes,
    openai: Bytes,
}

fn answers(request: &BattleRequest) -> Result<Answers, Box<dyn Error>> {
    let fighters = request.fighters.as_deref().unwrap_or_default();
    let result = Sim.battle(&request.battle_id, fighters, request.seed)?;
    let text = serde_json::to_string(&result)?;
    let gemini = json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 600, "candidatesTokenCount": 900, "totalTokenCount": 1500},
        "modelVersion": "gemini-2.0-flash"
    });
    let openai = json!({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1_700_000_000,
        "model": "bench-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 600, "completion_tokens": 900, "total_tokens": 1500}
    });
    Ok(Answers {
        gemini: Bytes::from(serde_json::to_vec(&gemini)?),
        openai: Bytes::from(serde_json::to_vec(&openai)?),
    })
}

/// Size of the last request body each engine route received, so the raw exchanges can
/// send exactly as many bytes.
#[derive(Default)]
struct Seen {
    gemini: AtomicUsize,
    openai: AtomicUsize,
}

async fn serve(answers: Answers, seen: Arc<Seen>) -> Result<String, Box<dyn Error>> {
    let json = |bytes: Bytes, size: Option<fn(&Seen) -> &AtomicUsize>| {
        let seen = Arc::clone(&seen);
        move |body: Bytes| {
            if let Some(size) = size {
                size(&seen).store(body.len(), Ordering::Relaxed);
            }
            let bytes = bytes.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], bytes).into_response() }
        }
    };
    let app = Router::new()
        .route(
            "/v1beta/models/{action}",
            post(json(answers.gemini.clone(), Some(|s| &s.gemini))),
        )
        .route(
            "/v1/chat/completions",
            post(json(answers.openai.clone(), Some(|s| &s.openai))),
        )
        .route("/raw/gemini", post(json(answers.gemini, None)))
        .route("/raw/openai", post(json(answers.openai, None)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            eprintln!("bench server stopped: {error}");
        }
    });
    Ok(format!("http://{addr}"))
}

/// Runs `call` WARM_UP + n times and returns the timings of the last n.
async fn time<F, Fut>(n: usize, mut call: F) -> Result<Vec<Duration>, Box<dyn Error>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), Box<dyn Error>>>,
{
    let mut timings = Vec::with_capacity(n);
    for i in 0..WARM_UP + n {
        let started = Instant::now();
        call().await?;
        if i >= WARM_UP {
            timings.push(started.elapsed());
        }
    }
    timings.sort_unstable();
    Ok(timings)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(rank).copied().unwrap_or_default()
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn report(name: &str, sorted: &[Duration], floor: Option<&[Duration]>) {
    let (p50, p99) = (percentile(sorted, 0.5), percentile(sorted, 0.99));
    let mut line = format!(
        "{name:<34} median {:>8.1} µs   p99 {:>8.1} µs",
        micros(p50),
        micros(p99)
    );
    // Only the medians subtract meaningfully: tails of two runs do not line up.
    if let Some(floor) = floor {
        let extra = micros(p50) - micros(percentile(floor, 0.5));
        line.push_str(&format!(
            "   engine overhead (median - floor median) {extra:>6.1} µs"
        ));
    }
    println!("{line}");
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(2000);
    let request = request();
    let seen = Arc::new(Seen::default());
    let base = serve(answers(&request)?, Arc::clone(&seen)).await?;

    let gemini = GeminiEngine::new(GeminiSettings {
        base_url: base.clone(),
        ..GeminiSettings::new("bench-key")
    })?;
    let openai = OpenAiEngine::new(OpenAiSettings::new(base.clone(), "bench-model"))?;
    gemini.generate(&request).await?;
    openai.generate(&request).await?;

    // The transport floor: bodies of the engines' request sizes over a pooled client, the
    // same canned answers read back, and no engine work.
    let client = reqwest::Client::new();
    let raw = |path: &'static str, size: usize| {
        let (client, url) = (client.clone(), format!("{base}{path}"));
        let body = Bytes::from(vec![b' '; size]);
        move || {
            let (client, url, body) = (client.clone(), url.clone(), body.clone());
            async move {
                let response = client
                    .post(url)
                    .header(header::CONTENT_TYPE.as_str(), "application/json")
                    .body(body)
                    .send()
                    .await?;
                response.bytes().await?;
                Ok(())
            }
        }
    };
    let gemini_size = seen.gemini.load(Ordering::Relaxed);
    let openai_size = seen.openai.load(Ordering::Relaxed);
    println!("request bodies: gemini {gemini_size} B, openai {openai_size} B");

    println!(
        "{n} sequential calls each ({WARM_UP} warm-up calls first), server answers instantly\n"
    );
    let sim = time(n, || async {
        Sim.generate(&request).await?;
        Ok(())
    })
    .await?;
    report("sim engine (no network)", &sim, None);

    let raw_gemini = time(n, raw("/raw/gemini", gemini_size)).await?;
    report("raw HTTP, Gemini-sized exchange", &raw_gemini, None);
    let gemini_runs = time(n, || async {
        gemini.generate(&request).await?;
        Ok(())
    })
    .await?;
    report("gemini engine", &gemini_runs, Some(&raw_gemini));

    let raw_openai = time(n, raw("/raw/openai", openai_size)).await?;
    report("raw HTTP, OpenAI-sized exchange", &raw_openai, None);
    let openai_runs = time(n, || async {
        openai.generate(&request).await?;
        Ok(())
    })
    .await?;
    report(
        "openai engine (json_schema)",
        &openai_runs,
        Some(&raw_openai),
    );
    Ok(())
}
