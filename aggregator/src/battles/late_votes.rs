//! Votes that arrive after a battle's verdict, written in batches: one transaction for the
//! late votes of every battle that finished in the last moment, instead of one each. Nobody
//! waits for them, so the recorder lets them gather for a moment before it writes: under load
//! a late-vote transaction was one in three of the single writer's on SQLite.

use tokio::sync::mpsc;

use std::sync::Arc;
use std::time::Duration;

use super::cache::BattleCache;
use super::store::{self, LateVotes};
use crate::clock::SharedClock;
use crate::db::Db;

/// Most battles whose late votes share one transaction.
const MAX_BATCH: usize = 256;
/// How long late votes gather after the first one before they are written.
const GATHER: Duration = Duration::from_millis(50);

/// Hands late votes to the recorder task.
#[derive(Clone)]
pub struct LateVoteRecorder {
    sender: mpsc::UnboundedSender<LateVotes>,
}

impl LateVoteRecorder {
    /// Starts the recorder; it ends once every `LateVoteRecorder` clone is dropped and what
    /// they sent is written.
    pub fn spawn(
        db: Db,
        clock: SharedClock,
        cache: Arc<BattleCache>,
        tracker: &tokio_util::task::TaskTracker,
    ) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        db.spawn_writer(tracker.track_future(run(db.clone(), clock, cache, receiver)));
        Self { sender }
    }

    pub fn record(&self, late: LateVotes) {
        if late.votes.is_empty() {
            return;
        }
        if self.sender.send(late).is_err() {
            tracing::warn!("late-vote recorder stopped; late votes not recorded");
        }
    }
}

async fn run(
    db: Db,
    clock: SharedClock,
    cache: Arc<BattleCache>,
    mut receiver: mpsc::UnboundedReceiver<LateVotes>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // Waits for one, lets others gather, then takes what is queued, up to the batch size.
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        if batch.len() < MAX_BATCH {
            tokio::time::sleep(GATHER).await;
            while batch.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(late) => batch.push(late),
                    Err(_) => break,
                }
            }
        }
        let batch = std::mem::take(&mut batch);
        match store::record_late_votes(&db, &batch, clock.now_ms()).await {
            Ok(()) => {
                for late in &batch {
                    cache.complete(&late.battle_id);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, battles = batch.len(), "recording late votes failed")
            }
        }
    }
}
