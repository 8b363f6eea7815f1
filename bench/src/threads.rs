//! Where the server's CPU and writes went, by kind of thread: each thread's CPU ticks and
//! write calls from `/proc/<pid>/task/<tid>/{stat,io}`, taken at the start and the end of the
//! load. SQLite runs each connection on a thread of its own; the one that made the most write
//! calls is the writer (the checkpointer copies the log in fewer, larger writes).

use std::collections::HashMap;

/// What one thread had used at a moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Usage {
    /// The thread's name (`comm`, at most 15 bytes).
    pub name: String,
    /// User and system CPU, in clock ticks (100 a second on Linux).
    pub ticks: u64,
    /// Bytes passed to write calls (files and sockets alike).
    pub written: u64,
    pub write_calls: u64,
}

/// Every thread of a process, by thread id.
#[derive(Default)]
pub struct Threads(HashMap<u32, Usage>);

/// The kinds of thread reported, by the name their runtime gives them.
const KINDS: [(&str, &str); 3] = [
    ("tokio-rt-worker", "runtime"),
    ("hero-db-writes", "write lane"),
    ("sqlx-sqlite-wor", "SQLite"),
];

impl Threads {
    /// The threads of `pid` now; a thread that ends while it is read is left out.
    pub fn of(pid: u32) -> Threads {
        let mut threads = HashMap::new();
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return Threads(threads);
        };
        for task in tasks.flatten() {
            let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
                continue;
            };
            let stat = std::fs::read_to_string(task.path().join("stat"));
            let io = std::fs::read_to_string(task.path().join("io"));
            if let (Ok(stat), Ok(io)) = (stat, io)
                && let Some(usage) = parse(&stat, &io)
            {
                threads.insert(tid, usage);
            }
        }
        Threads(threads)
    }

    /// What each thread used from `self` until `later` (threads started meanwhile from zero).
    pub fn until(&self, later: &Threads) -> Vec<Usage> {
        later
            .0
            .iter()
            .map(|(tid, now)| {
                let before = self.0.get(tid).cloned().unwrap_or_default();
                Usage {
                    name: now.name.clone(),
                    ticks: now.ticks.saturating_sub(before.ticks),
                    written: now.written.saturating_sub(before.written),
                    write_calls: now.write_calls.saturating_sub(before.write_calls),
                }
            })
            .collect()
    }
}

/// User and system CPU in clock ticks from a process's or thread's `stat` line: after the
/// name (in parentheses, which may hold spaces), utime and stime are the 12th and 13th fields.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// One thread's usage from its `stat` and `io` files.
fn parse(stat: &str, io: &str) -> Option<Usage> {
    let name = stat.rsplit_once(')')?.0.split_once('(')?.1.to_string();
    let ticks = cpu_ticks(stat)?;
    let field = |key: &str| {
        io.lines()
            .find_map(|line| line.strip_prefix(key)?.trim().parse::<u64>().ok())
    };
    Some(Usage {
        name,
        ticks,
        written: field("wchar:")?,
        write_calls: field("syscw:")?,
    })
}

/// `runtime 0.82 cores, write lane 0.14, SQLite writer 0.52 (141 KB and 67 write calls a
/// battle), other SQLite 0.22`, and the same as JSON: cores over `secs`, writes per battle.
pub fn summary(used: &[Usage], secs: f64, battles: u64) -> (String, serde_json::Value) {
    let cores = |ticks: u64| ticks as f64 / 100.0 / secs.max(1e-3);
    let per_battle = |n: u64| n as f64 / battles.max(1) as f64;
    let mut parts = Vec::new();
    let mut json = serde_json::Map::new();
    for (name, kind) in KINDS {
        let mine: Vec<&Usage> = used.iter().filter(|u| u.name == name).collect();
        if mine.is_empty() {
            continue;
        }
        if kind != "SQLite" {
            let total = cores(mine.iter().map(|u| u.ticks).sum());
            parts.push(format!("{kind} {total:.2} cores"));
            json.insert(
                kind.replace(' ', "_"),
                serde_json::json!({ "cores": total }),
            );
            continue;
        }
        let Some(writer) = mine.iter().max_by_key(|u| u.write_calls) else {
            continue;
        };
        let others = cores(mine.iter().map(|u| u.ticks).sum::<u64>() - writer.ticks);
        let kb = per_battle(writer.written) / 1024.0;
        let calls = per_battle(writer.write_calls);
        parts.push(format!(
            "SQLite writer {:.2} cores ({kb:.0} KB in {calls:.0} write calls a battle), other SQLite threads {others:.2}",
            cores(writer.ticks)
        ));
        json.insert(
            "sqlite_writer".into(),
            serde_json::json!({
                "cores": cores(writer.ticks),
                "kb_written_per_battle": kb,
                "write_calls_per_battle": calls,
            }),
        );
        json.insert(
            "sqlite_others".into(),
            serde_json::json!({ "cores": others }),
        );
    }
    (parts.join(", "), serde_json::Value::Object(json))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IO: &str = "rchar: 10\nwchar: 4096\nsyscr: 1\nsyscw: 2\nread_bytes: 0\n";

    #[test]
    fn a_name_with_spaces_and_parentheses_is_read_whole() {
        let stat = "42 (odd (name) x) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        let usage = parse(stat, IO).unwrap();
        assert_eq!(usage.name, "odd (name) x");
        assert_eq!(usage.ticks, 300);
        assert_eq!((usage.written, usage.write_calls), (4096, 2));
        assert_eq!(parse("42 (short) S 1 2", IO), None);
        assert_eq!(parse(stat, "rchar: 1\n"), None);
    }

    #[test]
    fn the_sqlite_thread_with_most_write_calls_is_the_writer() {
        let thread = |name: &str, ticks, written, write_calls| Usage {
            name: name.into(),
            ticks,
            written,
            write_calls,
        };
        let used = [
            thread("tokio-rt-worker", 100, 0, 0),
            thread("tokio-rt-worker", 60, 0, 0),
            thread("sqlx-sqlite-wor", 50, 10 * 1024 * 100, 600),
            thread("sqlx-sqlite-wor", 30, 50 * 1024 * 100, 100),
            thread("sqlx-sqlite-wor", 10, 0, 0),
        ];
        let (line, json) = summary(&used, 2.0, 100);
        assert_eq!(
            line,
            "runtime 0.80 cores, SQLite writer 0.25 cores (10 KB in 6 write calls a battle), other SQLite threads 0.20"
        );
        assert_eq!(json["sqlite_writer"]["write_calls_per_battle"], 6.0);
        assert_eq!(json["runtime"]["cores"], 0.8);
    }

    #[test]
    fn this_process_has_a_thread_that_used_cpu() {
        let before = Threads::of(std::process::id());
        let spin: u64 = (0..3_000_000u64).fold(0, |a, b| a.wrapping_add(b * b));
        assert!(spin > 0);
        let used = before.until(&Threads::of(std::process::id()));
        assert!(!used.is_empty());
        assert!(used.iter().all(|u| !u.name.is_empty()));
    }
}
