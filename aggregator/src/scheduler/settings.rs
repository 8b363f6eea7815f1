//! Flags of the durable scheduler.

use clap::Args;

use super::slots::{ScheduleArg, parse_duration_ms};

#[derive(Debug, Clone, Args)]
pub struct SchedulerArgs {
    /// Run the scheduled tasks in this process (every replica may: each slot runs once).
    #[arg(long = "scheduler", env = "HERO_SCHEDULER", default_value_t = true,
          action = clap::ArgAction::Set)]
    pub enabled: bool,
    /// Change a task's schedule: TASK=EVERY[@OFFSET] with durations like 90s, 15m, 1h, 1d,
    /// the offset counted from the period's UTC boundary. Tasks and defaults:
    /// pair-battles=1h@0s, start-battles=1m, update-ranks=1h@30m, close-seasons=1m,
    /// cleanup=1d@2h. Repeatable.
    #[arg(long = "schedule", env = "HERO_SCHEDULE", value_delimiter = ',')]
    pub schedules: Vec<ScheduleArg>,
    /// How often the scheduler looks for due slots.
    #[arg(long, env = "HERO_SCHEDULER_TICK", default_value = "1s",
          value_parser = parse_duration_ms)]
    pub scheduler_tick: i64,
    /// After downtime, missed slots younger than this are run (oldest first); older ones are
    /// skipped for good.
    #[arg(long, env = "HERO_SCHEDULER_CATCH_UP", default_value = "3h",
          value_parser = parse_duration_ms)]
    pub scheduler_catch_up: i64,
    /// How long a replica holds a slot it is running; when it dies, another replica takes the
    /// slot over after this.
    #[arg(long, env = "HERO_TASK_LEASE", default_value = "5m",
          value_parser = parse_duration_ms)]
    pub task_lease: i64,
    /// Settled battles and their votes older than this many days are deleted by `cleanup`,
    /// with sessions that ended that long ago (0 keeps them for ever).
    #[arg(long, env = "HERO_RETENTION_DAYS", default_value_t = 90,
          value_parser = clap::value_parser!(u32).range(0..=36_500))]
    pub retention_days: u32,
    /// Idempotency keys older than this are deleted by `cleanup`: a retry after it charges
    /// again.
    #[arg(long, env = "HERO_IDEMPOTENCY_RETENTION", default_value = "1d",
          value_parser = parse_duration_ms)]
    pub idempotency_retention: i64,
}

impl SchedulerArgs {
    /// Settings under which tasks would silently never run, or run twice, are refused.
    pub fn check(&self) -> Result<(), String> {
        if self.scheduler_catch_up < 2 * self.scheduler_tick {
            return Err(format!(
                "--scheduler-catch-up ({} ms) must be at least twice --scheduler-tick ({} ms), \
                 or due slots are missed between ticks",
                self.scheduler_catch_up, self.scheduler_tick
            ));
        }
        if self.task_lease < 10_000 {
            return Err(
                "--task-lease must be at least 10s: a task outliving its lease is \
                        run again by another replica"
                    .into(),
            );
        }
        Ok(())
    }
}
