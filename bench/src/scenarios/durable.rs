//! durable-sqlite and durable-postgres: durable admin battles created as fast as the clients
//! go and settled by three instant local Sim nodes, on a fresh SQLite file or a fresh
//! PostgreSQL database (dropped afterwards).

use std::path::Path;

use super::stage::{self, Stage};
use super::{BATTLE_FLAGS, Ctx, Sizes};
use crate::agg;
use crate::db::Fresh;
use crate::lean::{self, Plan};
use crate::report::{Outcome, thousands};

pub async fn run(ctx: &Ctx<'_>, postgres: bool, outcome: &mut Outcome) -> anyhow::Result<()> {
    let bin = ctx.bins.aggregator()?;
    let fresh = if postgres {
        Fresh::postgres(&ctx.sizes.postgres_url).await?
    } else {
        Fresh::sqlite(&ctx.dir)?
    };
    let measured = measure(ctx.sizes, bin, &ctx.dir, &fresh, outcome).await;
    let removed = fresh.remove().await;
    measured?;
    removed
}

async fn measure(
    sizes: &Sizes,
    bin: &Path,
    dir: &Path,
    fresh: &Fresh,
    outcome: &mut Outcome,
) -> anyhow::Result<()> {
    let mut stage = Stage::start(bin, dir, fresh, 3, &BATTLE_FLAGS).await?;
    outcome.detail(format!(
        "{} battles, {} clients",
        thousands(sizes.battles as f64),
        sizes.concurrency
    ));
    let plan = Plan::count(sizes.battles, sizes.concurrency);
    stage.load_begins()?;
    let tally = lean::drive(stage.aggregator.addr, plan, agg::admin_battles()).await?;
    let settled = stage.settle(outcome).await?;
    stage.stop().await;
    stage::throughput(outcome, &settled, &tally);
    Ok(())
}
