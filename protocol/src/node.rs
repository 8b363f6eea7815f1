//! Node life cycle: registration, heartbeats, health and statistics.

use serde::{Deserialize, Serialize};

fn default_weight() -> u32 {
    1
}

fn default_max_concurrent() -> u32 {
    5
}

/// `POST /api/nodes/register` body. The first five fields are the seed's; the rest are
/// optional extensions.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeRegistration {
    pub name: String,
    /// Base URL where the aggregator reaches the node (`http://host:port`).
    pub url: String,
    /// Bearer key the aggregator must send to the node.
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default = "default_weight")]
    pub weight: u32,
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent_requests: u32,
    /// Who runs the node; at most one node per operator serves a battle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// Engine behind the node (`sim`, `gemini`, `openai`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Model behind the engine (`gemini-2.5-flash`, `smollm2`, ...); absent for `sim`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Ed25519 public key (hex); when given, every result must carry a valid
    /// `X-Node-Signature` (see `signing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

impl std::fmt::Debug for NodeRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeRegistration")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("weight", &self.weight)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .field("operator", &self.operator)
            .field("backend", &self.backend)
            .field("model", &self.model)
            .field("version", &self.version)
            .field("public_key", &self.public_key)
            .finish()
    }
}

/// Answer to a registration: the node's id, the token it heartbeats with, and how often.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegistrationReply {
    pub node_id: String,
    pub node_token: String,
    pub heartbeat_interval_secs: u64,
}

impl std::fmt::Debug for RegistrationReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationReply")
            .field("node_id", &self.node_id)
            .field("node_token", &"<redacted>")
            .field("heartbeat_interval_secs", &self.heartbeat_interval_secs)
            .finish()
    }
}

/// `POST /api/nodes/heartbeat` body, sent with `Authorization: Bearer <node_token>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Heartbeat {
    pub node_id: String,
    #[serde(default)]
    pub current_requests: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeartbeatReply {
    pub status: String,
    pub heartbeat_interval_secs: u64,
}

/// A node's `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeHealth {
    pub status: String,
    pub name: String,
    pub current_requests: u32,
    pub max_concurrent_requests: u32,
    /// Engine kind: `sim`, `gemini`, `openai`.
    pub backend: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// How the model's answers are constrained (`json_schema`, `json_object+schema`), for
    /// engines that negotiate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_constraint: Option<String>,
    /// Median time of the node's recent answers (up to the last 32), once it has answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent_latency_ms: Option<u64>,
    /// The node's Ed25519 public key (hex), the one it registers and signs votes with: the
    /// URL serving it vouches for the key, so an aggregator can give a URL back to its real
    /// node when another key claimed it first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

/// A node's `GET /stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeStats {
    pub name: String,
    pub backend: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub requests: u64,
    pub successes: u64,
    pub failures: u64,
    /// Requests refused with 503 because the node was at capacity.
    pub rejected_at_capacity: u64,
    pub average_latency_ms: f64,
    pub current_requests: u32,
    pub max_concurrent_requests: u32,
    pub uptime_secs: u64,
    /// Battles the engine returned only after repairing their arithmetic or winner.
    #[serde(default)]
    pub repaired_results: u64,
}

/// One entry of the aggregator's public `GET /api/nodes`: never a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeInfo {
    pub id: String,
    pub name: String,
    pub url: String,
    /// `online`, `offline` (heartbeats stopped or it left), `quarantined` (circuit breaker
    /// open), `busy` (it answered 503 and asked to be left alone until its `Retry-After`) or
    /// `maintenance` (taken out of selection by an admin).
    pub status: String,
    pub operator: Option<String>,
    pub backend: Option<String>,
    /// The model the node registered (absent for `sim` and for nodes that did not say).
    #[serde(default)]
    pub model: Option<String>,
    pub weight: u32,
    pub reputation: f64,
    pub max_concurrent_requests: u32,
    pub current_requests: u32,
    pub total_requests: u64,
    pub successful_requests: u64,
    pub avg_response_time_ms: f64,
    /// Share of this node's valid votes that agreed with the verdict.
    pub agreement_rate: f64,
    pub last_heartbeat_ms: Option<i64>,
    /// A new identity: it votes in the shadow (recorded, never counted) until it has agreed
    /// with enough verdicts.
    #[serde(default)]
    pub probation: bool,
    /// Taken out of selection by an admin.
    #[serde(default)]
    pub maintenance: bool,
    /// Registered an Ed25519 key: its registrations and votes are signed.
    #[serde(default)]
    pub signed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_registration_decodes_with_defaults() {
        let r: NodeRegistration =
            serde_json::from_str(r#"{"name":"n1","url":"http://10.0.0.5:8001","extra":true}"#)
                .unwrap();
        assert_eq!(r.weight, 1);
        assert_eq!(r.max_concurrent_requests, 5);
        assert_eq!(r.api_key, None);
    }

    #[test]
    fn debug_never_shows_secrets() {
        let r = NodeRegistration {
            name: "n".into(),
            url: "http://x".into(),
            api_key: Some("sekrit".into()),
            weight: 1,
            max_concurrent_requests: 5,
            operator: None,
            backend: None,
            model: None,
            version: None,
            public_key: None,
        };
        assert!(!format!("{r:?}").contains("sekrit"));
        let reply = RegistrationReply {
            node_id: "id".into(),
            node_token: "tok-sekrit".into(),
            heartbeat_interval_secs: 10,
        };
        assert!(!format!("{reply:?}").contains("tok-sekrit"));
    }

    #[test]
    fn heartbeat_matches_seed_shape() {
        let hb: Heartbeat =
            serde_json::from_str(r#"{"node_id":"abc","current_requests":2}"#).unwrap();
        assert_eq!(hb.current_requests, 2);
    }
}
