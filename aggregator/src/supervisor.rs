//! `Supervisor`: every background task of the aggregator, registered by the domain that owns
//! it, and the one shutdown order.
//!
//! Shutdown runs the stages in [`Stage`] order: local nodes deregister, running battles drain,
//! the HTTP server stops (it outlives the drain: local nodes deregister and battles settle
//! through it), background loops make their last flush, and the recorders write what the
//! drained battles handed them. Each stage is cancelled, then waited for at most its timeout.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// When a task stops, in shutdown order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    LocalNodes,
    Battles,
    Http,
    Background,
    Recorders,
}

const STAGES: [Stage; 5] = [
    Stage::LocalNodes,
    Stage::Battles,
    Stage::Http,
    Stage::Background,
    Stage::Recorders,
];

struct StageTasks {
    /// Cancelled when the stage begins to stop.
    stop: CancellationToken,
    tracker: TaskTracker,
    /// Longest wait for the stage's tasks; `None` waits for ever.
    timeout: Option<Duration>,
}

pub struct Supervisor {
    /// Cancelled first, before any stage: loops that start new work (claiming battles) stop.
    shutdown: CancellationToken,
    stages: Vec<StageTasks>,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl Supervisor {
    pub fn new() -> Self {
        Self {
            shutdown: CancellationToken::new(),
            stages: STAGES
                .iter()
                .map(|_| StageTasks {
                    stop: CancellationToken::new(),
                    tracker: TaskTracker::new(),
                    timeout: None,
                })
                .collect(),
        }
    }

    fn stage(&self, stage: Stage) -> &StageTasks {
        &self.stages[stage as usize]
    }

    /// Cancelled when shutdown begins, before any stage stops.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Cancelled when `stage` begins to stop.
    pub fn stop_token(&self, stage: Stage) -> CancellationToken {
        self.stage(stage).stop.clone()
    }

    /// The tracker of `stage`, for tasks spawned later (one per battle, say).
    pub fn tracker(&self, stage: Stage) -> TaskTracker {
        self.stage(stage).tracker.clone()
    }

    /// Waits at most `timeout` for the tasks of `stage` at shutdown (the longest given wins).
    pub fn limit(&mut self, stage: Stage, timeout: Duration) {
        let slot = &mut self.stages[stage as usize].timeout;
        *slot = Some(slot.map_or(timeout, |t| t.max(timeout)));
    }

    /// Runs `task` until its stage is waited for at shutdown.
    pub fn spawn<F>(&self, stage: Stage, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.stage(stage).tracker.spawn(task);
    }

    /// Stops everything, stage by stage.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        for (stage, tasks) in STAGES.iter().zip(self.stages) {
            tasks.stop.cancel();
            tasks.tracker.close();
            match tasks.timeout {
                None => tasks.tracker.wait().await,
                Some(timeout) => {
                    if tokio::time::timeout(timeout, tasks.tracker.wait())
                        .await
                        .is_err()
                    {
                        tracing::warn!(
                            ?stage,
                            waited_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                            "tasks still running at shutdown were left behind"
                        );
                    }
                }
            }
            tracing::debug!(?stage, "stopped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn stages_stop_in_order() {
        let supervisor = Supervisor::new();
        let order = Arc::new(Mutex::new(Vec::new()));
        // Registered in reverse, stopped in stage order.
        for stage in STAGES.iter().rev() {
            let stop = supervisor.stop_token(*stage);
            let order = Arc::clone(&order);
            let stage = *stage;
            supervisor.spawn(stage, async move {
                stop.cancelled().await;
                order.lock().map(|mut o| o.push(stage)).ok();
            });
        }
        supervisor.shutdown().await;
        assert_eq!(*order.lock().map(|o| o.clone()).unwrap_or_default(), STAGES);
    }

    #[tokio::test]
    async fn a_stuck_stage_is_left_behind_after_its_timeout() {
        let mut supervisor = Supervisor::new();
        supervisor.limit(Stage::Battles, Duration::from_millis(20));
        supervisor.spawn(Stage::Battles, std::future::pending());
        let done = Arc::new(Mutex::new(false));
        let flag = Arc::clone(&done);
        let stop = supervisor.stop_token(Stage::Recorders);
        supervisor.spawn(Stage::Recorders, async move {
            stop.cancelled().await;
            flag.lock().map(|mut d| *d = true).ok();
        });
        supervisor.shutdown().await;
        assert!(done.lock().map(|d| *d).unwrap_or(false));
    }
}
