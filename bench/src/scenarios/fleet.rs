//! A fleet of registered nodes without servers behind them, for the aggregator's memory: each
//! registers as a real node does (node/src/lifecycle.rs: an Ed25519 key of its own, the body
//! signed with a timestamp, the shared enrollment token of an open network), then heartbeats
//! with its node token at the interval the aggregator asked for, the fleet spread evenly over it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hero_protocol::signing::{
    SIGNATURE_HEADER, TIMESTAMP_HEADER, VoteSigner, registration_message,
};
use hero_protocol::{Heartbeat, NodeRegistration, RegistrationReply};
use hyper::Method;

use crate::lean::{self, Plan, Tally};

/// The shared enrollment token of the open network the fleet joins.
pub const ENROLLMENT: &str = "bench-enrollment-token-0123456789";

/// Aggregator flags for the fleet: an open network with a shared token, node URLs on
/// loopback, and no per-address limit on registrations and heartbeats (they all come from
/// 127.0.0.1).
pub const FLEET_FLAGS: [&str; 7] = [
    "--enrollment-token",
    ENROLLMENT,
    "--allow-private-node-urls",
    "--ip-limit-register-per-minute",
    "0",
    "--ip-limit-heartbeat-per-minute",
    "0",
];

/// Registered nodes: id and node token of each, and the heartbeat interval.
pub struct Fleet {
    nodes: Arc<Vec<RegistrationReply>>,
    pub interval: Duration,
}

/// Node `i`'s URL: a loopback address of its own (each node its own host, so its own operator
/// in an open network), nothing listening behind it.
fn url(i: u64) -> String {
    let j = i + 1;
    format!(
        "http://127.{}.{}.{}:8001",
        (j >> 16) & 255,
        (j >> 8) & 255,
        j & 255
    )
}

/// A signed registration of node `i`.
fn registration(i: u64) -> anyhow::Result<hyper::Request<String>> {
    let signer = VoteSigner::generate().map_err(anyhow::Error::msg)?;
    let body = serde_json::to_string(&NodeRegistration {
        name: format!("rss-node-{i}"),
        url: url(i),
        api_key: Some(format!("rss-node-key-{i}")),
        weight: 1,
        max_concurrent_requests: 5,
        operator: None,
        backend: Some("sim".into()),
        model: None,
        version: Some(env!("CARGO_PKG_VERSION").into()),
        public_key: Some(signer.public_key_hex()),
    })?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let timestamp = i64::try_from(now_ms)?;
    let signature = signer.sign(&registration_message(timestamp, body.as_bytes()));
    let request = lean::request(
        Method::POST,
        "/api/nodes/register",
        Some(ENROLLMENT),
        Some(body),
    )?;
    let request = lean::with_header(request, TIMESTAMP_HEADER, &timestamp.to_string())?;
    lean::with_header(request, SIGNATURE_HEADER, &signature)
}

impl Fleet {
    /// Registers `n` nodes with the aggregator at `addr`.
    pub async fn register(addr: SocketAddr, n: u64) -> anyhow::Result<Fleet> {
        let tally = lean::drive(addr, Plan::count(n, 16).keeping_answers(), registration).await?;
        anyhow::ensure!(
            tally.all(200),
            "not every registration was accepted: {}",
            tally.statuses_text()
        );
        let nodes = tally
            .answers
            .iter()
            .map(|(_, a)| Ok(serde_json::from_slice::<RegistrationReply>(&a.body)?))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let interval = nodes
            .first()
            .map(|n| Duration::from_secs(n.heartbeat_interval_secs))
            .context("no node registered")?;
        Ok(Fleet {
            nodes: Arc::new(nodes),
            interval,
        })
    }

    /// Heartbeats for `duration`: every node once per interval, spread evenly.
    pub async fn heartbeat(&self, addr: SocketAddr, duration: Duration) -> anyhow::Result<Tally> {
        let nodes = Arc::clone(&self.nodes);
        let rate = nodes.len() as f64 / self.interval.as_secs_f64().max(0.001);
        let plan = Plan::timed(duration, 16).paced(rate);
        lean::drive(addr, plan, move |i| {
            let node = &nodes[(i % nodes.len() as u64) as usize];
            let beat = Heartbeat {
                node_id: node.node_id.clone(),
                current_requests: 0,
            };
            lean::request(
                Method::POST,
                "/api/nodes/heartbeat",
                Some(&node.node_token),
                Some(serde_json::to_string(&beat)?),
            )
        })
        .await
    }
}
