//! `hero-bench`: one scenario per target of issue 13, each printing one line with its figures
//! beside the target, on this machine: durable battles on SQLite and PostgreSQL, player
//! battles, the consensus overhead, stragglers with and without hedging, reads, one node's
//! answer rate, and memory. Battle scenarios check the books afterwards. `hero-bench soak`
//! keeps the real aggregator binary under steady load and watches its memory, disk and logs.

mod agg;
mod books;
mod db;
mod lean;
mod players;
mod proc;
mod report;
mod scenarios;
mod soak;
mod threads;

use std::path::PathBuf;

use clap::Parser;

use scenarios::{Scenario, Sizes};

#[derive(Debug, Parser)]
#[command(
    name = "hero-bench",
    about = "Benchmarks for the AI Hero Battle aggregator and node: one line per scenario with \
             its figures and target (`--scenario` picks some), or `soak` for a long run",
    after_help = "Aggregators and the nodes of `node` and `rss` run as child processes from the release \
                  binaries beside this one: cargo build --release -p hero-bench -p \
                  hero-aggregator -p hero-node. The exit status is non-zero only when a \
                  correctness check failed or a scenario could not run or measure."
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Database for `soak` [default: a fresh SQLite file in a temp folder]. The scenarios make
    /// their own: a fresh SQLite file, or a fresh database on --postgres-url.
    #[arg(
        long,
        env = "HERO_BENCH_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// Scenarios to run, comma-separated [default: all, in this order].
    #[arg(long, value_enum, value_delimiter = ',')]
    scenario: Vec<Scenario>,
    /// Print one JSON object per scenario on stdout (JSON Lines); the summary lines then go
    /// to stderr.
    #[arg(long)]
    json: bool,
    /// The aggregator binary [default: `hero-aggregator` beside this binary].
    #[arg(long)]
    aggregator_bin: Option<PathBuf>,
    /// The node binary for `node` and `rss` [default: `hero-node` beside this binary].
    #[arg(long)]
    node_bin: Option<PathBuf>,
    #[command(flatten)]
    sizes: Sizes,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// N minutes of steady load on the real `hero-aggregator` binary (3 local nodes): prints
    /// RSS, battles, database and log growth every interval, then memory drift after
    /// warm-up, bytes per battle on disk and log bytes per battle, and checks the books.
    Soak(soak::SoakArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("hero-bench-{}", uuid::Uuid::new_v4().simple()));
    if let Some(Command::Soak(soak)) = &args.command {
        let db_url = args
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}/bench.db", dir.display()));
        let outcome = soak::run(soak, &db_url, &dir).await;
        // A failed soak keeps its folder (the aggregator's log) for a look.
        if outcome.is_ok() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        return outcome;
    }
    let chosen = if args.scenario.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        args.scenario.clone()
    };
    let bins = scenarios::Bins {
        aggregator: proc::binary(args.aggregator_bin.as_ref(), "hero-aggregator"),
        node: proc::binary(args.node_bin.as_ref(), "hero-node"),
    };
    eprintln!(
        "hero-bench on {} core(s): {} scenario(s); scratch folder {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        chosen.len(),
        dir.display()
    );
    let started = std::time::Instant::now();
    let mut failed = Vec::new();
    for (i, scenario) in chosen.into_iter().enumerate() {
        if i > 0 {
            // What the previous scenario left to the kernel (dirty pages of its database, a
            // server's exit) is done before the next one measures.
            let _ = std::process::Command::new("sync").status();
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        let outcome = scenarios::run(scenario, &args.sizes, &bins, &dir).await;
        if args.json {
            eprintln!("{}", outcome.line());
            println!("{}", outcome.to_json());
        } else {
            println!("{}", outcome.line());
        }
        if outcome.failed() {
            failed.push(outcome.scenario);
        }
    }
    eprintln!(
        "hero-bench: {:.0} s in all",
        started.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(());
    }
    eprintln!(
        "hero-bench: {} failed a check or could not run or measure (logs kept in {})",
        failed.join(", "),
        dir.display()
    );
    std::process::exit(1)
}
