//! Group commit of player battles on SQLite: the battles asked for while the previous
//! transaction ran are started together in one write transaction, with one statement per table
//! for all of them, each checked in order as it would be alone (a refused battle, for want of
//! energy or a missing character, writes nothing). Each request is answered after the commit,
//! so an accepted battle is never lost, and its live `created` event goes out then. While the
//! worker has free slots, the battles are inserted already claimed and start once announced
//! (`battles::handoff`).
//!
//! SQLite has one writer: battles started one transaction each wait for each other anyway, and
//! every commit writes its pages to the log again. On PostgreSQL battles start in parallel
//! transactions (one batch would hold the row locks of all its players at once), so there is
//! no intake.

use std::collections::{BTreeMap, HashMap};

use tokio::sync::{mpsc, oneshot};

use axum::http::StatusCode;
use hero_protocol::Fighter;

use super::create::{self, Ask, Started};
use super::pairs;
use super::store::insert_sides_many as store_sides;
use crate::auth::Bucket;
use crate::battles::handoff::{Handoff, Launch};
use crate::battles::store::{self as battle_store, NewBattle};
use crate::db::{Db, Lock};
use crate::game::characters::store::{self, CharacterView};
use crate::http::ApiError;
use crate::http::error::ApiResult;
use crate::http::idempotency::json;
use crate::state::AppState;

/// Most battles started in one transaction.
const MAX_BATCH: usize = 64;

struct Request {
    state: AppState,
    ask: Ask,
    reply: oneshot::Sender<ApiResult<Started>>,
}

/// Hands player battles to the starting task.
pub struct PlayerIntake {
    sender: mpsc::UnboundedSender<Request>,
}

impl PlayerIntake {
    /// Starts the task on `db`'s write lane; it ends once the intake is dropped and its queue
    /// is written.
    /// Battles are handed off to `handoff` while it has free slots.
    pub fn spawn(db: &Db, handoff: Option<Handoff>) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        db.spawn_writer(run(db.clone(), handoff, receiver));
        Self { sender }
    }

    /// Starts the battle; answers once it is committed (or refused). Should the intake's task
    /// be gone, the battle starts in a transaction of its own.
    pub async fn start(&self, state: AppState, ask: Ask) -> ApiResult<Started> {
        let (reply, answer) = oneshot::channel();
        if let Err(mpsc::error::SendError(request)) =
            self.sender.send(Request { state, ask, reply })
        {
            let Request { state, ask, .. } = request;
            let started = state.db.write(create::alone(state.clone(), ask)).await;
            return announced(&state, started, None);
        }
        answer
            .await
            .map_err(|_| ApiError::from(sqlx::Error::WorkerCrashed))?
    }
}

async fn run(db: Db, handoff: Option<Handoff>, mut receiver: mpsc::UnboundedReceiver<Request>) {
    let mut queue = Vec::with_capacity(MAX_BATCH);
    // Waits for one, then takes what else is queued, up to the batch size.
    while receiver.recv_many(&mut queue, MAX_BATCH).await > 0 {
        // A request whose client is gone is dropped before anything is charged.
        let queued = std::mem::take(&mut queue)
            .into_iter()
            .filter(|r| !r.reply.is_closed());
        // A battle with an Idempotency-Key may repeat one of the same batch: alone, it sees
        // the first one's committed answer, as it would without the intake (and its rate
        // limit is counted only when it is not a replay).
        let (keyed, unkeyed): (Vec<Request>, Vec<Request>) =
            queued.partition(|r| r.ask.key.0.is_some());
        // The rate limit is counted before the transaction (it may ask Redis), once.
        let mut batch = Vec::with_capacity(unkeyed.len());
        for mut request in unkeyed {
            let limited = request
                .ask
                .player
                .limit(&request.state, Bucket::Battles)
                .await;
            match limited {
                Ok(()) => {
                    request.ask.limit_counted = true;
                    batch.push(request);
                }
                Err(e) => {
                    let _ = request.reply.send(Err(e));
                }
            }
        }
        // A batch of one too: inserted claimed, it needs no second write to be claimed.
        if !batch.is_empty() {
            let began = std::time::Instant::now();
            let started = start_all(&db, &batch, handoff.as_ref()).await;
            tracing::debug!(
                battles = batch.len(),
                ms = began.elapsed().as_secs_f64() * 1e3,
                "player battles started together"
            );
            match started {
                Ok(started) => {
                    for (request, (started, launch)) in batch.into_iter().zip(started) {
                        let answer = announced(&request.state, started, launch);
                        let _ = request.reply.send(answer);
                    }
                }
                Err(Failed::AtCommit(e)) => {
                    tracing::warn!(error = %e, battles = batch.len(), "committing player battles failed");
                    let transient = crate::db::is_transient(&e);
                    for request in batch {
                        let _ = request.reply.send(Err(if transient {
                            busy()
                        } else {
                            ApiError::from(sqlx::Error::Protocol(format!("the commit failed: {e}")))
                        }));
                    }
                }
                Err(Failed::Before(e)) if crate::db::is_transient(&e) => {
                    // Retrying each one would wait as long again, battle after battle.
                    tracing::warn!(error = %e, battles = batch.len(), "player battles: the database is busy");
                    for request in batch {
                        let _ = request.reply.send(Err(busy()));
                    }
                }
                Err(Failed::Before(e)) => {
                    tracing::warn!(error = %e, battles = batch.len(), "batched player battles failed; starting them one by one");
                    alone(batch).await;
                }
            }
        }
        alone(keyed).await;
    }
}

/// Each battle of `requests` in a transaction of its own.
async fn alone(requests: Vec<Request>) {
    for request in requests {
        let started = create::alone(request.state.clone(), request.ask).await;
        let _ = request.reply.send(announced(&request.state, started, None));
    }
}

/// Publishes a committed battle's `created` event, then starts it (`launch`, when it was
/// inserted claimed) or wakes the worker; the answer, with the event taken out.
fn announced(
    state: &AppState,
    started: ApiResult<Started>,
    launch: Option<Launch>,
) -> ApiResult<Started> {
    let (response, created) = started?;
    if let Some(announce) = created {
        announce.publish(&state.events.hub);
        match launch {
            Some(launch) => launch.go(),
            None => state.battle_wake.pending(),
        }
    }
    Ok((response, None))
}

fn busy() -> ApiError {
    ApiError::Unavailable("the database is busy: retry shortly".into())
}

/// Where a batch failed: before the commit (nothing was written) or at it (unknown).
enum Failed {
    Before(sqlx::Error),
    AtCommit(sqlx::Error),
}

impl From<sqlx::Error> for Failed {
    fn from(e: sqlx::Error) -> Self {
        Failed::Before(e)
    }
}

/// A battle of the batch that went through every check.
struct Accepted<'a> {
    index: usize,
    mine: CharacterView,
    opponent: CharacterView,
    fighters: [Fighter; 2],
    prompt: String,
    energy_left: i64,
    ask: &'a Ask,
}

/// Starts the battles of `batch` (none with an `Idempotency-Key`, their rate limit counted) in
/// one transaction, with one statement per table: each is checked in order as
/// [`create::start`] checks it alone (fighters, battles against the same player today,
/// energy), what the ones before it spent counted. What each one answers, with what starts it
/// when it was inserted claimed (the first ones, while `handoff` has free slots).
async fn start_all(
    db: &Db,
    batch: &[Request],
    handoff: Option<&Handoff>,
) -> Result<Vec<(ApiResult<Started>, Option<Launch>)>, Failed> {
    let Some(state) = batch.first().map(|r| &r.state) else {
        return Ok(Vec::new());
    };
    let mut tx = db.begin_write().await?;
    let now = state.clock.now_ms();
    let game = &state.game;
    let mut answers: Vec<Option<ApiResult<Started>>> = batch.iter().map(|_| None).collect();
    let mut ids: Vec<&str> = batch
        .iter()
        .flat_map(|r| [r.ask.body.character_id.as_str(), r.ask.opponent_id.as_str()])
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let locked = store::lock_all(&mut tx, db.dialect, &ids, Lock::Share).await?;
    let mut players: Vec<&str> = batch.iter().map(|r| r.ask.player.id.as_str()).collect();
    players.sort_unstable();
    players.dedup();
    let limit = game.battles_per_opponent_per_day;
    let mut today = if limit > 0 {
        pairs::today(&mut tx, &players, now).await?
    } else {
        HashMap::new()
    };
    let mut added: BTreeMap<pairs::Pair, i64> = BTreeMap::new();
    let mut energy = game.ledger.energy_spends(&mut tx, &players, now).await?;
    let cost = game.battle_energy_cost;
    let mut accepted = Vec::with_capacity(batch.len());
    for (index, request) in batch.iter().enumerate() {
        let ask = &request.ask;
        let checked = create::fighters_of(&locked, ask).and_then(|(mine, opponent)| {
            let pair = (ask.player.id.clone(), opponent.player_id.clone());
            if limit > 0 && today.get(&pair).copied().unwrap_or(0) >= limit {
                return Err(pairs::refused(limit, now));
            }
            let energy_left = energy.spend(&ask.player.id, cost, index)?;
            if limit > 0 {
                *today.entry(pair.clone()).or_default() += 1;
                *added.entry(pair).or_default() += 1;
            }
            Ok((mine, opponent, energy_left))
        });
        match checked {
            Ok((mine, opponent, energy_left)) => {
                let fighters = [mine.fighter(), opponent.fighter()];
                let prompt = hero_engine::request_prompt(&fighters);
                accepted.push(Accepted {
                    index,
                    mine,
                    opponent,
                    fighters,
                    prompt,
                    energy_left,
                    ask,
                });
            }
            Err(e) => answers[index] = Some(Err(e)),
        }
    }
    let new: Vec<NewBattle<'_>> = accepted
        .iter()
        .map(|a| NewBattle {
            fighters: &a.fighters,
            seed: battle_store::random_seed(),
            prompt: &a.prompt,
            created_by: Some(&a.ask.player.id),
        })
        .collect();
    let reserved = handoff.map(|h| h.reserve(new.len(), now));
    let claimed = reserved.as_ref().map(|r| (r.lease(), r.count()));
    let battle_ids = battle_store::insert_many(&mut tx, &new, now, claimed).await?;
    let by_index: HashMap<usize, &str> = accepted
        .iter()
        .zip(&battle_ids)
        .map(|(a, id)| (a.index, id.as_str()))
        .collect();
    pairs::add(&mut tx, &added, now).await?;
    energy
        .write(&mut tx, "battle", |i| {
            by_index.get(&i).map(|id| id.to_string())
        })
        .await?;
    let sides: Vec<(&str, [&CharacterView; 2])> = accepted
        .iter()
        .zip(&battle_ids)
        .map(|(a, id)| (id.as_str(), [&a.mine, &a.opponent]))
        .collect();
    store_sides(&mut tx, &sides, cost, now).await?;
    // The first `handed_off` were inserted claimed (RUNNING).
    let handed_off = reserved.as_ref().map_or(0, |r| r.count());
    for (i, (a, battle_id)) in accepted.iter().zip(&battle_ids).enumerate() {
        let status = if i < handed_off {
            crate::battles::Status::Running
        } else {
            crate::battles::Status::Pending
        };
        let (started, announce) = create::answer(
            a.ask,
            (&a.mine, &a.opponent),
            battle_id.clone(),
            status,
            &a.fighters,
            cost,
            a.energy_left,
        );
        let answer = serde_json::to_string(&started)
            .map(|body| (json(StatusCode::ACCEPTED, body), Some(announce)))
            .map_err(|e| ApiError::Internal(e.into()));
        answers[a.index] = Some(answer);
    }
    tx.commit().await.map_err(Failed::AtCommit)?;
    let mut launches: Vec<Option<Launch>> = batch.iter().map(|_| None).collect();
    if let Some(reserved) = reserved {
        for (a, launch) in accepted.iter().zip(reserved.committed(&new, &battle_ids)) {
            launches[a.index] = Some(launch);
        }
    }
    Ok(answers
        .into_iter()
        .map(|a| {
            a.unwrap_or_else(|| {
                Err(ApiError::Internal(anyhow::anyhow!(
                    "battle left unanswered"
                )))
            })
        })
        .zip(launches)
        .collect())
}
