//! Slot arithmetic of the beat table, without the database: when a task is due, and which
//! missed slots are still worth running after downtime.

use std::fmt;
use std::str::FromStr;

/// `every` milliseconds, at `offset` past each period boundary (since the Unix epoch, UTC):
/// hourly at :30 is `every = 1h, offset = 30m`, daily at 02:00 is `every = 1d, offset = 2h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub every_ms: i64,
    pub offset_ms: i64,
}

impl Schedule {
    pub const fn new(every_ms: i64, offset_ms: i64) -> Schedule {
        Schedule {
            every_ms,
            offset_ms,
        }
    }

    /// The latest slot at or before `now_ms`.
    pub fn latest(&self, now_ms: i64) -> i64 {
        (now_ms - self.offset_ms).div_euclid(self.every_ms) * self.every_ms + self.offset_ms
    }

    /// The first slot after `now_ms`.
    pub fn next(&self, now_ms: i64) -> i64 {
        self.latest(now_ms) + self.every_ms
    }

    /// Slots due at `now_ms`, oldest first: with `catch_up`, every slot within the last
    /// `window_ms` (at most `max` of the newest); without it only the latest one, and only
    /// when it is itself within the window.
    pub fn due(&self, now_ms: i64, window_ms: i64, catch_up: bool, max: usize) -> Vec<i64> {
        let latest = self.latest(now_ms);
        if now_ms - latest > window_ms {
            return Vec::new();
        }
        if !catch_up {
            return vec![latest];
        }
        let mut slots: Vec<i64> = (0..max as i64)
            .map(|k| latest - k * self.every_ms)
            .take_while(|slot| now_ms - slot <= window_ms)
            .collect();
        slots.reverse();
        slots
    }
}

/// A duration written `90`, `90s`, `15m`, `1h` or `1d` (seconds when bare).
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: i64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90s, 15m, 1h or 1d"))?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{s:?}: the unit is one of ms, s, m, h, d")),
    };
    n.checked_mul(unit_ms)
        .filter(|ms| *ms <= 366 * 86_400_000)
        .ok_or_else(|| format!("{s:?} is longer than a year"))
}

/// Shown as the largest unit that divides it.
pub fn show_duration(ms: i64) -> String {
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms != 0 && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "every {}", show_duration(self.every_ms))?;
        if self.offset_ms != 0 {
            write!(f, " at +{}", show_duration(self.offset_ms))?;
        }
        Ok(())
    }
}

/// `--schedule TASK=EVERY[@OFFSET]`, e.g. `pair-battles=1h@0s` or `cleanup=1d@2h`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleArg {
    pub task: String,
    pub schedule: Schedule,
}

impl FromStr for ScheduleArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (task, when) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected TASK=EVERY[@OFFSET], e.g. pair-battles=1h"))?;
        let (every, offset) = when.split_once('@').unwrap_or((when, "0s"));
        let every_ms = parse_duration_ms(every)?;
        let offset_ms = parse_duration_ms(offset)?;
        if every_ms < 100 {
            return Err(format!("{s:?}: a task runs at most every 100ms"));
        }
        if offset_ms >= every_ms {
            return Err(format!("{s:?}: the offset must be shorter than the period"));
        }
        Ok(ScheduleArg {
            task: task.trim().to_owned(),
            schedule: Schedule::new(every_ms, offset_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const H: i64 = 3_600_000;

    #[test]
    fn hourly_at_half_past() {
        let s = Schedule::new(H, H / 2);
        assert_eq!(s.latest(10 * H + H / 2), 10 * H + H / 2);
        assert_eq!(s.latest(10 * H + H / 2 - 1), 9 * H + H / 2);
        assert_eq!(s.next(10 * H), 10 * H + H / 2);
    }

    #[test]
    fn downtime_is_caught_up_only_within_the_window() {
        let s = Schedule::new(H, 0);
        // Down for a day: only the slots of the last three hours run, oldest first.
        assert_eq!(
            s.due(100 * H + 5, 3 * H, true, 100),
            vec![98 * H, 99 * H, 100 * H]
        );
        assert_eq!(s.due(100 * H + 5, 3 * H, true, 2), vec![99 * H, 100 * H]);
        // A sweep runs only its latest slot.
        assert_eq!(s.due(100 * H + 5, 3 * H, false, 100), vec![100 * H]);
        // A daily task whose slot is older than the window waits for the next one.
        let daily = Schedule::new(24 * H, 2 * H);
        assert!(daily.due(10 * 24 * H + 8 * H, 3 * H, false, 10).is_empty());
    }

    #[test]
    fn schedule_flags() {
        let a: ScheduleArg = "cleanup=1d@2h".parse().unwrap();
        assert_eq!(a.schedule, Schedule::new(24 * H, 2 * H));
        let b: ScheduleArg = "start-battles=2".parse().unwrap();
        assert_eq!(b.schedule, Schedule::new(2_000, 0));
        for bad in ["cleanup", "x=1h@1h", "x=0s", "x=1w", "x=h", "x=99999d"] {
            assert!(bad.parse::<ScheduleArg>().is_err(), "{bad}");
        }
        assert_eq!(
            Schedule::new(H, 30 * 60_000).to_string(),
            "every 1h at +30m"
        );
    }

    proptest! {
        #[test]
        fn due_slots_are_real_past_slots_in_order(
            every in 100i64..10_000_000,
            offset_frac in 0.0f64..1.0,
            now in 0i64..1_000_000_000_000,
            window in 0i64..100_000_000,
            max in 1usize..50,
        ) {
            let s = Schedule::new(every, (every as f64 * offset_frac) as i64 % every);
            let due = s.due(now, window, true, max);
            prop_assert!(due.len() <= max);
            prop_assert!(due.windows(2).all(|w| w[1] - w[0] == every));
            for slot in &due {
                prop_assert!(*slot <= now && now - slot <= window);
                prop_assert_eq!(s.latest(*slot), *slot);
            }
            prop_assert!(s.next(now) > now && s.next(now) - now <= every);
        }
    }
}
