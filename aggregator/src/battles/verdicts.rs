//! Group commit of verdicts: the verdicts of every battle that finished while the previous
//! transaction ran are written together in the next one. On SQLite, which has one writer
//! anyway, every verdict goes this way. On PostgreSQL the verdicts of admin battles do (they
//! touch only their own rows; one commit, one WAL flush, for many battles took 1.4k to 2.3k
//! battles/s), while a player's or the ladder's verdict, whose effects lock characters,
//! players and ledgers, stays its own short transaction so parallel writers never wait on a
//! batch's locks; two batches are written at once there (`Db::batch_writers`), so one batch's
//! commit overlaps the next one's statements and settling keeps up with creation. A batch that
//! fails is retried battle by battle, so one bad battle cannot sink the others.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use super::effects::VerdictEffects;
use super::results::Prepared;
use super::store::{self, BattleJob, Settlement};
use crate::clock::SharedClock;
use crate::consensus::{Verdict, Vote};
use crate::db::{Db, Dialect};

/// Most verdicts written in one transaction.
const MAX_BATCH: usize = 128;

/// A verdict to write; the answer hands the verdict and votes back with the outcome.
struct Request {
    job: BattleJob,
    verdict: Verdict,
    votes: Vec<Vote>,
    published: Option<Prepared>,
    reply: oneshot::Sender<Outcome>,
}

/// Whether the verdict was written (false: another worker held the battle), and what was sent.
pub type Outcome = (Result<bool, sqlx::Error>, Verdict, Vec<Vote>);

#[derive(Clone)]
pub struct VerdictWriter {
    db: Db,
    effects: VerdictEffects,
    owner: String,
    clock: SharedClock,
    batcher: Option<mpsc::UnboundedSender<Request>>,
}

impl VerdictWriter {
    /// A writer for `owner`; it starts the batching task on `tracker`, which ends once every
    /// clone of the writer is dropped.
    pub fn spawn(
        db: Db,
        effects: VerdictEffects,
        owner: String,
        clock: SharedClock,
        tracker: &tokio_util::task::TaskTracker,
    ) -> Self {
        let mut writer = Self {
            db,
            effects,
            owner,
            clock,
            batcher: None,
        };
        let (sender, receiver) = mpsc::unbounded_channel();
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..writer.db.batch_writers() {
            let task = tracker.track_future(run(writer.clone(), Arc::clone(&receiver)));
            writer.db.spawn_writer(task);
        }
        writer.batcher = Some(sender);
        writer
    }

    /// Writes one battle's verdict and votes (possibly together with others'); `published`
    /// is the verdict's result, prepared by the caller.
    pub async fn settle(
        &self,
        job: &BattleJob,
        verdict: Verdict,
        votes: Vec<Vote>,
        published: Option<Prepared>,
    ) -> Outcome {
        let alone = self.db.dialect == Dialect::Postgres && !job.by_admin();
        let Some(batcher) = self.batcher.as_ref().filter(|_| !alone) else {
            return self
                .write_one(job, verdict, votes, published.as_ref())
                .await;
        };
        let (reply, answer) = oneshot::channel();
        let request = Request {
            job: job.clone(),
            verdict,
            votes,
            published,
            reply,
        };
        if let Err(mpsc::error::SendError(request)) = batcher.send(request) {
            return self
                .write_one(
                    job,
                    request.verdict,
                    request.votes,
                    request.published.as_ref(),
                )
                .await;
        }
        match answer.await {
            Ok(outcome) => outcome,
            Err(_) => (
                Err(sqlx::Error::WorkerCrashed),
                Verdict::Error("the verdict writer stopped".into()),
                Vec::new(),
            ),
        }
    }

    async fn write_one(
        &self,
        job: &BattleJob,
        verdict: Verdict,
        votes: Vec<Vote>,
        published: Option<&Prepared>,
    ) -> Outcome {
        let settlement = Settlement {
            job,
            verdict: &verdict,
            votes: &votes,
            published,
        };
        let now = self.clock.now_ms();
        let result = store::settle(&self.db, &settlement, &self.owner, &self.effects, now).await;
        (result, verdict, votes)
    }
}

/// One batching task; on PostgreSQL several share the queue, each taking what is queued when
/// it is free, so one batch's commit overlaps the next one's statements.
async fn run(writer: VerdictWriter, receiver: Arc<Mutex<mpsc::UnboundedReceiver<Request>>>) {
    // The task's own copy must not keep itself alive: drop its sender.
    let writer = VerdictWriter {
        batcher: None,
        ..writer
    };
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // Waits for one, then takes what else is queued, up to the batch size.
    while receiver.lock().await.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let batch = std::mem::take(&mut batch);
        let settlements: Vec<Settlement<'_>> = batch
            .iter()
            .map(|r| Settlement {
                job: &r.job,
                verdict: &r.verdict,
                votes: &r.votes,
                published: r.published.as_ref(),
            })
            .collect();
        let written = store::settle_many(
            &writer.db,
            &settlements,
            &writer.owner,
            &writer.effects,
            writer.clock.now_ms(),
        )
        .await;
        drop(settlements);
        match written {
            Ok(written) => {
                for (request, ok) in batch.into_iter().zip(written) {
                    let _ = request.reply.send((Ok(ok), request.verdict, request.votes));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, battles = batch.len(), "batched verdicts failed; writing them one by one");
                for request in batch {
                    let outcome = writer
                        .write_one(
                            &request.job,
                            request.verdict,
                            request.votes,
                            request.published.as_ref(),
                        )
                        .await;
                    let _ = request.reply.send(outcome);
                }
            }
        }
    }
}
