//! rss: resident memory (`VmRSS`, and the peak `VmHWM`) of the real binaries. The aggregator
//! with a fleet of registered nodes heartbeating (no battles); the node after a burst of
//! battle requests.

use std::path::Path;
use std::time::Duration;

use super::fleet::{FLEET_FLAGS, Fleet};
use super::{Ctx, Sizes};
use crate::agg::Aggregator;
use crate::db::Fresh;
use crate::lean;
use crate::proc::mb;
use crate::report::{Outcome, thousands};

pub async fn run(ctx: &Ctx<'_>, outcome: &mut Outcome) -> anyhow::Result<()> {
    let sizes = ctx.sizes;
    let arenas = std::env::var("MALLOC_ARENA_MAX").unwrap_or_else(|_| "glibc's default".into());
    let (bins, dir) = (ctx.bins, &ctx.dir);
    let aggregator =
        aggregator(sizes, bins.aggregator()?, &dir.join("aggregator"), outcome).await?;
    let node = node(sizes, bins.node()?, &dir.join("node"), outcome).await?;
    outcome.figures = format!("aggregator {aggregator:.1} MB; node {node:.1} MB");
    outcome.detail(format!("MALLOC_ARENA_MAX {arenas}"));
    Ok(())
}

/// The aggregator's RSS in MB after its fleet heartbeated for a while.
async fn aggregator(
    sizes: &Sizes,
    bin: &Path,
    dir: &Path,
    outcome: &mut Outcome,
) -> anyhow::Result<f64> {
    let fresh = Fresh::sqlite(dir)?;
    let mut aggregator = Aggregator::start(bin, dir, fresh.url(), 0, &FLEET_FLAGS).await?;
    let idle = aggregator.process.rss()?;
    let fleet = Fleet::register(aggregator.addr, sizes.nodes_for_rss).await?;
    let beats = fleet
        .heartbeat(
            aggregator.addr,
            Duration::from_secs_f64(sizes.rss_heartbeat_secs),
        )
        .await?;
    aggregator.process.ensure_running()?;
    let (rss, peak) = (aggregator.process.rss()?, aggregator.process.peak_rss()?);
    let health = lean::get_json(aggregator.addr, "/api/health").await?;
    aggregator.stop();
    let online = health["nodes"]["online"].as_u64().unwrap_or(0);
    outcome.detail(format!(
        "aggregator: {} nodes registered, {} online, heartbeats every {} s for {} s ({}/s), idle {:.1} MB, peak {:.1} MB",
        thousands(sizes.nodes_for_rss as f64),
        thousands(online as f64),
        fleet.interval.as_secs(),
        sizes.rss_heartbeat_secs,
        thousands(beats.rate()),
        mb(idle),
        mb(peak)
    ));
    memory(outcome, "aggregator", [idle, rss, peak]);
    outcome.set("nodes", sizes.nodes_for_rss);
    outcome.set("nodes_online", online);
    outcome.check(
        beats.all(200),
        format!(
            "not every heartbeat was accepted: {}",
            beats.statuses_text()
        ),
    );
    outcome.check(
        online == sizes.nodes_for_rss,
        format!(
            "{online} of {} nodes online after heartbeating",
            sizes.nodes_for_rss
        ),
    );
    Ok(mb(rss))
}

/// The `hero-node` binary's RSS in MB after answering a burst of battle requests.
async fn node(sizes: &Sizes, bin: &Path, dir: &Path, outcome: &mut Outcome) -> anyhow::Result<f64> {
    let super::node::Node {
        process: node,
        addr,
    } = super::node::Node::start(bin, dir, 1024).await?;
    let idle = node.rss()?;
    let tally = super::node::battles(addr, sizes.rss_node_requests, sizes.concurrency).await?;
    let (rss, peak) = (node.rss()?, node.peak_rss()?);
    node.stop();
    outcome.detail(format!(
        "node: {} battle requests, {} clients ({}/s), idle {:.1} MB, peak {:.1} MB",
        thousands(sizes.rss_node_requests as f64),
        sizes.concurrency,
        thousands(tally.rate()),
        mb(idle),
        mb(peak)
    ));
    memory(outcome, "node", [idle, rss, peak]);
    outcome.check(
        tally.all(200),
        format!("not every battle answered 200: {}", tally.statuses_text()),
    );
    Ok(mb(rss))
}

/// A binary's memory in the JSON: idle (before the load), at the end, and the peak, in MB.
fn memory(outcome: &mut Outcome, binary: &str, [idle, rss, peak]: [u64; 3]) {
    for (what, bytes) in [("idle", idle), ("rss", rss), ("peak", peak)] {
        outcome.set(&format!("{binary}_{what}_mb"), mb(bytes));
    }
}
