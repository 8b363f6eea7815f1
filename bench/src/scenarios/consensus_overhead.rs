//! consensus-overhead: admin battles paced at a steady rate (three local Sim nodes, SQLite);
//! p50 and p99 of the time from the quorum-th node's answer to the written verdict, read from
//! the aggregator's histogram `hero_consensus_overhead_seconds` on `/metrics` over the run.

use super::stage::{self, Stage};
use super::{BATTLE_FLAGS, Ctx};
use crate::agg;
use crate::db::Fresh;
use crate::lean::{self, Plan};
use crate::report::{self, Outcome, thousands};

pub const METRIC: &str = "hero_consensus_overhead_seconds";

pub async fn run(ctx: &Ctx<'_>, outcome: &mut Outcome) -> anyhow::Result<()> {
    let sizes = ctx.sizes;
    anyhow::ensure!(
        sizes.overhead_rate > 0.0 && sizes.overhead_secs > 0.0,
        "--overhead-rate and --overhead-secs must be positive"
    );
    let fresh = Fresh::sqlite(&ctx.dir)?;
    let aggregator = ctx.bins.aggregator()?;
    let mut stage = Stage::start(aggregator, &ctx.dir, &fresh, 3, &BATTLE_FLAGS).await?;
    let before = stage.aggregator.metrics().await?;
    let total = (sizes.overhead_rate * sizes.overhead_secs).round() as u64;
    let plan = Plan::count(total, sizes.concurrency).paced(sizes.overhead_rate);
    stage.load_begins()?;
    let tally = lean::drive(stage.aggregator.addr, plan, agg::admin_battles()).await?;
    stage.settle(outcome).await?;
    let after = stage.aggregator.metrics().await?;
    stage.stop().await;

    let buckets = report::since(
        &report::histogram(&after, METRIC),
        &report::histogram(&before, METRIC),
    );
    let observed = buckets.last().map_or(0.0, |b| b.1);
    match (
        report::quantile(&buckets, 0.5),
        report::quantile(&buckets, 0.99),
    ) {
        (Some(p50), Some(p99)) => {
            outcome.figures = format!("p50 {}, p99 {}", p50.ms_text(), p99.ms_text());
            outcome.set("p50_ms", p50.seconds() * 1e3);
            outcome.set("p99_ms", p99.seconds() * 1e3);
            outcome.set(
                "p99_above_last_bucket",
                matches!(p99, report::Quantile::Above(_)),
            );
        }
        _ => {
            outcome.figures = "n/a".into();
            outcome.unmeasured.push(format!(
                "/metrics has no {METRIC} histogram with observations (not in this aggregator yet?)"
            ));
        }
    }
    let first_bound = buckets.first().map_or(f64::NAN, |b| b.0 * 1e3);
    outcome.details.insert(
        0,
        format!(
            "{} battles paced at {}/s, {} verdicts observed, first bucket ≤ {first_bound} ms",
            thousands(total as f64),
            thousands(sizes.overhead_rate),
            thousands(observed)
        ),
    );
    outcome.set("observations", observed);
    outcome.set("buckets", report::buckets_json(&buckets));
    stage::created(outcome, &tally, 202);
    Ok(())
}
