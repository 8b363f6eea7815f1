//! Group commit of new battles from the admin endpoint: the battles asked for while the
//! previous statement ran are inserted together by one multi-row INSERT, on both databases,
//! which commits on its own (no BEGIN and COMMIT around it: two trips to the database fewer).
//! Each request is answered only after that commit, so an accepted battle is never lost. A
//! batch the database refuses is retried battle by battle; one whose answer is lost (the
//! connection broke while the statement ran) is not, since it may have committed and a retry
//! could create every battle twice, and its requests are answered with the error. While this
//! replica's worker has free slots, the battles are inserted already claimed and start once
//! announced (`battles::handoff`).

use hero_protocol::Fighter;
use tokio::sync::{mpsc, oneshot};

use super::handoff::{Handoff, Launch};
use super::store::{self, NewBattle};
use crate::clock::SharedClock;
use crate::db::Db;

/// Most battles inserted in one statement (10 parameters each).
const MAX_BATCH: usize = 128;

/// A battle to create, owned so it can wait in the queue.
pub struct Order {
    pub fighters: Vec<Fighter>,
    pub seed: u64,
    pub prompt: String,
    pub created_by: Option<String>,
}

impl Order {
    fn new_battle(&self) -> NewBattle<'_> {
        NewBattle {
            fighters: &self.fighters,
            seed: self.seed,
            prompt: &self.prompt,
            created_by: self.created_by.as_deref(),
        }
    }
}

/// A committed battle: its id, and what starts it when it was inserted claimed.
pub struct Created {
    pub id: String,
    pub launch: Option<Launch>,
}

struct Request {
    order: Order,
    reply: oneshot::Sender<Result<Created, sqlx::Error>>,
}

/// Hands new battles to the inserting task.
pub struct Intake {
    sender: mpsc::UnboundedSender<Request>,
}

impl Intake {
    /// Starts the inserting task; it ends once the `Intake` is dropped and its queue written.
    /// Battles are handed off to `handoff` while it has free slots.
    pub fn spawn(db: Db, clock: SharedClock, handoff: Option<Handoff>) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        db.clone().spawn_writer(run(db, clock, handoff, receiver));
        Self { sender }
    }

    /// Creates a battle; answers once it is committed. Announce it, then start its
    /// [`Launch`] (or wake the worker when there is none).
    pub async fn create(&self, order: Order) -> Result<Created, sqlx::Error> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Request { order, reply })
            .map_err(|_| sqlx::Error::WorkerCrashed)?;
        answer.await.map_err(|_| sqlx::Error::WorkerCrashed)?
    }
}

async fn run(
    db: Db,
    clock: SharedClock,
    handoff: Option<Handoff>,
    mut receiver: mpsc::UnboundedReceiver<Request>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // Waits for one, then takes what else is queued, up to the batch size.
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let batch = std::mem::take(&mut batch);
        let now = clock.now_ms();
        let battles: Vec<NewBattle<'_>> = batch.iter().map(|r| r.order.new_battle()).collect();
        let inserted = insert_all(&db, &battles, now, handoff.as_ref()).await;
        drop(battles);
        match inserted {
            Ok((ids, launches)) => {
                let mut launches = launches.into_iter();
                for (request, id) in batch.into_iter().zip(ids) {
                    let launch = launches.next();
                    // A request whose client has gone drops its launch: the battle starts.
                    let _ = request.reply.send(Ok(Created { id, launch }));
                }
            }
            Err(Failed::AtCommit(e)) => {
                tracing::warn!(error = %e, battles = batch.len(), "committing new battles failed");
                for request in batch {
                    let _ = request.reply.send(Err(sqlx::Error::Protocol(format!(
                        "the commit failed: {e}"
                    ))));
                }
            }
            Err(Failed::Before(e)) => {
                if batch.len() > 1 {
                    tracing::warn!(error = %e, battles = batch.len(), "batched battle creation failed; creating them one by one");
                }
                for request in batch {
                    let one = [request.order.new_battle()];
                    let outcome = insert_all(&db, &one, now, handoff.as_ref())
                        .await
                        .map(|(mut ids, mut launches)| Created {
                            id: ids.pop().unwrap_or_default(),
                            launch: launches.pop(),
                        })
                        .map_err(Failed::into_error);
                    let _ = request.reply.send(outcome);
                }
            }
        }
    }
}

/// How an insert failed: nothing was written, or whether it committed is unknown.
enum Failed {
    Before(sqlx::Error),
    AtCommit(sqlx::Error),
}

impl Failed {
    /// An error the database answered means the statement (its own transaction) was rolled
    /// back; any other (the connection lost while waiting for the answer) leaves unknown
    /// whether it committed.
    fn of_statement(e: sqlx::Error) -> Failed {
        match e {
            sqlx::Error::Database(_) | sqlx::Error::Encode(_) => Failed::Before(e),
            e => Failed::AtCommit(e),
        }
    }

    fn into_error(self) -> sqlx::Error {
        match self {
            Failed::Before(e) | Failed::AtCommit(e) => e,
        }
    }
}

/// Inserts `battles`, the first ones claimed when `handoff` has slots for them; their ids,
/// and what starts the claimed ones.
async fn insert_all(
    db: &Db,
    battles: &[NewBattle<'_>],
    now_ms: i64,
    handoff: Option<&Handoff>,
) -> Result<(Vec<String>, Vec<Launch>), Failed> {
    let reserved = handoff.map(|h| h.reserve(battles.len(), now_ms));
    let claimed = reserved.as_ref().map(|r| (r.lease(), r.count()));
    // One statement commits alone: no BEGIN and COMMIT, two trips to the database fewer.
    let mut conn = db.writer.acquire().await.map_err(Failed::Before)?;
    let ids = store::insert_many(&mut conn, battles, now_ms, claimed)
        .await
        .map_err(Failed::of_statement)?;
    let launches = reserved.map_or_else(Vec::new, |r| r.committed(battles, &ids));
    Ok((ids, launches))
}
