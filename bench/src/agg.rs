//! The aggregator under test: the real `hero-aggregator` binary as a child process on its own
//! port and database, and the calls every scenario makes to it.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use hyper::Method;

use crate::lean;
use crate::proc::{Process, free_port};

pub const ADMIN: &str = "bench-admin-token-0123456789abcdef";

/// A running aggregator.
pub struct Aggregator {
    pub process: Process,
    pub addr: SocketAddr,
}

impl Aggregator {
    /// Starts `bin` on `database_url` with `local_nodes` in-process Sim nodes and the `extra`
    /// flags, its files and log in `dir`; waits until the local nodes are online.
    pub async fn start(
        bin: &Path,
        dir: &Path,
        database_url: &str,
        local_nodes: usize,
        extra: &[&str],
    ) -> anyhow::Result<Aggregator> {
        std::fs::create_dir_all(dir)?;
        let port = free_port()?;
        let mut args: Vec<String> = [
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            database_url,
            "--admin-token",
            ADMIN,
            "--local-nodes",
            &local_nodes.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let process = Process::spawn(bin, &args, dir, &dir.join("aggregator.log"))?;
        let mut aggregator = Aggregator {
            process,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        aggregator.wait_online(local_nodes).await?;
        Ok(aggregator)
    }

    /// Waits (a minute at most) until `nodes` nodes are online.
    pub async fn wait_online(&mut self, nodes: usize) -> anyhow::Result<()> {
        for _ in 0..600 {
            self.process
                .ensure_running()
                .context("the aggregator did not start")?;
            if let Ok(health) = lean::get_json(self.addr, "/api/health").await
                && health["nodes"]["online"].as_u64() == Some(nodes as u64)
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!(
            "{nodes} nodes were not online within a minute; the aggregator's log: {}",
            self.process.log.display()
        )
    }

    /// The `/metrics` page.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let answer = lean::call(
            self.addr,
            lean::request(Method::GET, "/metrics", None, None)?,
        )
        .await?;
        anyhow::ensure!(answer.status.is_success(), "/metrics: {}", answer.status);
        Ok(String::from_utf8_lossy(&answer.body).into_owned())
    }

    /// Creates a node operator; its enrollment token.
    pub async fn operator(&self, name: &str) -> anyhow::Result<String> {
        let body = serde_json::json!({"name": name, "max_nodes": 1}).to_string();
        let created = lean::call(
            self.addr,
            lean::request(
                Method::POST,
                "/api/v1/admin/operators",
                Some(ADMIN),
                Some(body),
            )?,
        )
        .await?
        .ok_json()?;
        created["enrollment_token"]
            .as_str()
            .map(str::to_owned)
            .context("no enrollment token in the answer")
    }

    pub fn stop(self) {
        self.process.stop();
    }
}

/// Whether the aggregator binary has a flag (`--help` names it): for flags being added.
pub fn has_flag(bin: &Path, flag: &str) -> bool {
    std::process::Command::new(bin)
        .arg("--help")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(flag))
}

/// The two fighters of every admin battle.
pub fn fighters() -> serde_json::Value {
    serde_json::json!([
        {"id":"c1","name":"Aria","strength":60,"agility":40,"luck":30,"rarity":3,"skill_description":"Storm blade"},
        {"id":"c2","name":"Borin","strength":45,"agility":55,"luck":35,"rarity":2,"skill_description":"Shield bash"}
    ])
}

/// The body of `POST /api/v1/admin/battles`.
pub fn admin_battle_body() -> String {
    serde_json::json!({"fighters": fighters()}).to_string()
}

/// Requests creating admin battles, for [`lean::drive`].
pub fn admin_battles() -> impl Fn(u64) -> anyhow::Result<hyper::Request<String>> + Send + Sync {
    let body = admin_battle_body();
    move |_| {
        lean::request(
            Method::POST,
            "/api/v1/admin/battles",
            Some(ADMIN),
            Some(body.clone()),
        )
    }
}

/// Creates one admin battle on the aggregator at `base`; returns its id.
pub async fn create_at(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
) -> anyhow::Result<String> {
    let body: serde_json::Value = client
        .post(format!("{base}/api/v1/admin/battles"))
        .bearer_auth(admin)
        .json(&serde_json::json!({"fighters": fighters()}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    body["battle_id"]
        .as_str()
        .map(str::to_owned)
        .context("no battle id")
}
