//! The durable scheduler: the beat table (which task runs when) as rows keyed by
//! (task, slot), so any number of replicas on one database run each slot exactly once; a
//! replica that dies mid-task leaves its slot to another after the lease; missed slots are
//! caught up within a bounded window. `GET /api/v1/admin/tasks` lists the runs.

pub mod cleanup;
pub mod routes;
pub mod runs;
pub mod settings;
pub mod slots;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use settings::SchedulerArgs;
pub use slots::Schedule;

use crate::clock::SharedClock;
use crate::db::{Db, Tx};
use crate::supervisor::{Stage, Supervisor};

/// Slots of one task run per tick at most, however long the downtime was.
const MAX_SLOTS_PER_TICK: usize = 12;

/// One scheduled task. Its work runs in `tx`, which also marks the slot done, so the work of
/// a slot commits once or not at all.
#[async_trait::async_trait]
pub trait Task: Send + Sync {
    /// The name used in `--schedule` and in the task list.
    fn name(&self) -> &'static str;
    /// Does the work of `slot_ms`; the answer is the run's outcome (what it did).
    async fn run(&self, tx: &mut Tx, slot_ms: i64, now_ms: i64) -> anyhow::Result<String>;
    /// Called after the slot committed (to wake other workers, say).
    fn after_commit(&self) {}
}

/// One row of the beat table.
#[derive(Clone)]
pub struct Beat {
    pub task: Arc<dyn Task>,
    pub schedule: Schedule,
    /// Run every missed slot in the window (true), or only the latest (a sweep that covers
    /// everything before it).
    pub catch_up: bool,
}

/// The beat table as the admin API shows it.
pub struct BeatTable {
    pub enabled: bool,
    pub beats: Vec<Beat>,
}

/// Settings of the runner, from [`SchedulerArgs`].
#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    pub enabled: bool,
    pub tick: Duration,
    pub catch_up_ms: i64,
    pub lease_ms: i64,
    pub overrides: Vec<slots::ScheduleArg>,
}

impl SchedulerSettings {
    pub fn from_args(args: &SchedulerArgs) -> SchedulerSettings {
        SchedulerSettings {
            enabled: args.enabled,
            tick: Duration::from_millis(u64::try_from(args.scheduler_tick.max(10)).unwrap_or(1000)),
            catch_up_ms: args.scheduler_catch_up,
            lease_ms: args.task_lease.max(1_000),
            overrides: args.schedules.clone(),
        }
    }

    /// The beat table with the flags' schedules applied; an unknown task name is an error.
    pub fn apply(&self, mut beats: Vec<Beat>) -> anyhow::Result<Vec<Beat>> {
        let names: Vec<&str> = beats.iter().map(|b| b.task.name()).collect();
        for o in &self.overrides {
            let Some(beat) = beats.iter_mut().find(|b| b.task.name() == o.task) else {
                anyhow::bail!(
                    "--schedule: no task {:?}; the tasks are {}",
                    o.task,
                    names.join(", ")
                );
            };
            beat.schedule = o.schedule;
        }
        Ok(beats)
    }
}

/// Starts the runner (when enabled) as a background task of the supervisor.
pub fn start(
    db: Db,
    clock: SharedClock,
    beats: Vec<Beat>,
    settings: &SchedulerSettings,
    supervisor: &Supervisor,
) {
    if !settings.enabled {
        tracing::info!("scheduler off in this process (--scheduler false)");
        return;
    }
    for beat in &beats {
        tracing::debug!(task = beat.task.name(), schedule = %beat.schedule, "scheduled task");
    }
    let runner = Runner {
        db,
        clock,
        beats,
        owner: format!("scheduler-{}", uuid::Uuid::new_v4()),
        settings: settings.clone(),
    };
    supervisor.spawn(Stage::Background, runner.run(supervisor.shutdown_token()));
}

struct Runner {
    db: Db,
    clock: SharedClock,
    beats: Vec<Beat>,
    owner: String,
    settings: SchedulerSettings,
}

impl Runner {
    async fn run(self, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.settings.tick) => {}
            }
            for beat in &self.beats {
                if stop.is_cancelled() {
                    return;
                }
                let now = self.clock.now_ms();
                let due = beat.schedule.due(
                    now,
                    self.settings.catch_up_ms,
                    beat.catch_up,
                    MAX_SLOTS_PER_TICK,
                );
                for slot in due {
                    if let Err(e) = self.run_slot(beat, slot).await {
                        tracing::warn!(task = beat.task.name(), slot, error = %e,
                            "scheduler could not reach the database");
                    }
                }
            }
        }
    }

    /// Claims the slot and, when it is ours, runs it.
    async fn run_slot(&self, beat: &Beat, slot: i64) -> Result<(), sqlx::Error> {
        let name = beat.task.name();
        let now = self.clock.now_ms();
        let lease = now + self.settings.lease_ms;
        if !runs::claim(&self.db, name, slot, &self.owner, now, lease).await? {
            return Ok(());
        }
        let mut tx = self.db.begin_write().await?;
        let outcome = beat.task.run(&mut tx, slot, now).await;
        let done_at = self.clock.now_ms();
        match outcome {
            Ok(summary) => {
                if runs::finish(&mut tx, name, slot, &self.owner, done_at, &summary).await? {
                    tx.commit().await?;
                    beat.task.after_commit();
                    tracing::debug!(task = name, slot, outcome = %summary, "task done");
                } else {
                    tx.rollback().await?;
                    tracing::warn!(
                        task = name,
                        slot,
                        "lost the slot's lease; its work is undone"
                    );
                }
            }
            Err(e) => {
                tx.rollback().await?;
                let error = format!("{e:#}");
                tracing::warn!(task = name, slot, error = %error, "task failed");
                // Retried after a few ticks, up to runs::MAX_ATTEMPTS.
                let retry_at =
                    done_at + 5 * i64::try_from(self.settings.tick.as_millis()).unwrap_or(1000);
                runs::fail(&self.db, name, slot, &self.owner, done_at, retry_at, &error).await?;
            }
        }
        Ok(())
    }
}
