//! Group commit of new battles from the admin endpoint: the battles asked for while the
//! previous transaction ran are inserted together, one multi-row INSERT and one commit for all
//! of them, on both databases. Each request is answered only after its commit, so an accepted
//! battle is never lost. A batch that fails is retried battle by battle.

use hero_protocol::Fighter;
use tokio::sync::{mpsc, oneshot};

use super::store::{self, NewBattle};
use crate::clock::SharedClock;
use crate::db::Db;

/// Most battles inserted in one statement (9 parameters each).
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

struct Request {
    order: Order,
    reply: oneshot::Sender<Result<String, sqlx::Error>>,
}

/// Hands new battles to the inserting task.
pub struct Intake {
    sender: mpsc::UnboundedSender<Request>,
}

impl Intake {
    /// Starts the inserting task; it ends once the `Intake` is dropped and its queue written.
    pub fn spawn(db: Db, clock: SharedClock) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run(db, clock, receiver));
        Self { sender }
    }

    /// Creates a PENDING battle; returns its id once it is committed.
    pub async fn create(&self, order: Order) -> Result<String, sqlx::Error> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Request { order, reply })
            .map_err(|_| sqlx::Error::WorkerCrashed)?;
        answer.await.map_err(|_| sqlx::Error::WorkerCrashed)?
    }
}

async fn run(db: Db, clock: SharedClock, mut receiver: mpsc::UnboundedReceiver<Request>) {
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let now = clock.now_ms();
        let battles: Vec<NewBattle<'_>> = batch.iter().map(|r| r.order.new_battle()).collect();
        let inserted = insert_all(&db, &battles, now).await;
        drop(battles);
        match inserted {
            Ok(ids) => {
                for (request, id) in batch.into_iter().zip(ids) {
                    let _ = request.reply.send(Ok(id));
                }
            }
            Err(e) => {
                if batch.len() > 1 {
                    tracing::warn!(error = %e, battles = batch.len(), "batched battle creation failed; creating them one by one");
                }
                for request in batch {
                    let one = [request.order.new_battle()];
                    let outcome = insert_all(&db, &one, now)
                        .await
                        .map(|mut ids| ids.pop().unwrap_or_default());
                    let _ = request.reply.send(outcome);
                }
            }
        }
    }
}

async fn insert_all(
    db: &Db,
    battles: &[NewBattle<'_>],
    now_ms: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let ids = store::insert_many(&mut tx, battles, now_ms).await?;
    tx.commit().await?;
    Ok(ids)
}
