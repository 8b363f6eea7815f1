//! `battles::start`: the worker that settles battles, its verdict writer and late-vote
//! recorder, registered with the supervisor.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::handoff::{Handoff, Wake};
use super::{BattleWorker, LateVoteRecorder, VerdictEffects, VerdictWriter};
use crate::clock::SharedClock;
use crate::consensus::Consensus;
use crate::db::Db;
use crate::supervisor::{Stage, Supervisor};

/// Leases, attempts and concurrency of the battle worker.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// How long a claimed battle stays leased to this process.
    pub lease_ms: i64,
    /// Attempts before a battle that keeps failing is marked ERROR.
    pub max_attempts: i64,
    /// Battles settled at once by this process.
    pub concurrency: usize,
    /// Between polls for battles whose lease expired.
    pub poll_interval: Duration,
    /// Longest shutdown waits for running battles before leaving them to their lease.
    pub drain: Duration,
    /// Between `info` summaries of the battles settled (per-battle lines are `debug`).
    pub summary_interval: Duration,
}

/// What the worker needs from the other domains.
pub struct Parts {
    pub db: Db,
    pub consensus: Arc<Consensus>,
    pub clock: SharedClock,
    /// What a verdict changes besides the battle, in its transaction.
    pub effects: VerdictEffects,
    /// Agreed verdicts that end a new node's probation.
    pub probation_votes: u64,
    /// Where live events go.
    pub events: Arc<crate::events::Hub>,
    /// Told when a battle's last vote is written.
    pub cache: Arc<super::cache::BattleCache>,
}

/// What creators of battles use to reach the worker.
pub struct Started {
    /// Wakes the worker to claim battles inserted PENDING.
    pub wake: Arc<Wake>,
    /// Starts battles inserted claimed; none when this replica settles no battles.
    pub handoff: Option<Handoff>,
}

/// Starts the worker.
pub fn start(parts: Parts, settings: &WorkerSettings, supervisor: &mut Supervisor) -> Started {
    let Parts {
        db,
        consensus,
        clock,
        effects,
        probation_votes,
        events,
        cache,
    } = parts;
    let recorders = supervisor.tracker(Stage::Recorders);
    // Battles still running past the drain keep a recorder handle: do not wait for ever.
    supervisor.limit(Stage::Recorders, Duration::from_secs(5));
    supervisor.limit(Stage::Battles, settings.drain);
    let owner = format!("aggregator-{}", uuid::Uuid::new_v4());
    let wake = Arc::new(Wake::default());
    let tally = Arc::new(super::summary::Tally::default());
    supervisor.spawn(
        Stage::Background,
        super::summary::run(
            Arc::clone(&tally),
            settings.summary_interval,
            supervisor.shutdown_token(),
        ),
    );
    let worker = BattleWorker {
        late_votes: LateVoteRecorder::spawn(
            db.clone(),
            Arc::clone(&clock),
            Arc::clone(&cache),
            &recorders,
        ),
        cache,
        verdicts: VerdictWriter::spawn(
            db.clone(),
            effects,
            owner.clone(),
            Arc::clone(&clock),
            &recorders,
        ),
        db,
        consensus,
        clock,
        owner,
        lease_ms: settings.lease_ms,
        max_attempts: settings.max_attempts,
        slots: Arc::new(Semaphore::new(settings.concurrency)),
        wake: Arc::clone(&wake),
        tracker: supervisor.tracker(Stage::Battles),
        probation_votes,
        tally,
        events,
    };
    if settings.concurrency == 0 {
        tracing::info!("--battle-concurrency 0: this replica settles no battles");
        return Started {
            wake,
            handoff: None,
        };
    }
    let worker = Arc::new(worker);
    let handoff = Handoff::new(&worker, settings.concurrency, supervisor.shutdown_token());
    supervisor.spawn(
        Stage::Background,
        worker.run(settings.poll_interval, supervisor.shutdown_token()),
    );
    Started {
        wake,
        handoff: Some(handoff),
    }
}
