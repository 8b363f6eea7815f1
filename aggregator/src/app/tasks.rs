//! The beat table: every scheduled task with its default schedule (the seed's Celery beat),
//! before `--schedule` changes any of them.

use std::sync::Arc;

use crate::ladder::Ladder;
use crate::scheduler::cleanup::{Cleanup, Retention};
use crate::scheduler::{Beat, Schedule};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

pub fn beats(
    ladder: &Ladder,
    retention: Retention,
    battle_wake: &Arc<crate::battles::handoff::Wake>,
    events: &Arc<crate::events::Hub>,
) -> Vec<Beat> {
    vec![
        // Hourly at :00; each missed hour in the catch-up window is paired.
        Beat {
            task: Arc::new(crate::ladder::pairing::PairBattles {
                ladder: ladder.clone(),
            }),
            schedule: Schedule::new(HOUR, 0),
            catch_up: true,
        },
        // Every minute: starts whatever is due, so one run covers any missed ones.
        Beat {
            task: Arc::new(crate::ladder::scheduled::StartBattles {
                ladder: ladder.clone(),
                wake: Arc::clone(battle_wake),
                events: Arc::clone(events),
                started: std::sync::Mutex::default(),
                inserted: std::sync::atomic::AtomicBool::default(),
            }),
            schedule: Schedule::new(MINUTE, 0),
            catch_up: false,
        },
        // Hourly at :30.
        Beat {
            task: Arc::new(crate::ladder::ranks::UpdateRanks {
                idle_after_ms: ladder.args.ladder_idle_after,
                dialect: ladder.ledger.dialect,
            }),
            schedule: Schedule::new(HOUR, 30 * MINUTE),
            catch_up: false,
        },
        Beat {
            task: Arc::new(crate::ladder::seasons::CloseSeasons {
                ladder: ladder.clone(),
            }),
            schedule: Schedule::new(MINUTE, 0),
            catch_up: false,
        },
        // Daily at 02:00 UTC.
        Beat {
            task: Arc::new(Cleanup(retention)),
            schedule: Schedule::new(DAY, 2 * HOUR),
            catch_up: false,
        },
    ]
}
