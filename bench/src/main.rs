//! `hero-bench`: measures what DESIGN.md §7 holds us to, on this machine, in-process:
//! battle settle latency with three local nodes, durable battles settled per second, the
//! cost of choosing k nodes among many, and how fast one node answers; `hero-bench soak` keeps
//! the real aggregator binary under steady load and watches its memory, disk and logs.

mod report;
mod soak;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use futures::StreamExt;
use hero_aggregator::cli::Cli as AggregatorCli;
use tokio_util::sync::CancellationToken;

use report::Summary;

#[derive(Debug, Parser)]
#[command(
    name = "hero-bench",
    about = "Benchmarks for the AI Hero Battle aggregator and node"
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Database for the aggregator [default: a fresh SQLite file in a temp folder].
    #[arg(long, env = "HERO_BENCH_DATABASE_URL", global = true)]
    database_url: Option<String>,
    /// Local Sim nodes started in-process.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Battles settled one after another for the latency figure.
    #[arg(long, default_value_t = 200)]
    latency_battles: usize,
    /// Battles created for the throughput figure.
    #[arg(long, default_value_t = 2000)]
    throughput_battles: usize,
    /// Concurrent HTTP clients creating battles / calling the node.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Registered nodes for the selection benchmark.
    #[arg(long, default_value_t = 100_000)]
    registry_size: usize,
    /// Requests sent to one node for its answer rate.
    #[arg(long, default_value_t = 20_000)]
    node_requests: usize,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// N minutes of steady load on the real `hero-aggregator` binary (3 local nodes): prints
    /// RSS, battles, database and log growth every interval, then memory drift after
    /// warm-up, bytes per battle on disk and log bytes per battle, and checks the books.
    Soak(soak::SoakArgs),
}

const ADMIN: &str = "bench-admin-token-0123456789";

fn fighters() -> serde_json::Value {
    serde_json::json!([
        {"id":"c1","name":"Aria","strength":60,"agility":40,"luck":30,"rarity":3,"skill_description":"Storm blade"},
        {"id":"c2","name":"Borin","strength":45,"agility":55,"luck":35,"rarity":2,"skill_description":"Shield bash"}
    ])
}

async fn start_aggregator(
    url: &str,
    nodes: usize,
    stop: &CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let cli = AggregatorCli::try_parse_from([
        "hero-aggregator",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        url,
        "--admin-token",
        ADMIN,
        "--local-nodes",
        &nodes.to_string(),
        "--battle-concurrency",
        "512",
        "--db-max-connections",
        "16",
    ])?;
    let app = hero_aggregator::Application::build(cli.serve).await?;
    let addr = app.local_addr()?;
    let token = stop.clone();
    tokio::spawn(async move { app.run_until_stopped(token).await });
    let client = reqwest::Client::new();
    for _ in 0..200 {
        let health: serde_json::Value = client
            .get(format!("http://{addr}/api/health"))
            .send()
            .await?
            .json()
            .await?;
        if health["nodes"]["online"].as_u64() == Some(nodes as u64) {
            return Ok(addr);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("local nodes did not come online")
}

async fn create(client: &reqwest::Client, addr: SocketAddr) -> anyhow::Result<String> {
    create_at(client, &format!("http://{addr}"), ADMIN).await
}

/// Creates one admin battle on the aggregator at `base`; returns its id.
async fn create_at(client: &reqwest::Client, base: &str, admin: &str) -> anyhow::Result<String> {
    let body: serde_json::Value = client
        .post(format!("{base}/api/v1/admin/battles"))
        .bearer_auth(admin)
        .json(&serde_json::json!({"fighters": fighters()}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    body["battle_id"]
        .as_str()
        .map(str::to_owned)
        .context("no battle id")
}

/// Create → COMPLETED, one battle at a time, observed by polling every millisecond.
async fn latency(addr: SocketAddr, n: usize) -> anyhow::Result<(Summary, usize)> {
    let client = reqwest::Client::new();
    let mut samples = Vec::with_capacity(n);
    let mut quorum = 0;
    for _ in 0..n {
        let started = Instant::now();
        let id = create(&client, addr).await?;
        loop {
            let b: serde_json::Value = client
                .get(format!("http://{addr}/api/v1/battles/{id}"))
                .send()
                .await?
                .json()
                .await?;
            if b["status"] == "COMPLETED" {
                quorum += usize::from(b["settled_by"] == "quorum");
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        samples.push(started.elapsed());
    }
    Ok((Summary::of(samples), quorum))
}

async fn completed(pool: &sqlx::AnyPool) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM battles WHERE status = 'COMPLETED'")
            .fetch_one(pool)
            .await?,
    )
}

/// Many battles created concurrently; time until every one is settled.
async fn throughput(
    addr: SocketAddr,
    db_url: &str,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<(f64, f64, i64)> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(2)
        .connect(db_url)
        .await?;
    let before = completed(&pool).await?;
    let client = reqwest::Client::new();
    let started = Instant::now();
    let results: Vec<anyhow::Result<String>> = futures::stream::iter(0..n)
        .map(|_| create(&client, addr))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let created_in = started.elapsed();
    results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    let target = before + i64::try_from(n)?;
    while completed(&pool).await? < target {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let settled_in = started.elapsed();
    let fallbacks: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM battles WHERE status = 'COMPLETED' AND settled_by = 'fallback'",
    )
    .fetch_one(&pool)
    .await?;
    Ok((
        n as f64 / created_in.as_secs_f64(),
        n as f64 / settled_in.as_secs_f64(),
        fallbacks,
    ))
}

/// Requests/s one in-process Sim node answers.
async fn node_rate(n: usize, concurrency: usize) -> anyhow::Result<f64> {
    let config = hero_node::NodeConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        api_key: Some("bench-key".into()),
        max_concurrent_requests: 10_000,
        ..hero_node::NodeConfig::default()
    };
    let app = hero_node::Application::build(config, Arc::new(hero_engine::Sim)).await?;
    let url = format!("{}/generate_battle", app.public_url());
    let stop = CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move { app.run_until_stopped(token).await });
    let client = reqwest::Client::new();
    let body =
        serde_json::json!({"battle_id": "b", "prompt": "p", "seed": 7, "fighters": fighters()});
    let started = Instant::now();
    let ok = futures::stream::iter(0..n)
        .map(|_| {
            let req = client
                .post(&url)
                .bearer_auth("bench-key")
                .json(&body)
                .send();
            async move { matches!(req.await, Ok(r) if r.status().is_success()) }
        })
        .buffer_unordered(concurrency)
        .filter(|ok| futures::future::ready(*ok))
        .count()
        .await;
    let rate = ok as f64 / started.elapsed().as_secs_f64();
    stop.cancel();
    anyhow::ensure!(ok == n, "only {ok} of {n} node requests succeeded");
    Ok(rate)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("hero-bench-{}", uuid::Uuid::new_v4().simple()));
    let db_url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}/bench.db", dir.display()));
    if let Some(Command::Soak(soak)) = &args.command {
        let outcome = soak::run(soak, &db_url, &dir).await;
        // A failed soak keeps its folder (the aggregator's log) for a look.
        if outcome.is_ok() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        return outcome;
    }
    println!(
        "hero-bench on {} core(s); database {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        hero_aggregator::db::redact(&db_url)
    );

    let selection = report::selection(args.registry_size);
    println!(
        "selection: choose 3 of {} registered nodes: {}",
        args.registry_size, selection
    );

    let stop = CancellationToken::new();
    let addr = start_aggregator(&db_url, args.nodes, &stop).await?;
    let (lat, quorum) = latency(addr, args.latency_battles).await?;
    println!(
        "latency: create → settled with {} local nodes, {} battles ({} by quorum): {}",
        args.nodes, args.latency_battles, quorum, lat
    );
    let (created, settled, fallbacks) =
        throughput(addr, &db_url, args.throughput_battles, args.concurrency).await?;
    println!(
        "throughput: {} battles, {} concurrent clients: created {created:.0}/s, settled {settled:.0}/s ({fallbacks} by fallback in the whole run)",
        args.throughput_battles, args.concurrency
    );
    stop.cancel();

    let rate = node_rate(args.node_requests, args.concurrency).await?;
    println!(
        "node: Sim /generate_battle, {} requests, {} concurrent: {rate:.0} req/s",
        args.node_requests, args.concurrency
    );
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
