//! player-battles: battles started by guest players (`POST /api/v1/battles`: matchmaking,
//! energy spent through the ledger, rewards paid with the verdict) created as fast as the
//! clients go and settled by three local Sim nodes, on a fresh SQLite file.

use super::Ctx;
use super::stage::{self, Stage};
use crate::lean::{self, Plan};
use crate::report::{Outcome, thousands};

pub async fn run(ctx: &Ctx<'_>, outcome: &mut Outcome) -> anyhow::Result<()> {
    let sizes = ctx.sizes;
    let (mut stage, players) = Stage::with_players(ctx).await?;
    outcome.detail(format!(
        "{} battles by {} players, {} clients",
        thousands(sizes.player_battles as f64),
        sizes.players,
        sizes.concurrency
    ));
    let plan = Plan::count(sizes.player_battles, sizes.concurrency);
    stage.load_begins()?;
    let tally = lean::drive(stage.aggregator.addr, plan, players.battles()).await?;
    let settled = stage.settle(outcome).await?;
    stage.stop().await;
    stage::throughput(outcome, &settled, &tally);
    Ok(())
}
