//! Command line: every setting is a flag with a `HERO_*` environment variable. This module
//! only parses; [`ServeArgs::into_config`] turns the flags into the typed [`Config`].

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::auth::admin::AdminSettings;
use crate::battles::WorkerSettings;
use crate::config::Config;
use crate::consensus::{ConsensusSettings, FallbackSettings};
use crate::db::DbSettings;
use crate::nodes::NodesPolicy;
use crate::nodes::maintenance::Schedule;

#[derive(Debug, Parser)]
#[command(
    name = "hero-aggregator",
    version,
    about = "AI Hero Battle aggregator: registers AI nodes, settles battles by majority vote, serves the game API",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings for `serve`, which also runs when no subcommand is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the aggregator (the default).
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit.
    Migrate(DatabaseArgs),
    /// Manage node operators (accounts with their own enrollment tokens), e.g. to bootstrap
    /// a network before any admin token is in use.
    #[command(subcommand)]
    Operators(OperatorsCommand),
    /// Manage admin accounts: personal admin tokens, each use logged with the admin's name.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Manage the keys that sign player access tokens (when kept in the database).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Write a consistent copy of the database to a new file while the aggregator keeps
    /// running. SQLite: `VACUUM INTO` (a SQLite file). PostgreSQL: `pg_dump --format=custom`
    /// (needs `pg_dump` on PATH).
    Backup {
        /// The backup file to write; it must not exist.
        #[arg(long)]
        to: std::path::PathBuf,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Restore a file written by `backup` into the database, then apply migrations. Stop
    /// every aggregator on the database first. PostgreSQL needs `pg_restore` on PATH.
    Restore {
        /// The backup file to read.
        #[arg(long)]
        from: std::path::PathBuf,
        /// Overwrite a database that already holds the aggregator's tables.
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin and print its token (shown only this once; stored hashed).
    Create {
        /// Admin name: letters, digits, '-', '_', '.'.
        name: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List admins (never their tokens).
    List {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Revoke an admin's token at once (every replica refuses it from the next request).
    Revoke {
        name: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key current. The current key stays accepted as the previous one, so
    /// nobody is logged out; the key before it is dropped (its tokens have long expired).
    /// Running replicas pick the new key up on their own.
    Rotate {
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum OperatorsCommand {
    /// Create an operator and print its enrollment token (shown only this once).
    Create {
        /// Operator name: letters, digits, '-', '_', '.'.
        name: String,
        /// Most nodes the operator may have registered at once.
        #[arg(long, default_value_t = 10)]
        max_nodes: i64,
        /// Largest selection weight of any of its nodes (what a node asks for is clamped).
        #[arg(long, default_value_t = 1)]
        max_weight: i64,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List operators (never their tokens).
    List {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Revoke an operator's token: it can register no more nodes, and its nodes leave.
    Revoke {
        name: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

pub use crate::telemetry::LogFormat;

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite://path/to/file.db` (created if missing) or `postgres://user@host/db`.
    #[arg(
        long,
        env = "HERO_DATABASE_URL",
        default_value = "sqlite://data/hero.db",
        // It may hold a password: `--help` must not print it from the environment.
        hide_env_values = true
    )]
    pub database_url: String,
    /// Largest number of pooled database connections.
    #[arg(long, env = "HERO_DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub db_max_connections: u32,
}

#[derive(Clone, Args)]
pub struct ServeArgs {
    /// Address the HTTP API listens on (port 0 picks a free port).
    #[arg(long, env = "HERO_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Token for admin endpoints (`Authorization: Bearer ...`). Admin endpoints are off without it,
    /// except with --local-nodes, which generates one and prints it.
    #[arg(long, env = "HERO_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Shared token nodes must present to register in an open network (no operator accounts).
    /// Once an operator exists, only operators' own tokens are accepted.
    #[arg(long, env = "HERO_ENROLLMENT_TOKEN", hide_env_values = true)]
    pub enrollment_token: Option<String>,
    /// Accept node URLs on loopback and private networks (LAN or local runs). Link-local and
    /// cloud metadata addresses are always refused.
    #[arg(long, env = "HERO_ALLOW_PRIVATE_NODE_URLS")]
    pub allow_private_node_urls: bool,
    /// Accept seed-style nodes that register no Ed25519 key (and heartbeat without a token).
    /// They never replace a signed node, but their votes and registrations can be forged by
    /// anyone on the path; for trusted networks only.
    #[arg(long, env = "HERO_ALLOW_UNSIGNED_NODES")]
    pub allow_unsigned_nodes: bool,
    /// Verdicts a new node must agree with before its votes count; until then it votes in the
    /// shadow (recorded, compared, never counted). 0 turns probation off.
    #[arg(long, env = "HERO_PROBATION_VOTES", default_value_t = 20)]
    pub probation_votes: u64,
    /// Nodes on probation asked per battle beside the k counting seats.
    #[arg(long, env = "HERO_SHADOW_SEATS", default_value_t = 1)]
    pub shadow_seats: usize,
    /// Seconds after which a node that left or stopped heartbeating is dropped from memory
    /// (its row and votes stay; it comes back when it registers or heartbeats again).
    #[arg(long, env = "HERO_NODE_RETENTION_SECS", default_value_t = 86_400,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub node_retention_secs: u64,
    /// Allow --quorum-size 1, where a single node decides every battle. Development only.
    #[arg(long, env = "HERO_INSECURE_SINGLE_NODE")]
    pub insecure_single_node: bool,
    /// Connection caps, timeouts, per-address limits, trusted proxies.
    #[command(flatten)]
    pub net: crate::http::net::NetArgs,
    /// Seconds between node heartbeats (told to each node when it registers).
    #[arg(long, env = "HERO_HEARTBEAT_INTERVAL_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub heartbeat_interval_secs: u64,
    /// Heartbeats a node may miss before it counts as offline.
    #[arg(long, env = "HERO_MISSED_HEARTBEATS", default_value_t = 3,
          value_parser = clap::value_parser!(u64).range(1..=100))]
    pub missed_heartbeats: u64,
    /// Nodes selected per battle (k, odd, at least 3). A winner needs a strict majority of k.
    #[arg(long, env = "HERO_QUORUM_SIZE", default_value_t = 3)]
    pub quorum_size: usize,
    /// Longest one node may take to answer, in milliseconds.
    #[arg(long, env = "HERO_NODE_TIMEOUT_MS", default_value_t = 20_000)]
    pub node_timeout_ms: u64,
    /// Longest a consensus round may take before falling back, in milliseconds.
    #[arg(long, env = "HERO_CONSENSUS_DEADLINE_MS", default_value_t = 30_000)]
    pub consensus_deadline_ms: u64,
    /// Backup nodes that may replace failed ones within one battle.
    #[arg(long, env = "HERO_MAX_REPLACEMENTS", default_value_t = 3)]
    pub max_replacements: usize,
    /// Hedged calls: a battle still without a verdict after this percentile of the pool's
    /// recent answer times asks one backup node for the seat of a node still thinking; the
    /// first valid answer takes the seat and the other call is cancelled. 0 turns it off.
    #[arg(long, env = "HERO_HEDGE_PERCENTILE", default_value_t = 95.0,
          value_parser = percent)]
    pub hedge_percentile: f64,
    /// Most hedged calls, in percent of all node calls.
    #[arg(long, env = "HERO_HEDGE_BUDGET_PERCENT", default_value_t = 5.0,
          value_parser = percent)]
    pub hedge_budget_percent: f64,
    /// How long a claimed battle stays leased to this process; after that another worker
    /// (or this one after a restart) takes it over. Must exceed the consensus deadline.
    #[arg(long, env = "HERO_BATTLE_LEASE_MS", default_value_t = 60_000)]
    pub battle_lease_ms: u64,
    /// Battles settled concurrently by this process; 0 makes it an API-only replica that
    /// settles none (other replicas on the same database do).
    #[arg(long, env = "HERO_BATTLE_CONCURRENCY", default_value_t = 256)]
    pub battle_concurrency: usize,
    /// Attempts before a battle that keeps failing is marked ERROR.
    #[arg(long, env = "HERO_MAX_BATTLE_ATTEMPTS", default_value_t = 5)]
    pub max_battle_attempts: i64,
    /// Live-event connections (SSE and WebSocket) this process serves at once; more are
    /// refused with 503.
    #[arg(long, env = "HERO_LIVE_CONNECTIONS", default_value_t = 10_000)]
    pub live_connections: usize,
    /// How often a live WebSocket checks its token again, in seconds: after a logout, an
    /// expiry or `admin revoke`, its private topics (`mine`, `all`) stop within this.
    #[arg(long, env = "HERO_LIVE_TOKEN_RECHECK_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub live_token_recheck_secs: u64,
    /// Megabytes of settled battles served from memory (`GET /api/v1/battles/{id}` of a battle
    /// whose late votes are all in); 0 turns the cache off.
    #[arg(long, env = "HERO_BATTLE_CACHE_MB", default_value_t = 8,
          value_parser = clap::value_parser!(u64).range(0..=65_536))]
    pub battle_cache_mb: u64,
    /// Milliseconds a leaderboard page is served from memory before it is read again; 0
    /// reads it on every request.
    #[arg(long, env = "HERO_LEADERBOARD_CACHE_MS", default_value_t = 1_000,
          value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub leaderboard_cache_ms: u64,
    /// Milliseconds between batched writes of heartbeats and node counters.
    #[arg(long, env = "HERO_FLUSH_INTERVAL_MS", default_value_t = 2_000)]
    pub flush_interval_ms: u64,
    /// Milliseconds between reloads of nodes registered through other replicas.
    #[arg(long, env = "HERO_SYNC_INTERVAL_MS", default_value_t = 5_000)]
    pub sync_interval_ms: u64,
    /// Milliseconds between polls for battles whose lease expired.
    #[arg(long, env = "HERO_POLL_INTERVAL_MS", default_value_t = 500)]
    pub poll_interval_ms: u64,
    /// Seconds between `info` log lines summing up the battles settled (how many, by quorum,
    /// by fallback, in error); each battle's own line is at `debug`. Silent when none were.
    #[arg(long, env = "HERO_LOG_SUMMARY_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub log_summary_secs: u64,
    /// Start this many local Sim nodes in this process; they register over real HTTP.
    /// Implies --allow-private-node-urls.
    #[arg(long, env = "HERO_LOCAL_NODES", default_value_t = 0)]
    pub local_nodes: usize,
    /// Gemini API key for the local fallback and character summoning. With it, a battle
    /// without quorum is generated by Gemini, and by the Sim engine when Gemini fails; without
    /// it, by the Sim engine. Never logged.
    #[arg(long, env = "HERO_GEMINI_API_KEY", hide_env_values = true)]
    pub gemini_api_key: Option<String>,
    /// Gemini model for the fallback and summoning.
    #[arg(long, env = "HERO_GEMINI_MODEL", default_value = hero_engine::GeminiSettings::DEFAULT_MODEL)]
    pub gemini_model: String,
    /// Gemini API root; `/v1beta/models/<model>:generateContent` is appended.
    #[arg(long, env = "HERO_GEMINI_BASE_URL", default_value = hero_engine::GeminiSettings::DEFAULT_BASE_URL)]
    pub gemini_base_url: String,
    /// Seconds one Gemini call (fallback battle or summon) may take, retries included.
    #[arg(long, env = "HERO_LLM_TIMEOUT_SECS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub llm_timeout_secs: u64,
    /// Player logins: JWT key, token lifetimes, per-player rate limits.
    #[command(flatten)]
    pub auth: crate::auth::AuthArgs,
    /// The game's economy: battle cost, energy regeneration.
    #[command(flatten)]
    pub game: crate::game::GameArgs,
    /// Log format.
    #[arg(long, env = "HERO_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    // The two groups below print under their own headings in `--help`, so they come last.
    /// Ladder seasons, scheduled battles and betting.
    #[command(flatten, next_help_heading = "Ladder and betting")]
    pub ladder: crate::ladder::LadderArgs,
    /// The durable scheduler and retention.
    #[command(flatten, next_help_heading = "Scheduler and retention")]
    pub scheduler: crate::scheduler::SchedulerArgs,
}

impl std::fmt::Debug for ServeArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeArgs")
            .field("listen", &self.listen)
            .field(
                "database_url",
                &crate::db::redact(&self.database.database_url),
            )
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "enrollment_token",
                &self.enrollment_token.as_ref().map(|_| "<redacted>"),
            )
            .field("quorum_size", &self.quorum_size)
            .field("local_nodes", &self.local_nodes)
            .field(
                "gemini_api_key",
                &self.gemini_api_key.as_ref().map(|_| "<redacted>"),
            )
            .field("gemini_model", &self.gemini_model)
            .field("auth", &self.auth)
            .field("game", &self.game)
            .finish_non_exhaustive()
    }
}

impl ServeArgs {
    /// Heartbeat age after which a node counts as offline.
    fn offline_after_ms(&self) -> i64 {
        i64::try_from(self.heartbeat_interval_secs * self.missed_heartbeats * 1000)
            .unwrap_or(i64::MAX)
    }

    /// Refuses settings that cannot work, with the reason.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.quorum_size.is_multiple_of(2) {
            anyhow::bail!("--quorum-size must be odd (got {})", self.quorum_size);
        }
        if self.quorum_size < 3 && !(self.quorum_size == 1 && self.insecure_single_node) {
            anyhow::bail!(
                "--quorum-size must be at least 3, so that no single node decides a battle \
                 (got {}; --quorum-size 1 needs --insecure-single-node, for development only)",
                self.quorum_size
            );
        }
        if self.probation_votes > 0 && self.shadow_seats == 0 {
            anyhow::bail!(
                "--shadow-seats 0 with --probation-votes above 0 would keep new nodes on \
                 probation for ever: give them shadow seats, or turn probation off"
            );
        }
        if self.battle_lease_ms <= self.consensus_deadline_ms {
            anyhow::bail!("--battle-lease-ms must be larger than --consensus-deadline-ms");
        }
        if self.gemini_api_key.is_some()
            && self.battle_lease_ms
                <= self.consensus_deadline_ms + self.llm_timeout_secs.saturating_mul(1000)
        {
            anyhow::bail!(
                "--battle-lease-ms must be larger than --consensus-deadline-ms plus \
                 --llm-timeout-secs, so the Gemini fallback finishes within the lease"
            );
        }
        if self.admin_token.as_ref().is_some_and(|t| t.len() < 16) {
            anyhow::bail!("--admin-token must be at least 16 characters");
        }
        self.auth.check()?;
        self.ladder.check().map_err(anyhow::Error::msg)?;
        self.scheduler.check().map_err(anyhow::Error::msg)?;
        Ok(())
    }

    /// The checked settings as the aggregator's [`Config`], with what flags imply filled in:
    /// `--local-nodes` generates an admin token when none is given (it is printed).
    pub fn into_config(self) -> anyhow::Result<Config> {
        self.check()?;
        let millis = |ms: u64| Duration::from_millis(ms.max(10));
        let offline_after_ms = self.offline_after_ms();
        let admin_token = match self.admin_token {
            None if self.local_nodes > 0 => Some(crate::auth::secrets::new_secret()),
            token => token,
        };
        Ok(Config {
            listen: self.listen,
            database: DbSettings {
                url: self.database.database_url,
                max_connections: self.database.db_max_connections,
            },
            admin: AdminSettings { token: admin_token },
            nodes: NodesPolicy {
                enrollment_token: self.enrollment_token,
                allow_private_node_urls: self.allow_private_node_urls,
                allow_unsigned_nodes: self.allow_unsigned_nodes,
                probation_votes: self.probation_votes,
                heartbeat_interval_secs: self.heartbeat_interval_secs,
                schedule: Schedule {
                    flush_every: millis(self.flush_interval_ms),
                    sync_every: millis(self.sync_interval_ms),
                    offline_after_ms,
                    retention_ms: i64::try_from(self.node_retention_secs.saturating_mul(1000))
                        .unwrap_or(i64::MAX),
                },
                local_nodes: self.local_nodes,
            },
            consensus: ConsensusSettings {
                k: self.quorum_size,
                node_timeout: Duration::from_millis(self.node_timeout_ms),
                deadline: Duration::from_millis(self.consensus_deadline_ms),
                max_replacements: self.max_replacements,
                offline_after_ms,
                shadow_seats: self.shadow_seats,
                hedge: crate::consensus::HedgeSettings {
                    percentile: self.hedge_percentile,
                    budget: self.hedge_budget_percent / 100.0,
                },
            },
            worker: WorkerSettings {
                lease_ms: i64::try_from(self.battle_lease_ms).unwrap_or(i64::MAX),
                max_attempts: self.max_battle_attempts,
                concurrency: self.battle_concurrency,
                poll_interval: millis(self.poll_interval_ms),
                drain: Duration::from_millis(self.consensus_deadline_ms.saturating_add(5_000)),
                summary_interval: Duration::from_secs(self.log_summary_secs),
            },
            fallback: FallbackSettings::gemini(
                self.gemini_api_key.as_deref(),
                &self.gemini_base_url,
                &self.gemini_model,
                Duration::from_secs(self.llm_timeout_secs),
            ),
            auth: self.auth,
            game: self.game,
            net: self.net,
            ladder: self.ladder,
            scheduler: crate::scheduler::SchedulerSettings::from_args(&self.scheduler),
            retention: crate::scheduler::cleanup::Retention::from_args(&self.scheduler),
            live_connections: self.live_connections,
            live_token_recheck: Duration::from_secs(self.live_token_recheck_secs),
            reads: crate::config::ReadCaches {
                battle_cache_bytes: self.battle_cache_mb * 1024 * 1024,
                leaderboard_ttl: Duration::from_millis(self.leaderboard_cache_ms),
            },
        })
    }
}

/// A percentage from 0 to 100.
fn percent(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("`{s}` is not a percentage from 0 to 100")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn hedging_is_on_by_default_and_takes_percentages_only() {
        let cli = Cli::parse_from(["hero-aggregator"]);
        assert_eq!(cli.serve.hedge_percentile, 95.0);
        assert_eq!(cli.serve.hedge_budget_percent, 5.0);
        let off = Cli::parse_from(["hero-aggregator", "--hedge-percentile", "0"]);
        assert_eq!(off.serve.hedge_percentile, 0.0);
        for bad in ["101", "-1", "x", "NaN"] {
            assert!(
                Cli::try_parse_from(["hero-aggregator", "--hedge-percentile", bad]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn serve_flags_work_without_subcommand() {
        let cli = Cli::parse_from([
            "hero-aggregator",
            "--local-nodes",
            "3",
            "--quorum-size",
            "5",
        ]);
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.local_nodes, 3);
        assert!(cli.serve.check().is_ok());
        // Local nodes imply an admin token, printed at start.
        let config = cli.serve.into_config().map_err(|e| e.to_string());
        assert!(config.is_ok_and(|c| c.admin.token.is_some() && c.nodes.local_nodes == 3));
    }

    #[test]
    fn even_quorum_is_refused() {
        let cli = Cli::parse_from(["hero-aggregator", "--quorum-size", "4"]);
        assert!(cli.serve.check().is_err());
    }

    #[test]
    fn single_node_quorum_needs_the_insecure_flag() {
        let cli = Cli::parse_from(["hero-aggregator", "--quorum-size", "1"]);
        assert!(cli.serve.check().is_err());
        let cli = Cli::parse_from([
            "hero-aggregator",
            "--quorum-size",
            "1",
            "--insecure-single-node",
        ]);
        assert!(cli.serve.check().is_ok());
    }

    #[test]
    fn debug_hides_the_gemini_key() {
        let cli = Cli::parse_from(["hero-aggregator", "--gemini-api-key", "AIza-super-secret"]);
        assert!(!format!("{:?}", cli.serve).contains("super-secret"));
    }

    #[test]
    fn debug_hides_tokens() {
        let cli = Cli::parse_from([
            "hero-aggregator",
            "--admin-token",
            "super-secret-admin-token",
        ]);
        assert!(!format!("{:?}", cli.serve).contains("super-secret"));
    }
}
