//! node: `POST /generate_battle` answers per second of one in-process Sim node
//! (`hero_node::Application` with `hero_engine::Sim`), many clients at once.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::Ctx;
use crate::lean::{self, Plan, Tally};
use crate::report::{Outcome, Summary, thousands};

pub const KEY: &str = "bench-node-key";

pub async fn run(ctx: &Ctx<'_>, outcome: &mut Outcome) -> anyhow::Result<()> {
    let sizes = ctx.sizes;
    let config = hero_node::NodeConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        api_key: Some(KEY.into()),
        max_concurrent_requests: 10_000,
        ..hero_node::NodeConfig::default()
    };
    let app = hero_node::Application::build(config, Arc::new(hero_engine::Sim)).await?;
    let addr = app.local_addr();
    let stop = CancellationToken::new();
    let node = tokio::spawn(app.run_until_stopped(stop.clone()));
    let tally = battles(addr, sizes.node_requests, sizes.concurrency).await;
    stop.cancel();
    let _ = node.await;
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
