//! `hero-bench soak`: what an operator would try before going live. Starts the real
//! `hero-aggregator` binary with three local nodes, keeps it under steady load for N minutes
//! (writers creating admin battles, readers reading the latest one) and samples the process
//! every interval: resident memory, battles settled, database size and log size. At the end it
//! reports memory drift after warm-up, bytes per battle on disk and log bytes per battle, and
//! checks that every battle of the run was settled once, by quorum, with at least two agreeing
//! valid votes recorded.
//!
//! Nothing here scrapes `/metrics`: an aggregator nobody scrapes must stay flat too.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

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

const ADMIN: &str = "soak-admin-token-0123456789abcdef";
const NODES: u64 = 3;
/// Battles remembered for the readers.
const RECENT: usize = 1024;

/// One sample of the aggregator process and its storage.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    rss_bytes: u64,
    settled: i64,
    db_bytes: i64,
    log_bytes: u64,
}

pub async fn run(args: &SoakArgs, db_url: &str, dir: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(args.minutes > 0.0, "--minutes must be positive");
    anyhow::ensure!(args.interval_secs > 0, "--interval-secs must be positive");
    anyhow::ensure!(args.writers > 0, "--writers must be at least 1");
    let bin = match &args.aggregator_bin {
        Some(bin) => bin.clone(),
        None => std::env::current_exe()?.with_file_name("hero-aggregator"),
    };
    anyhow::ensure!(
        bin.exists(),
        "no aggregator binary at {} (build it: cargo build --release -p hero-aggregator, or pass --aggregator-bin)",
        bin.display()
    );
    std::fs::create_dir_all(dir)?;
    let log_path = dir.join("aggregator.log");
    let port = free_port()?;
    let mut child = Aggregator::spawn(&bin, port, db_url, &log_path)?;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_online(&client, &base, &mut child).await?;

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
        settled: 0,
        db_bytes: storage.bytes(&pool).await?,
        log_bytes: file_len(&log_path),
    };
    // The aggregator inherits the allocator's settings from this environment (the Dockerfile,
    // compose and Kubernetes set MALLOC_ARENA_MAX=2): say which, the figures depend on it.
    let arenas = std::env::var("MALLOC_ARENA_MAX").unwrap_or_else(|_| "glibc's default".into());
    println!(
        "soak: {} minutes, {} writers{}, {} readers, sample every {} s; database {}; \
         MALLOC_ARENA_MAX {arenas}; aggregator pid {}",
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
        let unsettled = unsettled(&pool, started_ms).await?;
        let created = i64::try_from(load.created.load(Ordering::Relaxed))?;
        let sample = Sample {
            at: began.elapsed(),
            rss_bytes: child.rss()?,
            settled: created - unsettled,
            db_bytes: storage.bytes(&pool).await?,
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
        settled: check.settled,
        db_bytes: storage.bytes(&pool).await?,
        log_bytes: file_len(&log_path),
    };
    child.stop();
    let summary = Summary::of(args, &samples, &baseline, &last, &load, &check);
    summary.print();
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
        "[{:>5.0} s] rss {:>6.1} MB  settled {:>9} ({:>5.0}/s)  db +{:>8.1} MB ({:>6.0} B/battle)  log +{:>7.2} MB ({:>4.0} B/battle)",
        s.at.as_secs_f64(),
        mb(s.rss_bytes),
        s.settled,
        rate,
        (s.db_bytes - baseline.db_bytes) as f64 / 1e6,
        (s.db_bytes - baseline.db_bytes) as f64 / settled,
        s.log_bytes.saturating_sub(baseline.log_bytes) as f64 / 1e6,
        s.log_bytes.saturating_sub(baseline.log_bytes) as f64 / settled,
    );
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Battles of this run not settled yet (cheap: the claim index covers it).
async fn unsettled(pool: &sqlx::AnyPool, since_ms: i64) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM battles WHERE status IN ('PENDING', 'RUNNING') AND created_at_ms >= $1",
    )
    .bind(since_ms)
    .fetch_one(pool)
    .await?)
}

/// The aggregator under test, a child process logging to a file at its default level.
struct Aggregator(Child);

impl Aggregator {
    fn spawn(bin: &Path, port: u16, db_url: &str, log: &Path) -> anyhow::Result<Aggregator> {
        let log_file = std::fs::File::create(log)?;
        let child = Command::new(bin)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--database-url", db_url])
            .args(["--admin-token", ADMIN])
            .args(["--local-nodes", &NODES.to_string()])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok(Aggregator(child))
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Resident set size, from `/proc/<pid>/status`.
    fn rss(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .context("no VmRSS in /proc/<pid>/status")?
            .parse()?;
        Ok(kb * 1024)
    }

    fn exited(&mut self) -> anyhow::Result<Option<std::process::ExitStatus>> {
        Ok(self.0.try_wait()?)
    }

    /// SIGTERM (a graceful stop), then SIGKILL if it lingers.
    fn stop(mut self) {
        let _ = Command::new("kill").arg(self.pid().to_string()).status();
        for _ in 0..100 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Aggregator {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

async fn wait_online(
    client: &reqwest::Client,
    base: &str,
    child: &mut Aggregator,
) -> anyhow::Result<()> {
    for _ in 0..600 {
        if let Some(status) = child.exited()? {
            anyhow::bail!("the aggregator exited at start ({status})");
        }
        if let Ok(r) = client.get(format!("{base}/api/health")).send().await
            && let Ok(health) = r.json::<serde_json::Value>().await
            && health["nodes"]["online"].as_u64() == Some(NODES)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the aggregator's local nodes did not come online within a minute")
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
                    match crate::create_at(&client, &base, ADMIN).await {
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

/// The books after the run: every battle of the run settled once, by quorum, with its votes.
#[derive(Debug, Default)]
struct Check {
    created: i64,
    settled: i64,
    by_quorum: i64,
    by_fallback: i64,
    errors: i64,
    retried: i64,
    /// Settled by quorum with fewer than 2 agreeing valid votes recorded: a broken book.
    without_quorum_votes: i64,
    /// Battles with fewer than 3 votes: a node was not selectable (busy or late on its
    /// heartbeat under load), which a quorum of 2 of 3 settles all the same.
    two_node_battles: i64,
}

impl Check {
    async fn run(pool: &sqlx::AnyPool, since_ms: i64) -> anyhow::Result<Check> {
        let count = |sql: &'static str| async move {
            let n: i64 = sqlx::query_scalar(sql)
                .bind(since_ms)
                .fetch_one(pool)
                .await?;
            anyhow::Ok(n)
        };
        Ok(Check {
            created: count("SELECT COUNT(*) FROM battles WHERE created_at_ms >= $1").await?,
            settled: count(
                "SELECT COUNT(*) FROM battles WHERE created_at_ms >= $1 \
                 AND status IN ('COMPLETED', 'ERROR')",
            )
            .await?,
            by_quorum: count(
                "SELECT COUNT(*) FROM battles WHERE created_at_ms >= $1 AND settled_by = 'quorum'",
            )
            .await?,
            by_fallback: count(
                "SELECT COUNT(*) FROM battles WHERE created_at_ms >= $1 \
                 AND settled_by = 'fallback'",
            )
            .await?,
            errors: count(
                "SELECT COUNT(*) FROM battles WHERE created_at_ms >= $1 AND status = 'ERROR'",
            )
            .await?,
            retried: count(
                "SELECT COUNT(*) FROM battles WHERE created_at_ms >= $1 AND attempts <> 1",
            )
            .await?,
            without_quorum_votes: count(
                "SELECT COUNT(*) FROM battles b WHERE b.created_at_ms >= $1 AND \
                 (SELECT COUNT(*) FROM battle_votes v WHERE v.battle_id = b.id AND v.is_valid = 1 \
                  AND v.agrees = 1) < 2",
            )
            .await?,
            two_node_battles: count(
                "SELECT COUNT(*) FROM battles b WHERE b.created_at_ms >= $1 AND \
                 (SELECT COUNT(*) FROM battle_votes v WHERE v.battle_id = b.id) < 3",
            )
            .await?,
        })
    }

    fn problems(&self) -> i64 {
        (self.created - self.by_quorum) + self.without_quorum_votes
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
            drift_pct: (end_rss as f64 - warm_rss as f64) / (warm_rss.max(1) as f64) * 100.0,
            slope_kb_per_min: slope(&after_warm) / 1024.0 * 60.0,
            db_bytes_per_battle: (last.db_bytes - baseline.db_bytes) as f64 / battles,
            log_bytes_per_battle: last.log_bytes.saturating_sub(baseline.log_bytes) as f64
                / battles,
            check: format!(
                "{} created, {} settled: {} by quorum, {} by fallback, {} errors; {} retried; {} without 2 agreeing valid votes; {} asked only 2 nodes",
                check.created,
                check.settled,
                check.by_quorum,
                check.by_fallback,
                check.errors,
                check.retried,
                check.without_quorum_votes,
                check.two_node_battles
            ),
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
