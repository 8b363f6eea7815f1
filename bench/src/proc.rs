//! The programs under test as child processes: the real `hero-aggregator` and `hero-node`
//! binaries, logging to a file, measured from `/proc`, stopped gracefully.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use crate::threads::{Threads, Usage};

/// A release binary: the one given, or the one of that name beside this binary.
pub fn binary(given: Option<&PathBuf>, name: &str) -> anyhow::Result<PathBuf> {
    let bin = match given {
        Some(bin) => bin.clone(),
        None => std::env::current_exe()?.with_file_name(name),
    };
    anyhow::ensure!(
        bin.exists(),
        "no {name} binary at {} (build it: cargo build --release -p hero-bench -p hero-aggregator -p hero-node, or pass --{name}-bin)",
        bin.display(),
        name = name.trim_start_matches("hero-")
    );
    Ok(bin)
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A child process logging to a file at its default level.
pub struct Process {
    child: Child,
    pub log: PathBuf,
}

impl Process {
    /// Starts `bin` with `args` in `dir` (where it may write files of its own), its output
    /// appended to `log`.
    pub fn spawn(bin: &Path, args: &[String], dir: &Path, log: &Path) -> anyhow::Result<Process> {
        let log_file = std::fs::File::create(log)?;
        let child = Command::new(bin)
            .args(args)
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok(Process {
            child,
            log: log.to_owned(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size now (`VmRSS`), in bytes.
    pub fn rss(&self) -> anyhow::Result<u64> {
        self.status_bytes("VmRSS:")
    }

    /// The largest resident set size so far (`VmHWM`), in bytes.
    pub fn peak_rss(&self) -> anyhow::Result<u64> {
        self.status_bytes("VmHWM:")
    }

    fn status_bytes(&self, field: &str) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .with_context(|| format!("no {field} in /proc/<pid>/status"))?
            .parse()?;
        Ok(kb * 1024)
    }

    pub fn exited(&mut self) -> anyhow::Result<Option<std::process::ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// The last lines of its log, to say why it failed.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }

    /// Fails, with the end of its log, if it has exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.exited()? {
            anyhow::bail!(
                "it exited ({status}); its log {} ends: {}",
                self.log.display(),
                self.log_tail()
            );
        }
        Ok(())
    }

    /// SIGTERM (a graceful stop), then SIGKILL if it lingers.
    pub fn stop(mut self) {
        let _ = Command::new("kill").arg(self.pid().to_string()).status();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// CPU time (user and system) a process has used, in seconds; `None` for this process.
fn cpu_seconds(pid: Option<u32>) -> anyhow::Result<f64> {
    let path = pid.map_or("/proc/self/stat".to_owned(), |p| format!("/proc/{p}/stat"));
    let stat = std::fs::read_to_string(path)?;
    let ticks = crate::threads::cpu_ticks(&stat).context("unreadable /proc/<pid>/stat")?;
    Ok(ticks as f64 / 100.0)
}

/// The CPU a server process and this client used from a moment on, in cores (CPU seconds
/// per second): on two shared cores, what the load left the server.
pub struct Cpu {
    pid: u32,
    server: f64,
    client: f64,
    /// The server's threads at the start.
    threads: Threads,
    at: std::time::Instant,
}

impl Cpu {
    pub fn start(pid: u32) -> anyhow::Result<Cpu> {
        Ok(Cpu {
            pid,
            server: cpu_seconds(Some(pid))?,
            client: cpu_seconds(None)?,
            threads: Threads::of(pid),
            at: std::time::Instant::now(),
        })
    }

    /// What each of the server's threads used since the start, and the seconds that took.
    pub fn threads_used(&self) -> (Vec<Usage>, f64) {
        let used = self.threads.until(&Threads::of(self.pid));
        (used, self.at.elapsed().as_secs_f64())
    }

    /// Cores used by the server and by this client since the start.
    pub fn cores(&self) -> anyhow::Result<(f64, f64)> {
        let secs = self.at.elapsed().as_secs_f64().max(1e-3);
        Ok((
            (cpu_seconds(Some(self.pid))? - self.server) / secs,
            (cpu_seconds(None)? - self.client) / secs,
        ))
    }

    /// `server 1.52 cores, client 0.41`, and the same in the outcome's JSON under `key`.
    pub fn report(&self, outcome: &mut crate::report::Outcome, key: &str) -> anyhow::Result<()> {
        let (server, client) = self.cores()?;
        outcome.detail(format!(
            "{key} cpu: server {server:.2} cores, client {client:.2}"
        ));
        outcome.set(
            &format!("{key}_cpu_cores"),
            serde_json::json!({"server": server, "client": client}),
        );
        Ok(())
    }
}

pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
