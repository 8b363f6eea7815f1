//! The battle worker: claims battles with a lease, runs consensus, writes the verdict once,
//! then records the votes that arrive late and feeds outcomes back to node reputation.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use hero_protocol::BattleRequest;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::results::Prepared;
use super::store::{self, BattleJob};
use crate::clock::SharedClock;
use crate::consensus::{Consensus, RoundWatcher, Verdict, Vote};
use crate::db::Db;
use crate::http::metrics::{BATTLES_SETTLED, CONSENSUS_OVERHEAD, SETTLE_DURATION, VOTES};
use crate::nodes::reputation::VoteOutcome;

#[derive(Clone)]
pub struct BattleWorker {
    pub db: Db,
    pub consensus: Arc<Consensus>,
    pub clock: SharedClock,
    /// This process's lease owner name.
    pub owner: String,
    pub lease_ms: i64,
    pub max_attempts: i64,
    pub slots: Arc<Semaphore>,
    pub wake: Arc<super::handoff::Wake>,
    pub tracker: TaskTracker,
    /// Writes votes that arrive after the verdict, batched across battles.
    pub late_votes: super::LateVoteRecorder,
    /// Writes verdicts (batched on SQLite).
    pub verdicts: super::VerdictWriter,
    /// Agreed verdicts that end a new node's probation.
    pub probation_votes: u64,
    /// Battles settled since the last periodic summary.
    pub tally: Arc<super::summary::Tally>,
    /// Where live events go.
    pub events: Arc<crate::events::Hub>,
    /// Told when a battle can no longer change.
    pub cache: Arc<super::cache::BattleCache>,
}

impl BattleWorker {
    /// Claims as many battles as there are free slots and starts them; returns how many.
    /// `expired`: look for battles whose lease ran out too, not only pending ones.
    pub async fn run_once(&self, expired: bool) -> anyhow::Result<usize> {
        // The slots are taken first: a hand-off may take free ones at any moment.
        let mut permits = Vec::new();
        while permits.len() < 64 {
            match Arc::clone(&self.slots).try_acquire_owned() {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            }
        }
        if permits.is_empty() {
            return Ok(0);
        }
        let now = self.clock.now_ms();
        let limit = i64::try_from(permits.len()).unwrap_or(64);
        let seen = self.wake.backlog.seen();
        let jobs = if expired {
            store::claim(&self.db, &self.owner, self.lease_ms, now, limit).await?
        } else {
            store::claim_pending(&self.db, &self.owner, self.lease_ms, now, limit).await?
        };
        let claimed = jobs.len();
        if claimed < permits.len() {
            self.wake.backlog.cleared(seen);
        } else {
            // Every slot it had was used: more may wait (another replica's too), so it claims
            // again as slots free up rather than at the next poll.
            self.wake.backlog.added();
        }
        let runtime = tokio::runtime::Handle::current();
        for (job, permit) in jobs.into_iter().zip(permits) {
            self.begin(job, permit, &runtime);
        }
        Ok(claimed)
    }

    /// Starts settling `job`, claimed for this replica, in the slot `permit` holds.
    pub fn begin(
        &self,
        job: BattleJob,
        permit: OwnedSemaphorePermit,
        runtime: &tokio::runtime::Handle,
    ) {
        let worker = self.clone();
        self.tracker.spawn_on(
            async move {
                let late = worker.process(job).await;
                // The slot is free once the verdict is written; waking the loop lets it claim
                // the next battle at once instead of at the next poll.
                drop(permit);
                worker.wake.slot_freed();
                if let Some(late) = late {
                    late.await;
                }
            },
            runtime,
        );
    }

    /// Runs until shutdown: claims when woken while PENDING battles may be waiting (battles
    /// created with a free slot are handed off, not claimed), and polls for expired leases (and
    /// PENDING battles of other replicas). A lease runs for `--battle-lease-ms`, so expired ones
    /// are looked for once per poll, not on every wake (a wake comes with every battle settled).
    pub async fn run(self: Arc<Self>, poll: Duration, shutdown: CancellationToken) {
        let mut expired_due = std::time::Instant::now();
        loop {
            // Only a claim that can take a battle uses up the look for expired ones.
            let expired =
                self.slots.available_permits() > 0 && std::time::Instant::now() >= expired_due;
            if expired || self.wake.backlog.waiting() {
                let claimed = self.run_once(expired).await;
                if expired && claimed.is_ok() {
                    expired_due = std::time::Instant::now() + poll;
                }
                match claimed {
                    Ok(n) if n > 0 => continue,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = format!("{e:#}"), "claiming battles failed");
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }

    #[tracing::instrument(skip_all, fields(battle.id = %job.id, attempt = job.attempts))]
    /// Settles one battle; returns the collection of its late votes, which runs after the
    /// battle's slot is released.
    async fn process(&self, job: BattleJob) -> Option<BoxFuture<'static, ()>> {
        let started = std::time::Instant::now();
        let feed =
            crate::battles::feed::BattleFeed::open(&self.events, &self.db, &job.id, job.attempts)
                .await;
        let (verdict, votes, pending) = if job.attempts > self.max_attempts {
            let reason = format!("gave up after {} attempts", self.max_attempts);
            (Verdict::Error(reason), Vec::new(), None)
        } else {
            let request = BattleRequest {
                battle_id: job.id.clone(),
                prompt: job.prompt.clone(),
                seed: Some(job.seed),
                fighters: Some(job.fighters.clone()),
            };
            let decision = self
                .consensus
                .decide(
                    &request,
                    &job.fighters,
                    feed.clone().map(|f| Arc::new(f) as _),
                )
                .await;
            (decision.verdict, decision.votes, Some(decision.pending))
        };
        // The result's JSON and compressed body are made here, in parallel with other
        // battles, rather than inside the single writer's transaction.
        let prepared = verdict.result().and_then(Prepared::of);
        let published = prepared.as_ref().map(|p| p.hash);
        let (written, verdict, votes) = self.verdicts.settle(&job, verdict, votes, prepared).await;
        let settled = match written {
            Ok(settled) => settled,
            Err(e) => {
                // The lease expires and another attempt runs.
                tracing::error!(error = %e, "writing the verdict failed");
                return None;
            }
        };
        if !settled {
            tracing::warn!("battle was settled elsewhere; verdict discarded");
            return None;
        }
        if let (Verdict::Quorum { .. }, Some(deciding)) = (&verdict, votes.last()) {
            // The aggregator's own share: from the vote that made the quorum to the verdict
            // written.
            metrics::histogram!(CONSENSUS_OVERHEAD)
                .record(deciding.answered_at.elapsed().as_secs_f64());
        }
        let outcome = super::SettledBy::of(&verdict).map_or("error", super::SettledBy::as_str);
        metrics::counter!(BATTLES_SETTLED, "outcome" => outcome).increment(1);
        metrics::histogram!(SETTLE_DURATION).record(started.elapsed().as_secs_f64());
        self.tally.count(&verdict);
        tracing::debug!(
            outcome,
            winner = verdict.winner().unwrap_or("-"),
            votes = votes.len(),
            "battle settled"
        );
        if let Some(feed) = &feed {
            feed.settled(&self.db, &verdict, &votes).await;
        }
        // From now on the verdict is public: a shadow vote arriving later could be a copy.
        let written_at = std::time::Instant::now();
        let winner = verdict.winner().map(str::to_owned);
        self.feed_back(&votes, winner.as_deref());
        let Some(pending) = pending.filter(|p| !p.is_empty()) else {
            self.cache.complete(&job.id);
            if let Some(feed) = &feed {
                feed.end();
            }
            return None;
        };
        let worker = self.clone();
        Some(Box::pin(async move {
            let mut late = pending.finish().await;
            for vote in &mut late {
                vote.after_verdict = vote.role == crate::consensus::VoteRole::Shadow
                    && vote.answered_at > written_at;
                if let Some(feed) = feed.as_ref().filter(|f| f.listened()) {
                    feed.vote(vote, &worker.node_name(&vote.node_id), true);
                }
            }
            if let Some(feed) = &feed {
                feed.end();
            }
            worker.feed_back(&late, winner.as_deref());
            worker.late_votes.record(store::LateVotes {
                battle_id: job.id,
                winner,
                votes: late,
                published,
            });
        }))
    }

    fn node_name(&self, node_id: &str) -> String {
        self.consensus
            .registry
            .get(node_id)
            .map_or_else(String::new, |n| n.name.clone())
    }

    /// Updates each voter's counters and reputation from how its vote compares to the verdict.
    fn feed_back(&self, votes: &[Vote], winner: Option<&str>) {
        let now = self.clock.now_ms();
        for vote in votes {
            let validity = match (vote.valid, vote.superseded) {
                (_, true) => "cancelled",
                (true, false) => "valid",
                (false, false) if vote.cut_short => "cut_short",
                (false, false) => "invalid",
            };
            metrics::counter!(VOTES, "validity" => validity).increment(1);
            if !vote.judged() {
                // It lost a hedge race, or the round's deadline cut its time short: neither
                // a failure nor a vote of the node's.
                continue;
            }
            let outcome = match (vote.valid_winner(), winner) {
                _ if vote.busy_retry_after_ms.is_some() => VoteOutcome::Busy {
                    retry_after_ms: vote.busy_retry_after_ms.unwrap_or(1_000),
                },
                // A shadow vote after the verdict could be a copy: reliable, not agreeing.
                (Some(_), _) if vote.after_verdict => VoteOutcome::Valid,
                (None, _) => VoteOutcome::Failed,
                (Some(v), Some(w)) if v == w => VoteOutcome::Agreed,
                (Some(_), Some(_)) => VoteOutcome::Disagreed,
                (Some(_), None) => VoteOutcome::Valid,
            };
            if let Some(node) = self.consensus.registry.get(&vote.node_id) {
                node.record(outcome, vote.latency_ms, now, self.probation_votes);
            }
        }
    }
}
