//! [`Application`]: a bound node, ready to serve until its shutdown token is cancelled.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use hero_engine::BattleEngine;
use hero_protocol::NodeRegistration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{self, ApiKey};
use crate::capacity::Capacity;
use crate::config::NodeConfig;
use crate::lifecycle::Lifecycle;
use crate::server::{self, AppState};
use crate::stats::Stats;
use crate::telemetry;

/// How often histogram buckets are folded in between scrapes.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// A node whose listener is bound; [`Application::run_until_stopped`] serves it.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    public_url: String,
    name: String,
    api_key: String,
    engine_kind: &'static str,
    engine_model: Option<String>,
    drain_timeout: Duration,
    limits: hero_serve::Limits,
    router: Router,
    lifecycle: Option<Lifecycle>,
}

impl Application {
    /// Binds the listener and prepares the routes; nothing is served or registered yet.
    pub async fn build(config: NodeConfig, engine: Arc<dyn BattleEngine>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let local_addr = listener
            .local_addr()
            .context("listener has no local address")?;
        let public_url_given = config.public_url.is_some();
        let public_url = match config.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{local_addr}"),
        };
        reqwest::Url::parse(&public_url)
            .with_context(|| format!("invalid public URL {public_url:?}"))?;
        let name = config
            .name
            .unwrap_or_else(|| format!("hero-node-{}", auth::random_chars(6).to_lowercase()));
        let api_key = config
            .api_key
            .filter(|k| !k.trim().is_empty())
            .unwrap_or_else(ApiKey::generate);
        // The recorder first: the meters' handles count into whichever is installed.
        let prometheus = telemetry::prometheus();
        let meters = telemetry::Meters::new();
        let capacity = Capacity::new(
            config.max_concurrent_requests.max(1),
            meters.in_flight.clone(),
        );
        // The node's identity: kept in the key file, or fresh for an embedded node.
        let signer = Arc::new(match &config.key_file {
            Some(path) => crate::identity::load_or_create(path)?,
            None => hero_protocol::signing::VoteSigner::generate().map_err(anyhow::Error::msg)?,
        });

        let lifecycle = match config.aggregator_url {
            Some(aggregator) => {
                let aggregator = aggregator.trim_end_matches('/').to_string();
                let parsed = reqwest::Url::parse(&aggregator)
                    .with_context(|| format!("invalid aggregator URL {aggregator:?}"))?;
                if parsed.scheme() == "http" && !is_loopback_host(&parsed) {
                    tracing::warn!(%aggregator, "the aggregator URL is plain http:// on a non-loopback host: the enrollment token, node token and votes cross the network unencrypted; use https://");
                }
                if local_addr.ip().is_unspecified() && !public_url_given {
                    tracing::warn!(%public_url, "listening on all interfaces without --public-url; the aggregator may not reach this node");
                }
                Some(Lifecycle {
                    client: http_client()?,
                    aggregator,
                    registration: NodeRegistration {
                        name: name.clone(),
                        url: public_url.clone(),
                        api_key: Some(api_key.clone()),
                        weight: config.weight,
                        max_concurrent_requests: capacity.max(),
                        operator: config.operator,
                        backend: Some(engine.kind().to_string()),
                        model: engine.model().map(str::to_owned),
                        version: Some(env!("CARGO_PKG_VERSION").to_string()),
                        public_key: Some(signer.public_key_hex()),
                    },
                    enrollment_token: config.enrollment_token,
                    capacity: capacity.clone(),
                    signer: Arc::clone(&signer),
                })
            }
            None => None,
        };

        let state = AppState {
            name: Arc::from(name.as_str()),
            api_key: ApiKey::new(&api_key),
            capacity,
            stats: Arc::new(Stats::new()),
            prometheus,
            meters,
            engine: Arc::clone(&engine),
            signer,
        };
        Ok(Self {
            listener,
            local_addr,
            public_url,
            name,
            api_key,
            engine_kind: engine.kind(),
            engine_model: engine.model().map(str::to_owned),
            drain_timeout: Duration::from_secs(config.drain_timeout_secs),
            limits: hero_serve::Limits {
                max_connections: config.max_connections.max(1),
                max_connections_per_ip: config.max_connections_per_ip.max(1),
                header_read_timeout: Duration::from_millis(config.header_read_timeout_ms.max(100)),
            },
            router: server::router(state, Duration::from_secs(config.request_timeout_secs)),
            lifecycle,
        })
    }

    /// The address the listener is bound to (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The URL announced to the aggregator.
    pub fn public_url(&self) -> String {
        self.public_url.clone()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bearer key callers must present (generated when none was configured). A secret:
    /// never log it.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The one line the binary prints on stdout once listening.
    pub fn ready_line(&self) -> String {
        let mut line = format!(
            "hero-node ready: name={} listening=http://{} engine={}",
            self.name, self.local_addr, self.engine_kind
        );
        if let Some(model) = &self.engine_model {
            line.push_str(" model=");
            line.push_str(model);
        }
        line
    }

    /// Serves (and keeps the aggregator informed) until `shutdown` is cancelled; then leaves
    /// the aggregator's registry first (so no new battle is assigned), stops accepting, lets
    /// in-flight battles finish (bounded by the drain timeout), and returns.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let tracker = TaskTracker::new();
        let prometheus = telemetry::prometheus();
        let upkeep_stop = shutdown.clone();
        tracker.spawn(async move {
            let mut tick = tokio::time::interval(METRICS_UPKEEP);
            while upkeep_stop.run_until_cancelled(tick.tick()).await.is_some() {
                prometheus.run_upkeep();
            }
        });
        let lifecycle = self.lifecycle.map(Arc::new);
        let membership = lifecycle.as_ref().map(|lifecycle| {
            let lifecycle = Arc::clone(lifecycle);
            let stop = shutdown.clone();
            tracker.spawn(async move { lifecycle.run(stop).await })
        });
        tracker.close();

        // The listener stays open until the node has left the registry: battles assigned
        // meanwhile are still answered.
        let stop_accepting = CancellationToken::new();
        let serve = hero_serve::serve(
            self.listener,
            self.router,
            self.limits,
            stop_accepting.clone().cancelled_owned(),
        );
        let mut server = tokio::spawn(serve);
        let served = tokio::select! {
            served = &mut server => {
                shutdown.cancel();
                Some(served)
            }
            () = shutdown.cancelled() => None,
        };
        let session = match (lifecycle, membership) {
            (Some(lifecycle), Some(membership)) => membership
                .await
                .ok()
                .flatten()
                .map(|session| (lifecycle, session)),
            _ => None,
        };
        if let Some((lifecycle, session)) = session {
            lifecycle.deregister(&session).await;
        }
        stop_accepting.cancel();
        let served = match served {
            Some(served) => served,
            None => {
                tracing::info!(
                    drain_timeout_secs = self.drain_timeout.as_secs(),
                    "shutting down: draining in-flight battles"
                );
                match tokio::time::timeout(self.drain_timeout, &mut server).await {
                    Ok(served) => served,
                    Err(_) => {
                        tracing::warn!(
                            "drain timeout reached; stopping with battles still in flight"
                        );
                        server.abort();
                        Ok(Ok(()))
                    }
                }
            }
        };
        tracker.wait().await;
        served
            .context("server task failed")?
            .context("server failed")?;
        tracing::info!(name = %self.name, "node stopped");
        Ok(())
    }
}

/// Whether a URL's host is a loopback name or address.
fn is_loopback_host(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        // The aggregator closes idle keep-alive connections after its header deadline (10 s by
        // default, the heartbeat interval too): drop ours first, or a heartbeat races the
        // close and fails with a reset.
        .pool_idle_timeout(Duration::from_secs(4))
        // The aggregator answers itself: following a redirect would send the enrollment or
        // node token wherever it points.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("hero-node/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The aggregator spawns embedded nodes, so the future must be `Send`.
    #[test]
    fn running_a_node_is_a_send_future() {
        fn assert_send<T: Send>(_: &T) {}
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let config = NodeConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                ..NodeConfig::default()
            };
            let app = Application::build(config, Arc::new(hero_engine::Sim))
                .await
                .unwrap();
            assert_send(&app.run_until_stopped(CancellationToken::new()));
        });
    }
}
