//! stragglers: settle latency when nodes are slow and a few much slower. In-process
//! `hero_node::Application`s (each its own operator, registered over HTTP with the operator's
//! enrollment token) answer through the Sim engine after a delay drawn from the latency model;
//! k = 3 of them are asked per battle. Two passes, each on a fresh aggregator: hedging off
//! (`--hedge-percentile 0`), then on (the default). Settle times come from the battles'
//! timestamps, extra node calls from the votes recorded (and `hero_node_hedges_total` when
//! the aggregator exports it).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::latency::{Delayed, Model};
use super::stage::{self, Stage};
use super::{BATTLE_FLAGS, Ctx, Sizes};
use crate::agg::{self, Aggregator};
use crate::db::Fresh;
use crate::lean::{self, Plan};
use crate::report::{self, Outcome, Summary, thousands};

const K: f64 = 3.0;
const HEDGE_FLAG: &str = "--hedge-percentile";
const HEDGES_METRIC: &str = "hero_node_hedges_total";

/// The figures of one pass.
struct Pass {
    node_p95_ms: f64,
    settle_p99_ms: f64,
    extra_calls_pct: f64,
}

pub async fn run(ctx: &Ctx<'_>, outcome: &mut Outcome) -> anyhow::Result<()> {
    let sizes = ctx.sizes;
    anyhow::ensure!(
        sizes.straggler_nodes >= 3,
        "--straggler-nodes must be at least 3 (k = 3)"
    );
    let bin = ctx.bins.aggregator()?;
    let can_switch = agg::has_flag(bin, HEDGE_FLAG);
    let mut passes = Vec::new();
    for (part, hedging) in [("hedging off", false), ("hedging on", true)] {
        let mut scratch = Outcome::new(outcome.scenario, outcome.target);
        let flag = (!hedging && can_switch).then_some([HEDGE_FLAG, "0"]);
        let dir = ctx.dir.join(part.replace(' ', "-"));
        passes.push(pass(sizes, bin, &dir, flag.as_ref(), &mut scratch).await?);
        outcome.absorb(part, scratch);
    }
    if !can_switch {
        outcome.unmeasured.push(format!(
            "this aggregator has no {HEDGE_FLAG}: both passes ran with its only behaviour"
        ));
    }
    let figure = |p: &Pass| {
        format!(
            "settle p99 {:.0} ms, +{:.1}% calls",
            p.settle_p99_ms, p.extra_calls_pct
        )
    };
    outcome.figures = format!(
        "node p95 {:.0} ms; hedging off: {}; on: {}",
        passes[1].node_p95_ms,
        figure(&passes[0]),
        figure(&passes[1])
    );
    outcome.details.insert(
        0,
        format!(
            "{} nodes, lognormal median {} ms sigma {}, {}% ×{} slower, {} battles at {}/s per pass",
            sizes.straggler_nodes,
            sizes.node_median_ms,
            sizes.node_sigma,
            sizes.straggler_percent,
            sizes.straggler_factor,
            thousands(sizes.straggler_battles as f64),
            thousands(sizes.straggler_rate)
        ),
    );
    Ok(())
}

async fn pass(
    sizes: &Sizes,
    bin: &Path,
    dir: &Path,
    hedge_flag: Option<&[&str; 2]>,
    outcome: &mut Outcome,
) -> anyhow::Result<Pass> {
    let fresh = Fresh::sqlite(dir)?;
    let mut flags = [
        &BATTLE_FLAGS[..],
        &["--probation-votes", "0", "--allow-private-node-urls"],
    ]
    .concat();
    flags.extend(hedge_flag.into_iter().flatten());
    let mut stage = Stage::start(bin, dir, &fresh, 0, &flags).await?;
    let model = Model {
        median_ms: sizes.node_median_ms,
        sigma: sizes.node_sigma,
        straggler_share: sizes.straggler_percent / 100.0,
        straggler_factor: sizes.straggler_factor,
    };
    let drawn = Arc::new(Mutex::new(Vec::new()));
    let stop = CancellationToken::new();
    let nodes = start_nodes(
        sizes.straggler_nodes,
        &stage.aggregator,
        model,
        &drawn,
        &stop,
    )
    .await?;
    stage.aggregator.wait_online(sizes.straggler_nodes).await?;

    let before = stage.aggregator.metrics().await?;
    let plan = Plan::count(sizes.straggler_battles, sizes.concurrency).paced(sizes.straggler_rate);
    let tally = lean::drive(stage.aggregator.addr, plan, agg::admin_battles()).await?;
    let settled = stage.settle(outcome).await?;
    let after = stage.aggregator.metrics().await?;
    let votes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM battle_votes")
        .fetch_one(&stage.pool)
        .await?;
    stop.cancel();
    for node in nodes {
        let _ = tokio::time::timeout(Duration::from_secs(5), node).await;
    }
    stage.stop().await;

    let delays = std::mem::take(&mut *drawn.lock().unwrap_or_else(|e| e.into_inner()));
    let node = Summary::of(delays);
    let battles = sizes.straggler_battles as f64;
    let extra_calls_pct = (votes as f64 - K * battles) / (K * battles) * 100.0;
    outcome.detail(format!("node p95 {:.1} ms", node.ms(0.95)));
    outcome.detail(format!("{} votes recorded", thousands(votes as f64)));
    outcome.set("node_p95_ms", node.ms(0.95));
    outcome.set("extra_calls_pct", extra_calls_pct);
    outcome.set("votes", votes);
    if let Some(hedges) = report::counter(&after, HEDGES_METRIC) {
        let hedges = hedges - report::counter(&before, HEDGES_METRIC).unwrap_or(0.0);
        outcome.detail(format!("{} hedges ({HEDGES_METRIC})", thousands(hedges)));
        outcome.set("hedges", hedges);
    }
    stage::created(outcome, &tally, 202);
    Ok(Pass {
        node_p95_ms: node.ms(0.95),
        settle_p99_ms: settled.times.ms(0.99),
        extra_calls_pct,
    })
}

/// Starts `n` nodes answering through the model, each its own operator registered with the
/// aggregator over HTTP with the operator's enrollment token; they leave when `stop` fires.
async fn start_nodes(
    n: usize,
    aggregator: &Aggregator,
    model: Model,
    drawn: &Arc<Mutex<Vec<Duration>>>,
    stop: &CancellationToken,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<anyhow::Result<()>>>> {
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let operator = format!("bench-op-{i}");
        let token = aggregator.operator(&operator).await?;
        let config = hero_node::NodeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            name: Some(format!("straggler-{i}")),
            operator: Some(operator),
            enrollment_token: Some(token),
            aggregator_url: Some(format!("http://{}", aggregator.addr)),
            max_concurrent_requests: 1_000,
            ..hero_node::NodeConfig::default()
        };
        let engine = Delayed {
            model,
            drawn: Arc::clone(drawn),
        };
        let app = hero_node::Application::build(config, Arc::new(engine)).await?;
        nodes.push(tokio::spawn(app.run_until_stopped(stop.clone())));
    }
    Ok(nodes)
}
