//! `Config`: the aggregator's settings as typed sections, one per domain. Built from the
//! command line by `cli::ServeArgs::into_config`, which checks them and fills in what flags
//! imply; nothing below the binary reads flags.

use std::net::SocketAddr;

use crate::auth::AuthArgs;
use crate::auth::admin::AdminSettings;
use crate::battles::WorkerSettings;
use crate::consensus::{ConsensusSettings, FallbackSettings};
use crate::db::DbSettings;
use crate::game::GameArgs;
use crate::http::net::NetArgs;
use crate::nodes::NodesPolicy;

#[derive(Debug, Clone)]
pub struct Config {
    /// Where the HTTP API listens.
    pub listen: SocketAddr,
    pub database: DbSettings,
    /// Who may call admin endpoints.
    pub admin: AdminSettings,
    /// Who may join the network, how nodes are judged, local nodes.
    pub nodes: NodesPolicy,
    /// k, timeouts, replacements and shadow seats of a consensus round.
    pub consensus: ConsensusSettings,
    /// Leases, attempts and concurrency of the battle worker.
    pub worker: WorkerSettings,
    /// What generates a battle without quorum, and character text.
    pub fallback: FallbackSettings,
    /// Player logins: token keys, lifetimes, rate limits.
    pub auth: AuthArgs,
    /// The game's economy.
    pub game: GameArgs,
    /// Connection caps, timeouts, per-address limits, trusted proxies.
    pub net: NetArgs,
    /// Times of scheduled battles, bet limits, the house cut, suspicious patterns.
    pub ladder: crate::ladder::LadderArgs,
    /// Whether this process runs the scheduler, tick, catch-up window, lease, schedules.
    pub scheduler: crate::scheduler::SchedulerSettings,
    /// What the `cleanup` task deletes, and when it is old enough.
    pub retention: crate::scheduler::cleanup::Retention,
    /// Live-event connections served at once.
    pub live_connections: usize,
    /// How often a live WebSocket checks its token again.
    pub live_token_recheck: std::time::Duration,
    /// How much is served from memory.
    pub reads: ReadCaches,
}

/// In-memory caches of answers that do not change (settled battles) or may be a moment old
/// (the leaderboard).
#[derive(Debug, Clone)]
pub struct ReadCaches {
    /// Bytes of settled battles kept; 0 turns the cache off.
    pub battle_cache_bytes: u64,
    /// How long a leaderboard page is served from memory; zero turns it off.
    pub leaderboard_ttl: std::time::Duration,
}
