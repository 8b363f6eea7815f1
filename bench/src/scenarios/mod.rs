//! The scenarios, one per target of issue 13, and the flags that size them.

mod consensus_overhead;
mod durable;
mod fleet;
mod latency;
mod node;
mod player_battles;
mod reads;
mod rss;
mod stage;
mod stragglers;

use std::path::{Path, PathBuf};

use crate::report::Outcome;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    DurableSqlite,
    DurablePostgres,
    PlayerBattles,
    ConsensusOverhead,
    Stragglers,
    Reads,
    Node,
    Rss,
}

impl Scenario {
    pub const ALL: [Scenario; 8] = [
        Scenario::DurableSqlite,
        Scenario::DurablePostgres,
        Scenario::PlayerBattles,
        Scenario::ConsensusOverhead,
        Scenario::Stragglers,
        Scenario::Reads,
        Scenario::Node,
        Scenario::Rss,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::DurableSqlite => "durable-sqlite",
            Scenario::DurablePostgres => "durable-postgres",
            Scenario::PlayerBattles => "player-battles",
            Scenario::ConsensusOverhead => "consensus-overhead",
            Scenario::Stragglers => "stragglers",
            Scenario::Reads => "reads",
            Scenario::Node => "node",
            Scenario::Rss => "rss",
        }
    }

    pub fn target(self) -> &'static str {
        match self {
            Scenario::DurableSqlite => "≥ 5,000/s",
            Scenario::DurablePostgres => "≥ 3,000/s",
            Scenario::PlayerBattles => "≥ 2,000/s",
            Scenario::ConsensusOverhead => "p99 ≤ 1 ms",
            Scenario::Stragglers => "settle p99 ≤ node p95 + 10 ms, ≤ 5% extra calls",
            Scenario::Reads => "≥ 20,000/s, p99 ≤ 5 ms",
            Scenario::Node => "≥ 50,000/s",
            Scenario::Rss => "aggregator ≤ 50 MB; node ≤ 15 MB",
        }
    }
}

/// The release binaries the scenarios start (an error says how to build a missing one).
pub struct Bins {
    pub aggregator: anyhow::Result<PathBuf>,
    pub node: anyhow::Result<PathBuf>,
}

impl Bins {
    pub fn aggregator(&self) -> anyhow::Result<&Path> {
        self.aggregator
            .as_deref()
            .map_err(|e| anyhow::anyhow!("{e:#}"))
    }

    pub fn node(&self) -> anyhow::Result<&Path> {
        self.node.as_deref().map_err(|e| anyhow::anyhow!("{e:#}"))
    }
}

/// Sizes, rates and models of the scenarios.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Scenario sizes")]
pub struct Sizes {
    /// Concurrent clients creating battles (durable-*, player-battles) and calling the node
    /// (node, rss).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Admin battles created by durable-sqlite and durable-postgres.
    #[arg(long, default_value_t = 10_000)]
    pub battles: u64,
    /// PostgreSQL server for durable-postgres: a fresh database is created on it for the run
    /// and dropped afterwards.
    #[arg(
        long,
        env = "HERO_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        hide_env_values = true
    )]
    pub postgres_url: String,
    /// Player battles created by player-battles.
    #[arg(long, default_value_t = 5_000)]
    pub player_battles: u64,
    /// Guest players (one character each) of player-battles and reads.
    #[arg(long, default_value_t = 200)]
    pub players: u64,
    /// Admin battles per second created by consensus-overhead.
    #[arg(long, default_value_t = 1_000.0)]
    pub overhead_rate: f64,
    /// Seconds consensus-overhead creates battles for.
    #[arg(long, default_value_t = 10.0)]
    pub overhead_secs: f64,
    /// Battles of each stragglers pass (hedging off, then on).
    #[arg(long, default_value_t = 3_000)]
    pub straggler_battles: u64,
    /// Battles per second of each stragglers pass.
    #[arg(long, default_value_t = 200.0)]
    pub straggler_rate: f64,
    /// Nodes of stragglers (k = 3 of them are asked per battle).
    #[arg(long, default_value_t = 5)]
    pub straggler_nodes: usize,
    /// Median answer time of a stragglers node (lognormal), in milliseconds.
    #[arg(long, default_value_t = 20.0)]
    pub node_median_ms: f64,
    /// Sigma of the lognormal answer time (the spread of ln(time)).
    #[arg(long, default_value_t = 0.5)]
    pub node_sigma: f64,
    /// Share of answers, in percent, that straggle.
    #[arg(long, default_value_t = 2.0)]
    pub straggler_percent: f64,
    /// How many times slower a straggling answer is.
    #[arg(long, default_value_t = 10.0)]
    pub straggler_factor: f64,
    /// Keep-alive connections of reads.
    #[arg(long, default_value_t = 32)]
    pub read_connections: usize,
    /// Seconds of each reads pass (battles, leaderboard, battles with If-None-Match).
    #[arg(long, default_value_t = 5.0)]
    pub read_secs: f64,
    /// Settled battles reads cycles over.
    #[arg(long, default_value_t = 1_000)]
    pub read_battles: u64,
    /// Requests sent to the `hero-node` binary (Sim engine) by node.
    #[arg(long, default_value_t = 50_000)]
    pub node_requests: u64,
    /// Nodes registered (signed) and heartbeating with the aggregator of rss.
    #[arg(long, default_value_t = 10_000)]
    pub nodes_for_rss: u64,
    /// Seconds the rss nodes heartbeat (at the interval the aggregator asks for, spread out)
    /// before the aggregator's memory is read.
    #[arg(long, default_value_t = 25.0)]
    pub rss_heartbeat_secs: f64,
    /// `POST /generate_battle` requests sent to the `hero-node` binary of rss before its
    /// memory is read.
    #[arg(long, default_value_t = 20_000)]
    pub rss_node_requests: u64,
}

/// What a scenario runs with: its sizes, the binaries, and a folder of its own.
pub struct Ctx<'a> {
    pub sizes: &'a Sizes,
    pub bins: &'a Bins,
    pub dir: PathBuf,
}

/// Runs one scenario in a folder of its own under `dir`.
pub async fn run(scenario: Scenario, sizes: &Sizes, bins: &Bins, dir: &Path) -> Outcome {
    let ctx = Ctx {
        sizes,
        bins,
        dir: dir.join(scenario.name()),
    };
    let (name, target) = (scenario.name(), scenario.target());
    let mut outcome = Outcome::new(name, target);
    let out = &mut outcome;
    let ran = match scenario {
        Scenario::DurableSqlite => durable::run(&ctx, false, out).await,
        Scenario::DurablePostgres => durable::run(&ctx, true, out).await,
        Scenario::PlayerBattles => player_battles::run(&ctx, out).await,
        Scenario::ConsensusOverhead => consensus_overhead::run(&ctx, out).await,
        Scenario::Stragglers => stragglers::run(&ctx, out).await,
        Scenario::Reads => reads::run(&ctx, out).await,
        Scenario::Node => node::run(&ctx, out).await,
        Scenario::Rss => rss::run(&ctx, out).await,
    };
    match ran {
        Ok(()) => outcome,
        Err(error) => Outcome::could_not_run(name, target, &error),
    }
}

/// Flags every battle scenario gives its aggregator: room for many battles in flight.
pub const BATTLE_FLAGS: [&str; 4] = ["--battle-concurrency", "512", "--db-max-connections", "16"];
