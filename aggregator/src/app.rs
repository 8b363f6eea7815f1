//! `Application`: builds the aggregator from its settings, runs it until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::battles::BattleWorker;
use crate::cli::ServeArgs;
use crate::clock::{SharedClock, SystemClock};
use crate::consensus::{Consensus, ConsensusSettings, LocalEngines};
use crate::db::Db;
use crate::nodes::{NodeRegistry, maintenance, store};
use crate::state::AppState;

pub struct Application {
    listener: TcpListener,
    state: AppState,
    worker: BattleWorker,
    /// Tasks that write what the worker hands them (late votes); they end after it does.
    recorders: TaskTracker,
    /// Enrollment tokens of the local operators, one per `--local-nodes` node.
    local_tokens: Vec<String>,
}

/// How long a silent node stays in memory.
fn retention_ms(settings: &ServeArgs) -> i64 {
    i64::try_from(settings.node_retention_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

impl Application {
    /// Connects the database, loads the registry and binds the listener.
    pub async fn build(settings: ServeArgs) -> anyhow::Result<Application> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// `build` with a given clock: tests move a `ManualClock` through betting windows,
    /// energy regeneration and daily resets without sleeping.
    pub async fn build_with_clock(
        mut settings: ServeArgs,
        clock: SharedClock,
    ) -> anyhow::Result<Application> {
        settings.check()?;
        if settings.local_nodes > 0 && settings.admin_token.is_none() {
            settings.admin_token = Some(crate::http::bearer::new_secret());
        }
        let db = Db::connect(
            &settings.database.database_url,
            settings.database.db_max_connections,
        )
        .await?;
        let registry = Arc::new(NodeRegistry::new());
        let retention_ms = retention_ms(&settings);
        for node in store::load_recent(&db, clock.now_ms().saturating_sub(retention_ms))
            .await
            .context("loading nodes")?
        {
            registry.upsert(node);
        }
        // `--local-nodes` registers its nodes under local operators of their own (loopback
        // URLs allowed for them alone); their nodes from an earlier run are gone.
        let mut local_tokens = Vec::with_capacity(settings.local_nodes);
        for i in 1..=settings.local_nodes {
            let name = crate::local::operator_name(i);
            let token = crate::nodes::operators::ensure_local(&db, &name, clock.now_ms())
                .await
                .context("creating the local operators")?;
            store::leave_all_of(&db, &name, clock.now_ms()).await?;
            local_tokens.push(token);
        }
        if crate::nodes::operators::any(&db).await? {
            // Operators exist (perhaps created by the CLI while this was down): nodes of the
            // open network must register again with an operator's token.
            let left = store::leave_open_nodes(&db, clock.now_ms()).await?;
            for id in &left {
                if let Some(node) = registry.get(id) {
                    node.left.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
        } else {
            tracing::warn!(
                "no operator accounts: this is an OPEN network. Any node may register (with \
                 --enrollment-token when set), counted as run by its host address, with weight 1. \
                 Suitable for trusted networks only; create operators with \
                 `hero-aggregator operators create` or POST /api/v1/admin/operators"
            );
        }
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            // A node must answer itself: a redirect could point the aggregator at an address
            // the node URL policy refuses (metadata services, internal hosts).
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(crate::nodes::url_policy::PolicyResolver {
                allow_private: settings.allow_private_node_urls,
            }))
            .connect_timeout(Duration::from_secs(5))
            // Node calls go straight to the node: an HTTP(S)_PROXY in the environment would
            // see (and could alter) every vote.
            .no_proxy()
            .build()
            .context("building the HTTP client")?;
        let engines = LocalEngines::from_settings(&settings)?;
        let consensus = Arc::new(Consensus {
            registry: Arc::clone(&registry),
            client,
            clock: Arc::clone(&clock),
            settings: ConsensusSettings {
                k: settings.quorum_size,
                node_timeout: Duration::from_millis(settings.node_timeout_ms),
                deadline: Duration::from_millis(settings.consensus_deadline_ms),
                max_replacements: settings.max_replacements,
                offline_after_ms: settings.offline_after_ms(),
                shadow_seats: settings.shadow_seats,
            },
            fallbacks: engines.fallbacks,
        });
        let battle_wake = Arc::new(Notify::new());
        let game = Arc::new(crate::game::Game::new(&settings.game, db.dialect));
        let auth = Arc::new(crate::auth::Auth::build(&settings.auth, &db, clock.now_ms()).await?);
        let recorders = TaskTracker::new();
        let late_votes =
            crate::battles::LateVoteRecorder::spawn(db.clone(), Arc::clone(&clock), &recorders);
        let owner = format!("aggregator-{}", uuid::Uuid::new_v4());
        let verdicts = crate::battles::VerdictWriter::spawn(
            db.clone(),
            game.ledger,
            owner.clone(),
            Arc::clone(&clock),
            &recorders,
        );
        let worker = BattleWorker {
            db: db.clone(),
            consensus,
            clock: Arc::clone(&clock),
            owner,
            lease_ms: i64::try_from(settings.battle_lease_ms).unwrap_or(i64::MAX),
            max_attempts: settings.max_battle_attempts,
            slots: Arc::new(Semaphore::new(settings.battle_concurrency)),
            wake: Arc::clone(&battle_wake),
            tracker: TaskTracker::new(),
            ledger: game.ledger,
            late_votes,
            verdicts,
            probation_votes: settings.probation_votes,
        };
        let ip_limiter = Arc::new(crate::http::ip_limit::IpLimiter::new(
            settings.net.ip_limits(),
        ));
        let state = AppState {
            ip_limiter,
            db,
            registry,
            clock,
            settings: Arc::new(settings),
            battle_wake,
            metrics: crate::http::metrics::handle(),
            summoner: engines.summoner,
            auth,
            game,
        };
        Ok(Application {
            listener,
            state,
            worker,
            recorders,
            local_tokens,
        })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` is cancelled, then drains battles and flushes node state.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Application {
            listener,
            state,
            worker,
            recorders,
            local_tokens,
        } = self;
        let addr = listener.local_addr()?;
        let settings = Arc::clone(&state.settings);
        let background = TaskTracker::new();
        background.spawn(maintenance::run(
            state.db.clone(),
            Arc::clone(&state.registry),
            Arc::clone(&state.clock),
            maintenance::Schedule {
                flush_every: Duration::from_millis(settings.flush_interval_ms.max(10)),
                sync_every: Duration::from_millis(settings.sync_interval_ms.max(10)),
                offline_after_ms: settings.offline_after_ms(),
                retention_ms: retention_ms(&settings),
            },
            shutdown.clone(),
        ));
        let battles = worker.tracker.clone();
        background.spawn(worker.run(
            Duration::from_millis(settings.poll_interval_ms.max(10)),
            shutdown.clone(),
        ));
        let router = crate::router::build(state.clone());
        // The server outlives `shutdown`: local nodes deregister and battles drain through it.
        let server_stop = CancellationToken::new();
        let server_shutdown = server_stop.clone();
        let limits = settings.net.serve_limits();
        let server = tokio::spawn(async move {
            hero_serve::serve(listener, router, limits, async move {
                server_shutdown.cancelled().await
            })
            .await
        });
        let nodes_shutdown = CancellationToken::new();
        let local_nodes = crate::local::start_nodes(&local_tokens, addr, &nodes_shutdown).await?;
        println!(
            "hero-aggregator ready: listening=http://{addr} database={} quorum={}",
            crate::db::redact(&settings.database.database_url),
            settings.quorum_size
        );
        if settings.local_nodes > 0 {
            crate::local::print_walkthrough(
                addr,
                settings.admin_token.as_deref().unwrap_or_default(),
            );
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        shutdown.cancelled().await;
        nodes_shutdown.cancel();
        local_nodes.close();
        local_nodes.wait().await;
        tracing::info!("shutting down: draining battles");
        battles.close();
        if tokio::time::timeout(
            Duration::from_millis(settings.consensus_deadline_ms + 5_000),
            battles.wait(),
        )
        .await
        .is_err()
        {
            tracing::warn!(
                "battles still running at shutdown; their leases will expire and they will be retried"
            );
        }
        server_stop.cancel();
        background.close();
        background.wait().await;
        recorders.close();
        // Battles still running past the drain keep a handle; do not wait on them forever.
        if tokio::time::timeout(Duration::from_secs(5), recorders.wait())
            .await
            .is_err()
        {
            tracing::warn!("late votes of still-running battles were not recorded");
        }
        // Requests are bounded by --request-timeout-ms, but a client that never reads its
        // answer could hold the drain open: stop waiting after a while.
        let drain = Duration::from_millis(settings.net.request_timeout_ms.saturating_add(5_000));
        match tokio::time::timeout(drain, server).await {
            Ok(served) => served
                .context("server task panicked")?
                .context("server failed")?,
            Err(_) => tracing::warn!("connections still open at shutdown were dropped"),
        }
        Ok(())
    }
}
