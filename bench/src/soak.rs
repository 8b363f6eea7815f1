//! `hero-bench soak`: what an operator would try before going live. Starts the real
//! `hero-aggregator` binary with three local nodes, keeps it under steady load for N minutes
//! (writers creating admin battles, readers reading the latest one) and samples the process
//! every interval: resident memory, battles settled, database size and log size. At the end it
//! reports memory drift after warm-up, bytes per battle on disk and log bytes per battle, and
//! checks that every battle of the run was settled once, by quorum, with at least two agreeing
//! valid votes recorded.
//!
//! It reads only `hero_heap_bytes` from `/metrics` (the aggregator folds its histograms every
//! 5 s whether anyone scrapes or not).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::agg::{ADMIN, Aggregator};
use crate::books::Check;
use crate::db::unsettled;
use crate::proc::mb;

#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// Minutes of steady load.
    #[arg(long, default_value_t = 30.0)]
    pub minutes: f64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 10)]
    pub interval_secs: u64,
    /// Minutes of warm-up: memory drift is measured from their end to the last sample.
    #[arg(long, default_value_t = 2.0)]
    pub warm_up_minutes: f64,
    /// Concurrent clients creating admin battles.
    #[arg(long, default_value_t = 4)]
    pub writers: usize,
    /// Concurrent clients reading recently created battles (about 1,000 creations old, so
    /// mostly settled: the stored result is read back).
    #[arg(long, default_value_t = 2)]
    pub readers: usize,
    /// Battles created per second in all (0: as fast as the writers go, which may outrun the
    /// aggregator: the backlog then grows and must be drained at the end).
    #[arg(long, default_value_t = 200)]
    pub rate: u64,
    /// The aggregator binary [default: `hero-aggregator` beside this binary].
    #[arg(long)]
    pub aggregator_bin: Option<PathBuf>,
    /// Print the summary as one JSON object as well.
    #[arg(long)]
    pub json: bool,
}

const NODES: usize = 3;
/// Battles remembered for the readers.
const RECENT: usize = 1024;

/// One sample of the aggregator process and its storage.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    rss_bytes: u64,
    /// What the allocator says the program has in use (`hero_heap_bytes`), when it says.
    heap_bytes: Option<u64>,
    settled: i64,
    db_bytes: i64,
    log_bytes: u64,
}

pub async fn run(args: &SoakArgs, db_url: &str, dir: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(args.minutes > 0.0, "--minutes must be positive");
    anyhow::ensure!(args.interval_secs > 0, "--interval-secs must be positive");
    anyhow::ensure!(args.writers > 0, "--writers must be at least 1");
    let bin = crate::proc::binary(args.aggregator_bin.as_ref(), "hero-aggregator")?;
    let Aggregator {
        process: mut child,
        addr,
    } = Aggregator::start(&bin, dir, db_url, NODES, &[]).await?;
    let log_path = child.log.clone();
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();

    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(db_url)
        .await?;
    let storage = Storage::of(db_url);
    let started_ms = now_ms();
    let baseline = Sample {
        at: Duration::ZERO,
        rss_bytes: child.rss()?,
        heap_bytes: heap_allocated(&client, &base).await,
        settled: 0,
        db_bytes: storage.bytes(&pool).await?,
        log_bytes: file_len(&log_path),
    };
    // An aggregator built without jemalloc (another platform) runs on glibc's malloc and
    // inherits its settings from this environment: say which, the figures depend on it.
    let allocator = if baseline.heap_bytes.is_some() {
        "jemalloc".to_owned()
    } else {
        let arenas = std::env::var("MALLOC_ARENA_MAX").unwrap_or_else(|_| "glibc's default".into());
        format!("glibc's malloc, MALLOC_ARENA_MAX {arenas}")
    };
    println!(
        "soak: {} minutes, {} writers{}, {} readers, sample every {} s; database {}; \
         allocator {allocator}; aggregator pid {}",
        args.minutes,
        args.writers,
        if args.rate > 0 {
            format!(" at {} battles/s", args.rate)
        } else {
            String::new()
        },
        args.readers,
        args.interval_secs,
        hero_aggregator::db::redact(db_url),
        child.pid()
    );

    let load = Load::start(&client, &base, args);
    let run_for = Duration::from_secs_f64(args.minutes * 60.0);
    let interval = Duration::from_secs(args.interval_secs);
    let began = Instant::now();
    let mut samples = vec![baseline];
    let mut skipped = 0_u32;
    let mut next = interval;
    while began.elapsed() < run_for {
        tokio::time::sleep(next.saturating_sub(began.elapsed())).await;
        next += interval;
        if let Some(status) = child.exited()? {
            anyhow::bail!(
                "the aggregator exited ({status}) during the soak; its log: {}",
                log_path.display()
            );
        }
        // A database that stalls (a slow disk) costs a sample, not the run.
        let counts = async {
            let unsettled = unsettled(&pool, started_ms).await?;
            anyhow::Ok((unsettled, storage.bytes(&pool).await?))
        };
        let (unsettled, db_bytes) = match counts.await {
            Ok(counts) => counts,
            Err(e) => {
                skipped += 1;
                println!(
                    "[{:>5.0} s] sample skipped: the database did not answer ({e:#})",
                    began.elapsed().as_secs_f64()
                );
                continue;
            }
        };
        let created = i64::try_from(load.created.load(Ordering::Relaxed))?;
        let sample = Sample {
            at: began.elapsed(),
            rss_bytes: child.rss()?,
            heap_bytes: heap_allocated(&client, &base).await,
            settled: created - unsettled,
            db_bytes,
            log_bytes: file_len(&log_path),
        };
        print_sample(&sample, samples.last().unwrap_or(&baseline), &baseline);
        samples.push(sample);
    }
    load.stop().await;
    // Let the last battles settle before the books are checked.
    let drain_until = Instant::now() + Duration::from_secs(300);
    while unsettled(&pool, started_ms).await? > 0 && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Votes that arrive after a verdict are written in batches a moment later.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let check = Check::run(&pool, started_ms).await?;
    let last = Sample {
        at: began.elapsed(),
        rss_bytes: child.rss()?,
        heap_bytes: heap_allocated(&client, &base).await,
        settled: check.settled,
        db_bytes: storage.bytes(&pool).await?,
        log_bytes: file_len(&log_path),
    };
    child.stop();
    let summary = Summary::of(args, &samples, &baseline, &last, &load, &check);
    summary.print();
    if skipped > 0 {
        println!("  samples skipped while the database did not answer: {skipped}");
    }
    if args.json {
        println!("{}", summary.json());
    }
    anyhow::ensure!(
        check.problems() == 0,
        "{} battles were not settled once by quorum with 2 agreeing votes of {NODES} recorded",
        check.problems()
    );
    Ok(())
}

fn print_sample(s: &Sample, previous: &Sample, baseline: &Sample) {
    let secs = (s.at - previous.at).as_secs_f64().max(0.001);
    let rate = (s.settled - previous.settled) as f64 / secs;
    let settled = s.settled.max(1) as f64;
    println!(
        "[{:>5.0} s] rss {:>6.1} MB{}  settled {:>9} ({:>5.0}/s)  db +{:>8.1} MB ({:>6.0} B/battle)  log +{:>7.2} MB ({:>4.0} B/battle)",
        s.at.as_secs_f64(),
        mb(s.rss_bytes),
        s.heap_bytes
            .map_or_else(String::new, |h| format!(" (heap in use {:>5.1} MB)", mb(h))),
        s.settled,
        rate,
        (s.db_bytes - baseline.db_bytes) as f64 / 1e6,
        (s.db_bytes - baseline.db_bytes) as f64 / settled,
        s.log_bytes.saturating_sub(baseline.log_bytes) as f64 / 1e6,
        s.log_bytes.saturating_sub(baseline.log_bytes) as f64 / settled,
    );
}

/// `hero_heap_bytes{state="allocated"}` from the aggregator's `/metrics` (jemalloc's count
/// of bytes in use), or `None` when it is not exported.
async fn heap_allocated(client: &reqwest::Client, base: &str) -> Option<u64> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("hero_heap_bytes{state=\"allocated\"} "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// How much room the database takes: pages in use (SQLite) or the size of every table with
/// its indexes and TOAST (PostgreSQL).
enum Storage {
    Sqlite,
    Postgres,
}

impl Storage {
    fn of(url: &str) -> Storage {
        if url.starts_with("sqlite:") {
            Storage::Sqlite
        } else {
            Storage::Postgres
        }
    }

    async fn bytes(&self, pool: &sqlx::AnyPool) -> anyhow::Result<i64> {
        let sql = match self {
            Storage::Sqlite => {
                "SELECT (SELECT page_count FROM pragma_page_count()) \
                 - (SELECT freelist_count FROM pragma_freelist_count())"
            }
            Storage::Postgres => {
                "SELECT CAST(COALESCE(SUM(pg_total_relation_size(c.oid)), 0) AS BIGINT) \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind = 'r' AND n.nspname = current_schema()"
            }
        };
        let value: i64 = sqlx::query_scalar(sql).fetch_one(pool).await?;
        Ok(match self {
            Storage::Sqlite => {
                let page: i64 = sqlx::query_scalar("SELECT page_size FROM pragma_page_size()")
                    .fetch_one(pool)
                    .await?;
                value * page
            }
            Storage::Postgres => value,
        })
    }
}

/// Writers creating admin battles and readers reading the latest one, until stopped.
struct Load {
    created: Arc<AtomicU64>,
    reads: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(client: &reqwest::Client, base: &str, args: &SoakArgs) -> Load {
        let created = Arc::new(AtomicU64::new(0));
        let reads = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        // The ids of the last battles created; readers read the oldest of them.
        let recent = Arc::new(std::sync::Mutex::new(
            std::collections::VecDeque::<String>::new(),
        ));
        let mut tasks = Vec::new();
        let per_writer = (args.rate > 0)
            .then(|| Duration::from_secs_f64(args.writers as f64 / args.rate as f64));
        for _ in 0..args.writers {
            let (client, base) = (client.clone(), base.to_owned());
            let (created, errors, stop, recent) = (
                Arc::clone(&created),
                Arc::clone(&errors),
                Arc::clone(&stop),
                Arc::clone(&recent),
            );
            tasks.push(tokio::spawn(async move {
                let mut pace = per_writer.map(|every| {
                    let mut pace = tokio::time::interval(every);
                    // Behind schedule, keep the rate: no burst to catch up.
                    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    pace
                });
                while !stop.load(Ordering::Relaxed) {
                    if let Some(pace) = pace.as_mut() {
                        pace.tick().await;
                    }
                    match crate::agg::create_at(&client, &base, ADMIN).await {
                        Ok(id) => {
                            created.fetch_add(1, Ordering::Relaxed);
                            let mut recent = recent.lock().unwrap_or_else(|e| e.into_inner());
                            recent.push_back(id);
                            if recent.len() > RECENT {
                                recent.pop_front();
                            }
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }));
        }
        for _ in 0..args.readers {
            let (client, base) = (client.clone(), base.to_owned());
            let (reads, errors, stop, recent) = (
                Arc::clone(&reads),
                Arc::clone(&errors),
                Arc::clone(&stop),
                Arc::clone(&recent),
            );
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let id = recent
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .front()
                        .cloned();
                    let Some(id) = id else {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    let ok = client
                        .get(format!("{base}/api/v1/battles/{id}"))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    let counter = if ok { &reads } else { &errors };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        Load {
            created,
            reads,
            errors,
            stop,
            tasks,
        }
    }

    async fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in &self.tasks {
            while !task.is_finished() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

struct Summary {
    minutes: f64,
    battles: i64,
    battles_per_sec: f64,
    reads_per_sec: f64,
    request_errors: u64,
    rss_warm_mb: f64,
    rss_end_mb: f64,
    rss_max_mb: f64,
    /// Bytes in use by the program after warm-up and at the end, when the allocator says.
    heap_mb: Option<(f64, f64)>,
    drift_pct: f64,
    slope_kb_per_min: f64,
    db_bytes_per_battle: f64,
    log_bytes_per_battle: f64,
    check: String,
}

impl Summary {
    fn of(
        args: &SoakArgs,
        samples: &[Sample],
        baseline: &Sample,
        last: &Sample,
        load: &Load,
        check: &Check,
    ) -> Summary {
        let warm = Duration::from_secs_f64(args.warm_up_minutes * 60.0);
        let after_warm: Vec<&Sample> = samples.iter().filter(|s| s.at >= warm).collect();
        let warm_rss = after_warm.first().map_or(last.rss_bytes, |s| s.rss_bytes);
        let end_rss = samples.last().map_or(last.rss_bytes, |s| s.rss_bytes);
        let secs = samples
            .last()
            .map_or(1.0, |s| s.at.as_secs_f64().max(0.001));
        let battles = check.settled.max(1) as f64;
        Summary {
            minutes: secs / 60.0,
            battles: check.settled,
            battles_per_sec: check.settled as f64 / secs,
            reads_per_sec: load.reads.load(Ordering::Relaxed) as f64 / secs,
            request_errors: load.errors.load(Ordering::Relaxed),
            rss_warm_mb: mb(warm_rss),
            rss_end_mb: mb(end_rss),
            rss_max_mb: mb(samples.iter().map(|s| s.rss_bytes).max().unwrap_or(0)),
            heap_mb: after_warm
                .first()
                .and_then(|s| s.heap_bytes)
                .zip(samples.last().and_then(|s| s.heap_bytes))
                .map(|(warm, end)| (mb(warm), mb(end))),
            drift_pct: (end_rss as f64 - warm_rss as f64) / (warm_rss.max(1) as f64) * 100.0,
            slope_kb_per_min: slope(&after_warm) / 1024.0 * 60.0,
            db_bytes_per_battle: (last.db_bytes - baseline.db_bytes) as f64 / battles,
            log_bytes_per_battle: last.log_bytes.saturating_sub(baseline.log_bytes) as f64
                / battles,
            check: check.describe(),
        }
    }

    fn print(&self) {
        println!(
            "soak result: {:.1} min, {} battles ({:.0}/s), {:.0} reads/s, {} failed requests",
            self.minutes,
            self.battles,
            self.battles_per_sec,
            self.reads_per_sec,
            self.request_errors
        );
        println!(
            "  memory: rss {:.1} MB after warm-up, {:.1} MB at the end (max {:.1} MB): drift {:+.1}% (target < 5%), trend {:+.0} KB/min",
            self.rss_warm_mb,
            self.rss_end_mb,
            self.rss_max_mb,
            self.drift_pct,
            self.slope_kb_per_min
        );
        if let Some((warm, end)) = self.heap_mb {
            println!(
                "  heap in use (jemalloc): {warm:.1} MB after warm-up, {end:.1} MB at the end: {:+.1}%",
                (end - warm) / warm.max(0.001) * 100.0
            );
        }
        println!(
            "  disk: {:.0} bytes per settled battle (target ≤ 3,000)",
            self.db_bytes_per_battle
        );
        println!(
            "  logs: {:.1} bytes per battle at the default level (target ≤ 50)",
            self.log_bytes_per_battle
        );
        println!("  books: {}", self.check);
    }

    fn json(&self) -> String {
        serde_json::json!({
            "minutes": self.minutes,
            "battles": self.battles,
            "battles_per_sec": self.battles_per_sec,
            "reads_per_sec": self.reads_per_sec,
            "request_errors": self.request_errors,
            "rss_warm_mb": self.rss_warm_mb,
            "heap_warm_mb": self.heap_mb.map(|h| h.0),
            "heap_end_mb": self.heap_mb.map(|h| h.1),
            "rss_end_mb": self.rss_end_mb,
            "rss_max_mb": self.rss_max_mb,
            "rss_drift_pct": self.drift_pct,
            "rss_trend_kb_per_min": self.slope_kb_per_min,
            "db_bytes_per_battle": self.db_bytes_per_battle,
            "log_bytes_per_battle": self.log_bytes_per_battle,
            "books": self.check,
        })
        .to_string()
    }
}

/// Least-squares slope of RSS over time, in bytes per second.
fn slope(samples: &[&Sample]) -> f64 {
    if samples.len() < 2 {
        return 0.0;
    }
    let n = samples.len() as f64;
    let xs: Vec<f64> = samples.iter().map(|s| s.at.as_secs_f64()).collect();
    let ys: Vec<f64> = samples.iter().map(|s| s.rss_bytes as f64).collect();
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let cov: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let var: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    if var == 0.0 { 0.0 } else { cov / var }
}
