//! `Application`: assembles the domains from a [`Config`]; each domain starts itself and
//! registers its tasks with the [`Supervisor`], which owns the shutdown order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::battles::VerdictEffects;
use crate::cli::ServeArgs;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::consensus::{Consensus, LocalEngines};
use crate::db::Db;
use crate::state::AppState;
use crate::supervisor::{Stage, Supervisor};

pub struct Application {
    listener: TcpListener,
    state: AppState,
    supervisor: Supervisor,
    /// Enrollment tokens of the local operators, one per local node.
    local_tokens: Vec<String>,
}

impl Application {
    /// Checks the flags, connects the database, starts the domains and binds the listener.
    pub async fn build(args: ServeArgs) -> anyhow::Result<Application> {
        Self::build_with_clock(args, Arc::new(SystemClock)).await
    }

    /// `build` with a given clock: tests move a `ManualClock` through energy regeneration and
    /// daily resets without sleeping.
    pub async fn build_with_clock(args: ServeArgs, clock: SharedClock) -> anyhow::Result<Self> {
        Self::assemble(args.into_config()?, clock).await
    }

    pub async fn assemble(config: Config, clock: SharedClock) -> anyhow::Result<Self> {
        let db = Db::connect(&config.database.url, config.database.max_connections).await?;
        // Bound before anything starts, so a busy port leaves no task behind.
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let mut supervisor = Supervisor::new();
        let nodes = crate::nodes::start(&db, &clock, &config.nodes, &mut supervisor).await?;
        let engines = LocalEngines::from_settings(&config.fallback)?;
        let consensus = Arc::new(Consensus::new(
            Arc::clone(&nodes.registry),
            Arc::clone(&clock),
            config.consensus.clone(),
            engines.fallbacks,
            config.nodes.allow_private_node_urls,
        )?);
        let game = Arc::new(crate::game::Game::new(&config.game, db.dialect));
        let auth = Arc::new(crate::auth::Auth::build(&config.auth, &db, clock.now_ms()).await?);
        let effects = VerdictEffects::new(vec![Arc::new(crate::game::rewards::PlayerRewards {
            ledger: game.ledger,
        })]);
        let battle_wake = crate::battles::start(
            crate::battles::Parts {
                db: db.clone(),
                consensus,
                clock: Arc::clone(&clock),
                effects,
                probation_votes: config.nodes.probation_votes,
            },
            &config.worker,
            &mut supervisor,
        );
        let state = AppState {
            ip_limiter: Arc::new(crate::http::ip_limit::IpLimiter::new(
                config.net.ip_limits(),
            )),
            db,
            registry: nodes.registry,
            clock,
            nodes: Arc::new(config.nodes),
            consensus: Arc::new(config.consensus),
            admin: Arc::new(config.admin),
            net: Arc::new(config.net),
            battle_wake,
            metrics: crate::http::metrics::handle(),
            summoner: engines.summoner,
            auth,
            game,
        };
        Ok(Application {
            listener,
            state,
            supervisor,
            local_tokens: nodes.local_tokens,
        })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves HTTP and starts the local nodes (registered over that HTTP).
    pub async fn start(self) -> anyhow::Result<Running> {
        let Application {
            listener,
            state,
            mut supervisor,
            local_tokens,
        } = self;
        let addr = listener.local_addr()?;
        let router = crate::router::build(state.clone());
        let stop = supervisor.stop_token(Stage::Http);
        let limits = state.net.serve_limits();
        supervisor.spawn(Stage::Http, async move {
            let stopped = async move { stop.cancelled().await };
            if let Err(e) = hero_serve::serve(listener, router, limits, stopped).await {
                tracing::error!(error = format!("{e:#}"), "HTTP server failed");
            }
        });
        // Requests are bounded by --request-timeout-ms, but a client that never reads its
        // answer could hold the drain open: stop waiting after a while.
        let drain = state.net.request_timeout_ms.saturating_add(5_000);
        supervisor.limit(Stage::Http, Duration::from_millis(drain));
        crate::local::start_nodes(&local_tokens, addr, &supervisor).await?;
        Ok(Running {
            addr,
            state,
            supervisor,
        })
    }

    /// Starts, then serves until `shutdown` is cancelled, then stops in order.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.start().await?.until(shutdown).await;
        Ok(())
    }
}

/// A started aggregator.
pub struct Running {
    addr: SocketAddr,
    state: AppState,
    supervisor: Supervisor,
}

impl Running {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The line a user (and the tests) wait for, and the walkthrough of a local network.
    pub fn announce(&self, database_url: &str) {
        println!(
            "hero-aggregator ready: listening=http://{} database={} quorum={}",
            self.addr,
            crate::db::redact(database_url),
            self.state.consensus.k
        );
        if self.state.nodes.local_nodes > 0 {
            crate::local::print_walkthrough(
                self.addr,
                self.state.admin.token.as_deref().unwrap_or_default(),
            );
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }

    /// Waits for `shutdown`, then stops every task in the supervisor's order.
    pub async fn until(self, shutdown: CancellationToken) {
        shutdown.cancelled().await;
        tracing::info!("shutting down: local nodes, battles, HTTP, background, recorders");
        self.supervisor.shutdown().await;
    }
}
