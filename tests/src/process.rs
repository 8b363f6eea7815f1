//! Real binaries as child processes: started, waited on until their ready line, killed on drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use hero_testkit::TestDb;

/// Where cargo put the workspace binaries (`target/<profile>/`).
fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (scripts/test does: cargo build --workspace --bins)",
        path.display()
    );
    path
}

fn log_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("e2e-logs");
    std::fs::create_dir_all(&dir).expect("log dir");
    dir
}

/// A free TCP port on loopback (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A running child process; killed (SIGKILL) on drop.
pub struct Running {
    child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl Running {
    fn start(program: &str, args: &[String], ready_prefix: &'static str, label: &str) -> Running {
        let log = log_dir().join(format!("{label}-{}.log", uuid::Uuid::new_v4().simple()));
        let stderr = std::fs::File::create(&log).expect("log file");
        let mut child = Command::new(bin(program))
            .args(args)
            .env("RUST_LOG", "info,hero_aggregator=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent && line.starts_with(ready_prefix) {
                    let addr = line
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix("listening=http://"))
                        .and_then(|a| a.parse::<SocketAddr>().ok());
                    let _ = tx.send(addr);
                    sent = true;
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(addr)) => addr,
            _ => {
                let _ = child.kill();
                let logs = std::fs::read_to_string(&log).unwrap_or_default();
                panic!(
                    "{program} did not print its ready line; log {}:\n{logs}",
                    log.display()
                );
            }
        };
        Running { child, addr, log }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a graceful exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..300 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("process did not exit within 30 s of SIGTERM");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a workspace binary to completion (for start-up failures and `--help`) with `envs`
/// set and `env_removed` unset, and returns its exit status and output.
pub fn run_to_exit(
    program: &str,
    args: &[&str],
    envs: &[(&str, &str)],
    env_removed: &[&str],
) -> std::process::Output {
    let mut command = Command::new(bin(program));
    command.args(args).stdin(Stdio::null());
    for name in env_removed {
        command.env_remove(name);
    }
    for (name, value) in envs {
        command.env(name, value);
    }
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

pub const ADMIN_TOKEN: &str = "e2e-admin-token-0123456789";

/// Settings the tests vary; the rest are fixed for fast, deterministic runs.
#[derive(Debug, Clone)]
pub struct AggregatorOptions {
    pub port: u16,
    pub node_timeout_ms: u64,
    pub deadline_ms: u64,
    pub lease_ms: u64,
    pub max_replacements: usize,
    pub quorum_size: usize,
    /// Pass `--allow-private-node-urls` (loopback nodes need it).
    pub allow_private: bool,
    /// `--probation-votes`: 0 (off) unless a test is about probation.
    pub probation_votes: u64,
    pub extra: Vec<String>,
}

impl Default for AggregatorOptions {
    fn default() -> Self {
        Self {
            port: 0,
            node_timeout_ms: 3_000,
            deadline_ms: 5_000,
            lease_ms: 8_000,
            max_replacements: 3,
            quorum_size: 3,
            allow_private: true,
            probation_votes: 0,
            extra: Vec::new(),
        }
    }
}

pub struct Aggregator {
    pub process: Running,
    client: reqwest::Client,
}

impl Aggregator {
    pub fn start(db: &TestDb, options: &AggregatorOptions) -> Aggregator {
        let mut args: Vec<String> = [
            "--listen",
            &format!("127.0.0.1:{}", options.port),
            "--database-url",
            &db.url,
            "--admin-token",
            ADMIN_TOKEN,
            "--heartbeat-interval-secs",
            "1",
            "--flush-interval-ms",
            "200",
            "--sync-interval-ms",
            "500",
            "--poll-interval-ms",
            "100",
            "--node-timeout-ms",
            &options.node_timeout_ms.to_string(),
            "--consensus-deadline-ms",
            &options.deadline_ms.to_string(),
            "--battle-lease-ms",
            &options.lease_ms.to_string(),
            "--max-replacements",
            &options.max_replacements.to_string(),
            "--quorum-size",
            &options.quorum_size.to_string(),
            "--probation-votes",
            &options.probation_votes.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Every test talks from 127.0.0.1 and fights the same few players: the per-address
        // and per-opponent limits have tests of their own.
        for limit in [
            "--ip-limit-auth-per-minute",
            "--ip-limit-register-per-minute",
            "--ip-limit-heartbeat-per-minute",
            "--ip-limit-accounts-per-day",
            "--battles-per-opponent-per-day",
        ] {
            if !options.extra.iter().any(|e| e == limit) {
                args.extend([limit.to_string(), "100000".to_string()]);
            }
        }
        if options.allow_private {
            args.push("--allow-private-node-urls".into());
        }
        args.extend(options.extra.iter().cloned());
        Aggregator {
            process: Running::start(
                "hero-aggregator",
                &args,
                "hero-aggregator ready:",
                "aggregator",
            ),
            client: reqwest::Client::new(),
        }
    }

    pub fn url(&self) -> String {
        self.process.url()
    }

    pub async fn get(&self, path: &str) -> serde_json::Value {
        let resp = self
            .client
            .get(format!("{}{path}", self.url()))
            .send()
            .await
            .expect("GET");
        resp.json().await.expect("json body")
    }

    /// Nodes the aggregator reports online.
    pub async fn online_nodes(&self) -> usize {
        let nodes = self.get("/api/nodes").await;
        nodes
            .as_array()
            .map(|a| a.iter().filter(|n| n["status"] == "online").count())
            .unwrap_or(0)
    }

    pub async fn wait_online(&self, n: usize) {
        crate::eventually(30, &format!("{n} nodes online"), || async {
            (self.online_nodes().await >= n).then_some(())
        })
        .await;
    }

    /// Creates a battle through the admin endpoint; returns its id.
    pub async fn create_battle(&self, fighters: &[hero_protocol::Fighter], seed: u64) -> String {
        let resp = self
            .client
            .post(format!("{}/api/v1/admin/battles", self.url()))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({ "fighters": fighters, "seed": seed }))
            .send()
            .await
            .expect("create battle");
        assert_eq!(
            resp.status(),
            202,
            "create battle: {}",
            resp.text().await.unwrap_or_default()
        );
        let body: serde_json::Value = resp.json().await.expect("json");
        body["battle_id"].as_str().expect("battle_id").to_string()
    }

    /// Waits until the battle is COMPLETED or ERROR and returns it.
    pub async fn settled(&self, id: &str, secs: u64) -> serde_json::Value {
        crate::eventually(secs, "battle to settle", || async {
            let b = self.get(&format!("/api/v1/battles/{id}")).await;
            matches!(b["status"].as_str(), Some("COMPLETED" | "ERROR")).then_some(b)
        })
        .await
    }

    /// Creates a battle, waits for it, and checks that the nodes' quorum settled it with the
    /// Sim engine's winner (what every honest node answers); returns it.
    pub async fn quorum_battle(
        &self,
        fighters: &[hero_protocol::Fighter],
        seed: u64,
    ) -> serde_json::Value {
        let id = self.create_battle(fighters, seed).await;
        let battle = self.settled(&id, 30).await;
        assert_eq!(battle["settled_by"], "quorum", "{battle}");
        assert_eq!(
            battle["winner_id"],
            crate::fighters::sim_winner(&id, fighters, seed),
            "{battle}"
        );
        battle
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.url()))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// Waits until the battle shows `n` votes and returns it.
    pub async fn with_votes(&self, id: &str, n: usize, secs: u64) -> serde_json::Value {
        crate::eventually(secs, &format!("{n} votes recorded"), || async {
            let b = self.get(&format!("/api/v1/battles/{id}")).await;
            (b["votes"].as_array().map_or(0, Vec::len) >= n).then_some(b)
        })
        .await
    }
}

pub struct NodeProcess {
    pub process: Running,
}

/// A loopback address of its own for each test node (127.1.x.y): in an open network the
/// aggregator counts nodes by host, so nodes on distinct addresses are distinct operators.
pub fn loopback_host() -> std::net::Ipv4Addr {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::net::Ipv4Addr::new(127, 1, ((n >> 8) & 0xff) as u8, (n & 0xff) as u8)
}

/// A fresh path for a node's identity key file.
pub fn key_file(name: &str) -> String {
    let dir = std::env::temp_dir().join("hero-e2e-keys");
    std::fs::create_dir_all(&dir).expect("key dir");
    dir.join(format!("{name}-{}.key", uuid::Uuid::new_v4().simple()))
        .display()
        .to_string()
}

impl NodeProcess {
    /// A `hero-node` on a loopback address of its own, with its own identity key file.
    pub fn start(aggregator_url: &str, name: &str, extra: &[&str]) -> NodeProcess {
        Self::start_with_key(aggregator_url, name, &key_file(name), extra)
    }

    /// A `hero-node` with the given identity key file (the same file: the same node).
    pub fn start_with_key(
        aggregator_url: &str,
        name: &str,
        key_file: &str,
        extra: &[&str],
    ) -> NodeProcess {
        let listen = format!("{}:0", loopback_host());
        Self::start_on(aggregator_url, name, &listen, key_file, extra)
    }

    /// A `hero-node` listening on `listen` (`ip:port`), with its own identity key file.
    pub fn start_listening(
        aggregator_url: &str,
        name: &str,
        listen: &str,
        extra: &[&str],
    ) -> NodeProcess {
        Self::start_on(aggregator_url, name, listen, &key_file(name), extra)
    }

    fn start_on(
        aggregator_url: &str,
        name: &str,
        listen: &str,
        key_file: &str,
        extra: &[&str],
    ) -> NodeProcess {
        let mut args: Vec<String> = [
            "--listen",
            listen,
            "--aggregator-url",
            aggregator_url,
            "--name",
            name,
            "--key-file",
            key_file,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        NodeProcess {
            process: Running::start("hero-node", &args, "hero-node ready:", name),
        }
    }
}
