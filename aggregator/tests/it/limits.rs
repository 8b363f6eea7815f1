//! Rate limits across replicas and CORS. Two aggregators on one database: without Redis each
//! counts its own share; with `--redis-url` (the machine's Redis, `HERO_TEST_REDIS_URL`) they
//! enforce one shared limit, per address and per player. A Redis that cannot be reached stops
//! the start rather than silently counting per replica. CORS answers only the listed origins.

use clap::Parser;
use hero_aggregator::cli::Cli;
use hero_testkit::{Backend, TestDb, on_both_databases};
use reqwest::Method;
use serde_json::json;

use crate::harness::Game;

on_both_databases!(replicas_with_redis_share_one_limit);
on_both_databases!(replicas_without_redis_count_on_their_own);

fn redis_url() -> String {
    std::env::var("HERO_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn nonce_status(game: &Game) -> u16 {
    game.call(Method::GET, "/api/v1/auth/web3/nonce", "", None)
        .await
        .status
}

async fn summon_status(game: &Game, token: &str) -> u16 {
    game.call(
        Method::POST,
        "/api/v1/characters",
        token,
        Some(json!({"prompt": "a hero"})),
    )
    .await
    .status
}

async fn replicas(url: &str, redis: Option<&str>) -> (Game, Game) {
    let prefix = format!("hero-test-{}", uuid::Uuid::new_v4().simple());
    let mut flags = vec![
        "--ip-limit-auth-per-minute",
        "4",
        "--rate-limit-summons-per-hour",
        "2",
    ];
    if let Some(redis) = redis {
        flags.extend(["--redis-url", redis, "--redis-prefix", &prefix]);
    }
    let a = Game::start(url, 0, &flags).await;
    let b = Game::start(url, 0, &flags).await;
    (a, b)
}

async fn replicas_with_redis_share_one_limit(backend: Backend) {
    let db = TestDb::new(backend).await;
    let redis = redis_url();
    let (a, b) = replicas(&db.url, Some(&redis)).await;
    // Four sign-in requests a minute from this address, wherever they land.
    let mut statuses = Vec::new();
    for game in [&a, &b, &a, &b, &a, &b] {
        statuses.push(nonce_status(game).await);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429]);
    // Two summons an hour per player, wherever they land (a minute later, so the guest
    // sign-up fits in the address limit again).
    a.advance(61_000);
    b.advance(61_000);
    let player = a.guest().await;
    assert_eq!(summon_status(&a, &player).await, 201);
    assert_eq!(summon_status(&b, &player).await, 201);
    assert_eq!(summon_status(&a, &player).await, 429);
    assert_eq!(summon_status(&b, &player).await, 429);
}

async fn replicas_without_redis_count_on_their_own(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (a, b) = replicas(&db.url, None).await;
    let mut statuses = Vec::new();
    for game in [&a, &a, &a, &a, &b, &b, &b, &b, &a, &b] {
        statuses.push(nonce_status(game).await);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 200, 200, 429, 429]);
    a.advance(61_000);
    b.advance(61_000);
    let player = a.guest().await;
    assert_eq!(summon_status(&a, &player).await, 201);
    assert_eq!(summon_status(&a, &player).await, 201);
    assert_eq!(summon_status(&a, &player).await, 429);
    assert_eq!(
        summon_status(&b, &player).await,
        201,
        "B keeps its own count"
    );
}

#[tokio::test]
async fn an_unreachable_redis_stops_the_start() {
    let db = TestDb::new(Backend::Sqlite).await;
    let cli = Cli::try_parse_from([
        "hero-aggregator",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &db.url,
        "--redis-url",
        "redis://127.0.0.1:1",
    ])
    .unwrap();
    let Err(e) = hero_aggregator::Application::build(cli.serve).await else {
        panic!("started without its Redis");
    };
    assert!(format!("{e:#}").contains("Redis"), "{e:#}");
}

#[tokio::test]
async fn cors_answers_the_listed_origins_only() {
    let db = TestDb::new(Backend::Sqlite).await;
    let game = Game::start(
        &db.url,
        0,
        &[
            "--cors-origin",
            "https://play.example,http://localhost:5173",
        ],
    )
    .await;
    let preflight = |origin: &'static str| {
        game.client
            .request(Method::OPTIONS, format!("{}/api/v1/battles", game.base))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization,content-type,idempotency-key",
            )
            .send()
    };
    let allowed = preflight("https://play.example").await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    let headers = allowed.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://play.example"
    );
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let allowed_headers = headers["access-control-allow-headers"].to_str().unwrap();
    assert!(
        allowed_headers.contains("idempotency-key"),
        "{allowed_headers}"
    );
    assert!(headers.get("access-control-allow-credentials").is_none());
    assert_eq!(headers["access-control-max-age"], "600");

    let refused = preflight("https://evil.example").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    // A plain request from an allowed page gets the header; from another, it does not.
    for (origin, allowed) in [
        ("http://localhost:5173", true),
        ("https://evil.example", false),
    ] {
        let resp = game
            .client
            .get(format!("{}/api/v1/leaderboard", game.base))
            .header("Origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let header = resp.headers().get("access-control-allow-origin");
        assert_eq!(
            header.map(|h| h.to_str().unwrap().to_owned()),
            allowed.then(|| origin.to_owned())
        );
    }
    // `*` and anything that is not a bare origin are refused at start.
    for bad in [
        "*",
        "https://play.example/app",
        "play.example",
        "ftp://play.example",
    ] {
        let parsed = Cli::try_parse_from(["hero-aggregator", "--cors-origin", bad]);
        assert!(parsed.is_err(), "{bad} was accepted");
    }
}
