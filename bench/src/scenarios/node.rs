//! node: `POST /generate_battle` answers per second of the real `hero-node` binary (the Sim
//! engine, as shipped: its allocator, its logging), many clients at once.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::Ctx;
use crate::lean::{self, Plan, Tally};
use crate::proc::{Process, free_port};
use crate::report::{Outcome, Summary, thousands};

pub const KEY: &str = "bench-node-key";

pub async fn run(ctx: &Ctx<'_>, outcome: &mut Outcome) -> anyhow::Result<()> {
    let sizes = ctx.sizes;
    let Node { mut process, addr } =
        Node::start(ctx.bins.node()?, &ctx.dir.join("node"), 10_000).await?;
    let tally = battles(addr, sizes.node_requests, sizes.concurrency).await;
    process.ensure_running()?;
    process.stop();
    let tally = tally?;
    let latency = Summary::of(tally.latencies.clone());
    outcome.figures = format!("{} req/s", thousands(tally.rate()));
    outcome.detail(format!(
        "{} requests, {} clients, p99 {:.2} ms",
        thousands(sizes.node_requests as f64),
        sizes.concurrency,
        latency.ms(0.99)
    ));
    outcome.set("requests_per_sec", tally.rate());
    outcome.set("p99_ms", latency.ms(0.99));
    outcome.check(
        tally.all(200),
        format!("not every battle answered 200: {}", tally.statuses_text()),
    );
    Ok(())
}

/// A `hero-node` binary (Sim engine) answering on loopback.
pub struct Node {
    pub process: Process,
    pub addr: SocketAddr,
}

impl Node {
    /// Starts `bin` in `dir` with `slots` battle slots and waits until it answers `/health`.
    pub async fn start(bin: &Path, dir: &Path, slots: u32) -> anyhow::Result<Node> {
        std::fs::create_dir_all(dir)?;
        let port = free_port()?;
        let args: Vec<String> = [
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--api-key",
            KEY,
            "--max-concurrent-requests",
            &slots.to_string(),
            "--key-file",
            &dir.join("node.key").display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut process = Process::spawn(bin, &args, dir, &dir.join("node.log"))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        for _ in 0..100 {
            process.ensure_running()?;
            if lean::get_json(addr, "/health").await.is_ok() {
                return Ok(Node { process, addr });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("the node did not answer /health within 10 s")
    }
}

/// `n` battle requests to the node at `addr` over `connections`.
pub async fn battles(addr: SocketAddr, n: u64, connections: usize) -> anyhow::Result<Tally> {
    let body = serde_json::json!({
        "battle_id": "b", "prompt": "p", "seed": 7, "fighters": crate::agg::fighters()
    })
    .to_string();
    lean::drive(addr, Plan::count(n, connections), move |_| {
        lean::request(
            hyper::Method::POST,
            "/generate_battle",
            Some(KEY),
            Some(body.clone()),
        )
    })
    .await
}
