//! node: `POST /generate_battle` answers per second of the real `hero-node` binary (the Sim
//! engine, as shipped: its allocator, its logging), many clients at once. Each request carries
//! a node id and a fresh assignment, as the aggregator's calls do, so every answer is signed.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use hero_protocol::signing::{
    ASSIGNMENT_HEADER, NODE_ID_HEADER, SIGNATURE_HEADER, verify, vote_message,
};

use super::Ctx;
use crate::lean::{self, Plan, Tally};
use crate::proc::{Process, free_port};
use crate::report::{Outcome, Summary, thousands};

pub const KEY: &str = "bench-node-key";
/// The node id the benchmark calls the node by.
const NODE_ID: &str = "bench-node";

pub async fn run(ctx: &Ctx<'_>, outcome: &mut Outcome) -> anyhow::Result<()> {
    let sizes = ctx.sizes;
    let Node { mut process, addr } =
        Node::start(ctx.bins.node()?, &ctx.dir.join("node"), 10_000).await?;
    let tally = battles(addr, sizes.node_requests, sizes.concurrency).await;
    let signed = answers_are_signed(addr).await;
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
    if let Err(e) = signed {
        outcome.check(
            false,
            format!("answers are not signed as the aggregator checks them: {e:#}"),
        );
    }
    Ok(())
}

/// Whether an answer is signed by the key the node's `/health` presents, over the message the
/// aggregator checks.
async fn answers_are_signed(addr: SocketAddr) -> anyhow::Result<()> {
    let health = lean::get_json(addr, "/health").await?;
    let key = health["public_key"]
        .as_str()
        .context("/health presents no public_key")?;
    let answer = lean::call(addr, battle(&body(), 0)?).await?;
    anyhow::ensure!(answer.status == 200, "{}", answer.status);
    let signature = answer
        .headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .context("the answer carries no signature")?;
    let message = vote_message("b", NODE_ID, &assignment(0), &answer.body);
    anyhow::ensure!(
        verify(key, &message, signature),
        "the signature does not verify"
    );
    Ok(())
}

fn body() -> String {
    serde_json::json!({
        "battle_id": "b", "prompt": "p", "seed": 7, "fighters": crate::agg::fighters()
    })
    .to_string()
}

fn assignment(i: u64) -> String {
    format!("bench-{i}")
}

/// Battle request `i`, with the node id and an assignment of its own.
fn battle(body: &str, i: u64) -> anyhow::Result<hyper::Request<String>> {
    let request = lean::request(
        hyper::Method::POST,
        "/generate_battle",
        Some(KEY),
        Some(body.to_owned()),
    )?;
    let request = lean::with_header(request, NODE_ID_HEADER, NODE_ID)?;
    lean::with_header(request, ASSIGNMENT_HEADER, &assignment(i))
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
    let body = body();
    lean::drive(addr, Plan::count(n, connections), move |i| {
        battle(&body, i + 1)
    })
    .await
}
