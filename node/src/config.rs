//! Node settings: every flag has an environment variable, and secrets never show in `Debug`.

use std::fmt;
use std::net::SocketAddr;

use clap::{Args, Parser, ValueEnum};

use crate::llm_config::LlmArgs;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8001";
/// Default scheduling weight announced at registration.
pub const DEFAULT_WEIGHT: u32 = 1;
/// Default number of battles generated at once before answering 503.
pub const DEFAULT_MAX_CONCURRENT: u32 = 5;
/// Default bound on how long shutdown waits for in-flight battles.
pub const DEFAULT_DRAIN_TIMEOUT_SECS: u64 = 30;

/// Settings of one node. The binary fills it from flags and `HERO_NODE_*` variables; the
/// aggregator's `--local-nodes` mode and tests build one by hand (start from `Default`).
#[derive(Clone, Args)]
pub struct NodeConfig {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "HERO_NODE_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// URL the aggregator uses to reach this node [default: http://<bound address>].
    #[arg(long, env = "HERO_NODE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Name shown in the aggregator's node list [default: hero-node-<6 random characters>].
    #[arg(long, env = "HERO_NODE_NAME")]
    pub name: Option<String>,

    /// Bearer key callers must present on /generate_battle. A random one is generated when
    /// none is given; it is sent to the aggregator at registration.
    #[arg(long, env = "HERO_NODE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Aggregator base URL to register with; without it the node runs standalone.
    #[arg(long, env = "HERO_NODE_AGGREGATOR_URL")]
    pub aggregator_url: Option<String>,

    /// Enrollment token sent as Bearer when registering, if the aggregator requires one.
    #[arg(long, env = "HERO_NODE_ENROLLMENT_TOKEN", hide_env_values = true)]
    pub enrollment_token: Option<String>,

    /// Who runs this node; the aggregator picks at most one node per operator per battle.
    #[arg(long, env = "HERO_NODE_OPERATOR")]
    pub operator: Option<String>,

    /// Scheduling weight announced to the aggregator.
    #[arg(long, env = "HERO_NODE_WEIGHT", default_value_t = DEFAULT_WEIGHT)]
    pub weight: u32,

    /// Battles generated at once; further requests get 503 with Retry-After.
    #[arg(
        long,
        env = "HERO_NODE_MAX_CONCURRENT_REQUESTS",
        default_value_t = DEFAULT_MAX_CONCURRENT,
        value_parser = clap::value_parser!(u32).range(1..=100_000),
    )]
    pub max_concurrent_requests: u32,

    /// Seconds shutdown waits for in-flight battles (after leaving the aggregator's registry,
    /// so no new battle arrives) before stopping anyway.
    #[arg(long, env = "HERO_NODE_DRAIN_TIMEOUT_SECS", default_value_t = DEFAULT_DRAIN_TIMEOUT_SECS)]
    pub drain_timeout_secs: u64,

    /// File holding the node's Ed25519 identity key (created on first start, mode 0600). The
    /// aggregator knows the node by this key: keep the file to stay the same node (reputation,
    /// URL) across restarts; one file per node.
    #[arg(long, env = "HERO_NODE_KEY_FILE", default_value = DEFAULT_KEY_FILE)]
    pub key_file: Option<std::path::PathBuf>,

    /// Most open connections; more are closed at once.
    #[arg(long, env = "HERO_NODE_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// Most open connections from one address (an aggregator keeps a pool of them).
    #[arg(long, env = "HERO_NODE_MAX_CONNECTIONS_PER_IP", default_value_t = 1024)]
    pub max_connections_per_ip: usize,

    /// Longest a client may take to send a request's headers, or idle between requests, or
    /// read nothing of an answer before the connection is closed (milliseconds).
    #[arg(
        long,
        env = "HERO_NODE_HEADER_READ_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub header_read_timeout_ms: u64,

    /// Longest one request may take, generation included (seconds); 408 after that. Keep it
    /// above the engine's own timeout (--llm-timeout-secs).
    #[arg(long, env = "HERO_NODE_REQUEST_TIMEOUT_SECS", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_secs: u64,
}

/// Where the identity key lives unless told otherwise.
pub const DEFAULT_KEY_FILE: &str = "data/hero-node.key";

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8001)),
            public_url: None,
            name: None,
            api_key: None,
            aggregator_url: None,
            enrollment_token: None,
            operator: None,
            weight: DEFAULT_WEIGHT,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT,
            drain_timeout_secs: DEFAULT_DRAIN_TIMEOUT_SECS,
            // Embedded and test nodes get a fresh identity each start.
            key_file: None,
            max_connections: 4096,
            max_connections_per_ip: 1024,
            header_read_timeout_ms: 10_000,
            request_timeout_secs: 120,
        }
    }
}

impl fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("NodeConfig")
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("name", &self.name)
            .field("api_key", &redacted(&self.api_key))
            .field("aggregator_url", &self.aggregator_url)
            .field("enrollment_token", &redacted(&self.enrollment_token))
            .field("operator", &self.operator)
            .field("weight", &self.weight)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .field("drain_timeout_secs", &self.drain_timeout_secs)
            .field("key_file", &self.key_file)
            .field("max_connections", &self.max_connections)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("header_read_timeout_ms", &self.header_read_timeout_ms)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .finish()
    }
}

/// Which battle engine generates results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineKind {
    /// Deterministic, seeded simulation; needs no network or key.
    Sim,
    /// Google Gemini (`generateContent`); needs --gemini-api-key.
    Gemini,
    /// An OpenAI-compatible chat server (Ollama, vLLM, llama.cpp server, OpenAI); needs
    /// --openai-base-url and --openai-model.
    #[value(name = "openai")]
    OpenAi,
}

/// How logs are written (to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `hero-node`: generates battle results for the AI Hero Battle aggregator.
#[derive(Debug, Parser)]
#[command(name = "hero-node", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub node: NodeConfig,

    /// Battle engine behind /generate_battle.
    #[arg(long, env = "HERO_NODE_ENGINE", value_enum, default_value_t = EngineKind::Sim)]
    pub engine: EngineKind,

    /// Log format.
    #[arg(long, env = "HERO_NODE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    // Last: its help heading would apply to the flags after it.
    #[command(flatten)]
    pub llm: LlmArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_match_the_flags() {
        let cli = Cli::try_parse_from(["hero-node"]).unwrap();
        let d = NodeConfig::default();
        assert_eq!(cli.node.listen, d.listen);
        assert_eq!(cli.node.weight, d.weight);
        assert_eq!(cli.node.max_concurrent_requests, d.max_concurrent_requests);
        assert_eq!(cli.node.drain_timeout_secs, d.drain_timeout_secs);
        assert_eq!(cli.engine, EngineKind::Sim);
    }

    #[test]
    fn zero_capacity_is_refused() {
        assert!(Cli::try_parse_from(["hero-node", "--max-concurrent-requests", "0"]).is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let config = NodeConfig {
            api_key: Some("key-sekrit".into()),
            enrollment_token: Some("enroll-sekrit".into()),
            ..NodeConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("sekrit"), "{shown}");
    }
}
