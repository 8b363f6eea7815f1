//! reads: `GET /api/v1/battles/{id}` cycling over settled battles and `GET
//! /api/v1/leaderboard`, each for a while over many keep-alive connections; then the battles
//! again with the `If-None-Match` of a first read (a 304 counts as a served read). The
//! battles are player battles between guests with a character each (SQLite, three local
//! nodes), so the leaderboard has standings.

use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use hyper::header::ETAG;

use super::Ctx;
use super::stage::{self, Stage};
use crate::lean::{self, Plan, Tally};
use crate::proc::Cpu;
use crate::report::{Outcome, Summary, thousands};

pub async fn run(ctx: &Ctx<'_>, outcome: &mut Outcome) -> anyhow::Result<()> {
    let sizes = ctx.sizes;
    let (stage, players) = Stage::with_players(ctx).await?;
    let addr = stage.aggregator.addr;
    let created = lean::drive(addr, Plan::count(sizes.read_battles, 64), players.battles()).await?;
    let mut setup = Outcome::new(outcome.scenario, outcome.target);
    stage::created(&mut setup, &created, 202);
    stage.settle(&mut setup).await?;
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM battles ORDER BY random()")
        .fetch_all(&stage.pool)
        .await?;
    anyhow::ensure!(!ids.is_empty(), "no battles to read");
    let paths = Arc::new(
        ids.iter()
            .map(|id| format!("/api/v1/battles/{id}"))
            .collect::<Vec<_>>(),
    );

    let timed = Plan::timed(
        Duration::from_secs_f64(sizes.read_secs),
        sizes.read_connections,
    );
    let cycle = Arc::clone(&paths);
    let pid = stage.aggregator.process.pid();
    let cpu = Cpu::start(pid)?;
    let battles = lean::drive(addr, timed, move |i| {
        let path = &cycle[(i % cycle.len() as u64) as usize];
        lean::request(Method::GET, path, None, None)
    })
    .await?;
    cpu.report(outcome, "battles")?;
    let cpu = Cpu::start(pid)?;
    let board = lean::drive(addr, timed, |_| {
        lean::request(Method::GET, "/api/v1/leaderboard", None, None)
    })
    .await?;
    cpu.report(outcome, "leaderboard")?;
    let revalidated = revalidate(addr, &paths, timed, outcome).await?;
    stage.stop().await;

    let (b, l) = (
        Summary::of(battles.latencies.clone()),
        Summary::of(board.latencies.clone()),
    );
    outcome.figures = format!(
        "battles {}/s p99 {:.1} ms; leaderboard {}/s p99 {:.1} ms",
        thousands(battles.rate()),
        b.ms(0.99),
        thousands(board.rate()),
        l.ms(0.99)
    );
    outcome.absorb("set-up", setup);
    outcome.details.insert(
        0,
        format!(
            "{} battles, {} players, {} connections, {} s a pass",
            thousands(ids.len() as f64),
            sizes.players,
            sizes.read_connections,
            sizes.read_secs
        ),
    );
    for (name, tally, summary) in [("battles", &battles, &b), ("leaderboard", &board, &l)] {
        outcome.set(&format!("{name}_per_sec"), tally.rate());
        outcome.set(&format!("{name}_p50_ms"), summary.ms(0.5));
        outcome.set(&format!("{name}_p99_ms"), summary.ms(0.99));
        outcome.check(
            tally.all(200),
            format!(
                "not every {name} read answered 200: {}",
                tally.statuses_text()
            ),
        );
    }
    if let Some(tally) = revalidated {
        outcome.check(
            tally.failures == 0
                && tally.with_status(200) + tally.with_status(304) == tally.answered(),
            format!(
                "not every If-None-Match read answered 200 or 304: {}",
                tally.statuses_text()
            ),
        );
    }
    Ok(())
}

/// Reads every battle once for its `ETag`, then reads them again with `If-None-Match` for
/// as long as `plan` says; `None` when the battles carry no `ETag`.
async fn revalidate(
    addr: std::net::SocketAddr,
    paths: &Arc<Vec<String>>,
    plan: Plan,
    outcome: &mut Outcome,
) -> anyhow::Result<Option<Tally>> {
    let listed = Arc::clone(paths);
    let first = lean::drive(
        addr,
        Plan::count(paths.len() as u64, plan.connections).keeping_answers(),
        move |i| lean::request(Method::GET, &listed[i as usize], None, None),
    )
    .await?;
    let tagged: Vec<(String, String)> = first
        .answers
        .iter()
        .filter_map(|(i, answer)| {
            let tag = answer.headers.get(ETAG)?.to_str().ok()?;
            Some((paths[*i as usize].clone(), tag.to_owned()))
        })
        .collect();
    if tagged.is_empty() {
        outcome.detail("If-None-Match pass skipped: battles carry no ETag");
        return Ok(None);
    }
    let tagged = Arc::new(tagged);
    let cycle = Arc::clone(&tagged);
    let tally = lean::drive(addr, plan, move |i| {
        let (path, tag) = &cycle[(i % cycle.len() as u64) as usize];
        lean::with_header(
            lean::request(Method::GET, path, None, None)?,
            "if-none-match",
            tag,
        )
    })
    .await?;
    let summary = Summary::of(tally.latencies.clone());
    outcome.detail(format!(
        "If-None-Match: {}/s p99 {:.1} ms ({})",
        thousands(tally.rate()),
        summary.ms(0.99),
        tally.statuses_text()
    ));
    outcome.set("revalidated_per_sec", tally.rate());
    outcome.set("revalidated_p99_ms", summary.ms(0.99));
    outcome.set("revalidated_200", tally.with_status(200));
    outcome.set("revalidated_304", tally.with_status(304));
    Ok(Some(tally))
}
