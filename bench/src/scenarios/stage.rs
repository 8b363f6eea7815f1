//! What every battle scenario does around its load: an aggregator on a fresh database, then
//! waiting for every battle to settle, the figures the battles' own timestamps give, and the
//! books.

use std::path::Path;
use std::time::Duration;

use super::{BATTLE_FLAGS, Ctx};
use crate::agg::Aggregator;
use crate::books::Check;
use crate::db::{self, Fresh};
use crate::players::{PLAYER_FLAGS, Players};
use crate::proc::Cpu;
use crate::report::{Outcome, Summary, thousands};

/// An aggregator on a fresh database, and a pool on that database for the checks.
pub struct Stage {
    pub aggregator: Aggregator,
    pub pool: sqlx::AnyPool,
    /// The CPU used from the start of the load, when [`Stage::load_begins`] was called.
    cpu: Option<Cpu>,
}

/// How the battles of a run settled.
pub struct Settled {
    /// Battles settled per second, from the first creation to the last verdict.
    pub per_sec: f64,
    /// Create → settled of each battle.
    pub times: Summary,
}

impl Stage {
    pub async fn start(
        bin: &Path,
        dir: &Path,
        fresh: &Fresh,
        local_nodes: usize,
        extra: &[&str],
    ) -> anyhow::Result<Stage> {
        let aggregator = Aggregator::start(bin, dir, fresh.url(), local_nodes, extra).await?;
        let pool = fresh.pool().await?;
        Ok(Stage {
            aggregator,
            pool,
            cpu: None,
        })
    }

    /// An aggregator for players (three local nodes, SQLite, the per-player and per-address
    /// limits lifted) with `--players` guests signed up, a character each.
    pub async fn with_players(ctx: &Ctx<'_>) -> anyhow::Result<(Stage, Players)> {
        let fresh = Fresh::sqlite(&ctx.dir)?;
        let flags = [&BATTLE_FLAGS[..], &PLAYER_FLAGS[..]].concat();
        let stage = Stage::start(ctx.bins.aggregator()?, &ctx.dir, &fresh, 3, &flags).await?;
        let players = Players::sign_up(stage.aggregator.addr, ctx.sizes.players).await?;
        Ok((stage, players))
    }

    /// Marks the start of the load: [`Stage::settle`] then says what CPU the aggregator and
    /// the client used until the last battle settled.
    pub fn load_begins(&mut self) -> anyhow::Result<()> {
        self.cpu = Some(Cpu::start(self.aggregator.process.pid())?);
        Ok(())
    }

    /// Waits for every battle to settle (five minutes at most), then checks the books into
    /// `outcome` and says how fast and how soon they settled.
    pub async fn settle(&self, outcome: &mut Outcome) -> anyhow::Result<Settled> {
        db::wait_settled(&self.pool, Duration::from_secs(300)).await?;
        let mut threads = None;
        if let Some(cpu) = &self.cpu {
            cpu.report(outcome, "load")?;
            threads = Some(cpu.threads_used());
        }
        // Votes that come after a verdict are written in batches a moment later.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let check = Check::run(&self.pool, 0).await?;
        let (first_created, last_settled) = db::first_created_last_settled(&self.pool).await?;
        let per_sec = check.settled as f64 / ((last_settled - first_created).max(1) as f64 / 1e3);
        let times = Summary::of(db::settle_times(&self.pool).await?);
        outcome.detail(format!(
            "settle p50 {:.0} ms p99 {:.0} ms",
            times.ms(0.5),
            times.ms(0.99)
        ));
        outcome.set("settled_per_sec", per_sec);
        outcome.set("settle_p50_ms", times.ms(0.5));
        outcome.set("settle_p99_ms", times.ms(0.99));
        check.report(outcome);
        if let Some((used, secs)) = threads {
            let (line, json) = crate::threads::summary(&used, secs, check.settled.max(0) as u64);
            outcome.detail(format!("load threads: {line}"));
            outcome.set("load_threads", json);
        }
        Ok(Settled { per_sec, times })
    }

    /// Stops the aggregator and closes the pool.
    pub async fn stop(self) {
        self.pool.close().await;
        self.aggregator.stop();
    }
}

/// The figure of a throughput scenario (battles settled per second) and how creation went.
pub fn throughput(outcome: &mut Outcome, settled: &Settled, tally: &crate::lean::Tally) {
    outcome.figures = format!("{} battles/s", thousands(settled.per_sec));
    created(outcome, tally, 202);
}

/// Says how creation went: the rate the clients got their answers at, and any answer that was
/// not `expected` (a failed check: every battle asked for must be created).
pub fn created(outcome: &mut Outcome, tally: &crate::lean::Tally, expected: u16) {
    outcome.detail(format!("created {}/s", thousands(tally.rate())));
    outcome.set("created_per_sec", tally.rate());
    outcome.set("create_statuses", tally.statuses_text());
    outcome.check(
        tally.all(expected),
        format!(
            "not every create answered {expected}: {}",
            tally.statuses_text()
        ),
    );
}
