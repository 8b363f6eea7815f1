//! The hand-off: a battle created on this replica while its worker has a free slot is inserted
//! already claimed — RUNNING, leased to this replica, first attempt — and started as soon as
//! its creator has announced it. It used to be inserted PENDING and then claimed by the worker
//! in a second write transaction (an `UPDATE … RETURNING` that read the battle back and parsed
//! its fighters again), on SQLite's single writer, for every battle.
//!
//! Older battles keep their turn: while battles may be waiting in the database (inserted
//! PENDING for want of a slot, or left from before a restart), new ones are inserted PENDING
//! too and the worker claims them oldest first. A crash between the commit and the start
//! leaves a leased battle, claimed again when its lease runs out, as any claimed battle; so
//! does a battle whose commit ends after shutdown began (its `Launch` finds the worker gone)
//! or whose commit failed after all (it is never started here).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use tokio::runtime::Handle;
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;

use super::BattleWorker;
use super::store::{BattleJob, Lease, NewBattle};

/// Whether PENDING battles may be waiting in the database. Creators count the batches they
/// insert PENDING once committed; the worker, after a claim that found fewer battles than it
/// had slots for, records how many of those batches it had seen before that claim (they were
/// committed before it, so it took them).
#[derive(Debug)]
pub struct Backlog {
    added: AtomicU64,
    cleared: AtomicU64,
}

impl Default for Backlog {
    /// Unknown at start (the database may hold battles from before): waiting until the first
    /// claim says otherwise.
    fn default() -> Self {
        Self {
            added: AtomicU64::new(1),
            cleared: AtomicU64::new(0),
        }
    }
}

impl Backlog {
    pub fn waiting(&self) -> bool {
        self.added.load(Ordering::Acquire) > self.cleared.load(Ordering::Acquire)
    }

    /// A batch with PENDING battles was committed.
    pub fn added(&self) {
        self.added.fetch_add(1, Ordering::AcqRel);
    }

    /// Taken before a claim, handed to [`Backlog::cleared`] after it.
    pub fn seen(&self) -> u64 {
        self.added.load(Ordering::Acquire)
    }

    /// A claim started after `seen` batches found every PENDING battle there was.
    pub fn cleared(&self, seen: u64) {
        self.cleared.fetch_max(seen, Ordering::AcqRel);
    }
}

/// Wakes the worker: for battles inserted PENDING (their creators, once they are announced)
/// or for a slot it freed (the worker itself, which then claims only while battles may be
/// waiting, and otherwise looks for expired leases once per poll).
#[derive(Debug, Default)]
pub struct Wake {
    notify: Notify,
    pub backlog: Backlog,
}

impl Wake {
    /// Battles were inserted PENDING and committed: the worker claims them in turn.
    pub fn pending(&self) {
        self.backlog.added();
        self.notify.notify_one();
    }

    /// A slot is free.
    pub fn slot_freed(&self) {
        self.notify.notify_one();
    }

    pub async fn notified(&self) {
        self.notify.notified().await;
    }
}

/// What creators of battles use to start them on this replica at once. It holds the worker
/// weakly: the intakes keep a hand-off until the very end, and a worker kept alive by them
/// would keep the verdict writer's and late-vote recorder's queues open, so shutdown would
/// wait on those for nothing.
#[derive(Clone)]
pub struct Handoff {
    /// Held by the worker's claim loop, which ends at shutdown.
    worker: Weak<BattleWorker>,
    slots: Arc<tokio::sync::Semaphore>,
    wake: Arc<Wake>,
    owner: Arc<str>,
    lease_ms: i64,
    /// Slots kept for claims: hand-offs stop once fewer than this are free.
    reserve_for_claims: usize,
    runtime: Handle,
    shutdown: CancellationToken,
}

impl Handoff {
    /// A hand-off to `worker` (of `concurrency` slots), whose battles run on the current
    /// runtime.
    pub fn new(
        worker: &Arc<BattleWorker>,
        concurrency: usize,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            worker: Arc::downgrade(worker),
            slots: Arc::clone(&worker.slots),
            wake: Arc::clone(&worker.wake),
            owner: worker.owner.as_str().into(),
            lease_ms: worker.lease_ms,
            reserve_for_claims: concurrency / 2,
            runtime: Handle::current(),
            shutdown,
        }
    }

    /// Slots for up to `wanted` battles about to be inserted: none while older battles may be
    /// waiting or once shutdown has begun, and only while more than half the slots are free.
    /// A busy replica lets its battles be claimed: a claim waits its turn at the database, so
    /// new battles stop piling up in the slots faster than they settle (with every slot full,
    /// each battle's node calls share the CPU with more others: slower, and no more settled).
    pub fn reserve(&self, wanted: usize, now_ms: i64) -> Reserved {
        let mut permits = Vec::new();
        if !self.shutdown.is_cancelled() && !self.wake.backlog.waiting() {
            let free = self.slots.available_permits();
            let wanted = wanted.min(free.saturating_sub(self.reserve_for_claims));
            while permits.len() < wanted {
                match Arc::clone(&self.slots).try_acquire_owned() {
                    Ok(permit) => permits.push(permit),
                    Err(_) => break,
                }
            }
        }
        Reserved {
            handoff: self.clone(),
            permits,
            until_ms: now_ms + self.lease_ms,
        }
    }
}

/// Slots reserved for the first battles of a batch being inserted.
pub struct Reserved {
    handoff: Handoff,
    permits: Vec<OwnedSemaphorePermit>,
    until_ms: i64,
}

impl Reserved {
    /// How many of the batch's first battles are inserted claimed.
    pub fn count(&self) -> usize {
        self.permits.len()
    }

    /// The lease the claimed battles are inserted with.
    pub fn lease(&self) -> Lease<'_> {
        Lease {
            owner: &self.handoff.owner,
            until_ms: self.until_ms,
        }
    }

    /// After the batch committed with ids `ids` (in the order of `battles`): what starts each
    /// claimed battle, in order; the rest were inserted PENDING, which the worker learns.
    pub fn committed(self, battles: &[NewBattle<'_>], ids: &[String]) -> Vec<Launch> {
        if battles.len() > self.permits.len() {
            // No one may hand off before those are claimed (the creator wakes the worker).
            self.handoff.wake.backlog.added();
        }
        let Reserved {
            handoff, permits, ..
        } = self;
        battles
            .iter()
            .zip(ids)
            .zip(permits)
            .map(|((battle, id), permit)| Launch {
                start: Some(Start {
                    handoff: handoff.clone(),
                    permit,
                    job: BattleJob {
                        id: id.clone(),
                        fighters: battle.fighters.to_vec(),
                        seed: battle.seed,
                        prompt: battle.prompt.to_owned(),
                        attempts: 1,
                        created_by: battle.created_by.map(str::to_owned),
                    },
                }),
            })
            .collect()
    }
}

struct Start {
    handoff: Handoff,
    permit: OwnedSemaphorePermit,
    job: BattleJob,
}

/// A battle inserted claimed by this replica: it starts when this is dropped (or
/// [`Launch::go`] is called), once its creator has announced it, so its `created` event comes
/// before its other events. Dropped anywhere — a client gone, an answer never read — the
/// battle still starts.
pub struct Launch {
    start: Option<Start>,
}

impl Launch {
    pub fn go(self) {}
}

impl Drop for Launch {
    fn drop(&mut self) {
        if let Some(Start {
            handoff,
            permit,
            job,
        }) = self.start.take()
        {
            match handoff.worker.upgrade() {
                Some(worker) => worker.begin(job, permit, &handoff.runtime),
                // Shutting down: the battle is left to its lease.
                None => {
                    tracing::debug!(battle.id = %job.id, "created during shutdown; left to its lease")
                }
            }
        }
    }
}

impl std::fmt::Debug for Launch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = self.start.as_ref().map(|s| s.job.id.as_str());
        f.debug_struct("Launch").field("battle", &id).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Backlog;

    #[test]
    fn the_backlog_is_unknown_until_a_first_claim_finds_it_empty() {
        let backlog = Backlog::default();
        assert!(backlog.waiting());
        let seen = backlog.seen();
        backlog.cleared(seen);
        assert!(!backlog.waiting());
    }

    #[test]
    fn a_batch_committed_during_a_claim_keeps_the_backlog() {
        let backlog = Backlog::default();
        backlog.cleared(backlog.seen());
        // The claim looks, a batch of PENDING battles commits, the claim comes back short:
        // the claim may have missed that batch.
        let seen = backlog.seen();
        backlog.added();
        backlog.cleared(seen);
        assert!(backlog.waiting());
        // The next claim started after it, and took it.
        backlog.cleared(backlog.seen());
        assert!(!backlog.waiting());
    }

    #[test]
    fn an_older_claim_never_clears_what_a_newer_one_kept() {
        let backlog = Backlog::default();
        let old = backlog.seen();
        backlog.added();
        let new = backlog.seen();
        backlog.cleared(new);
        backlog.added();
        backlog.cleared(old);
        assert!(backlog.waiting());
    }
}
