//! `Application`: assembles the domains from a [`Config`]; each domain starts itself and
//! registers its tasks with the [`Supervisor`], which owns the shutdown order.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::battles::VerdictEffects;
use crate::cli::ServeArgs;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::db::Db;
use crate::state::AppState;
use crate::supervisor::Supervisor;

mod running;
mod tasks;

pub use running::Running;

pub struct Application {
    listener: TcpListener,
    state: AppState,
    supervisor: Supervisor,
    /// Enrollment tokens of the local operators, one per local node.
    local_tokens: Vec<String>,
    /// Where the local nodes keep their keys.
    local_keys: std::path::PathBuf,
}

impl Application {
    /// Checks the flags, then [`Application::assemble`].
    pub async fn build(args: ServeArgs) -> anyhow::Result<Application> {
        Self::build_with_clock(args, Arc::new(SystemClock)).await
    }

    /// `build` with a given clock: tests move a `ManualClock` through energy regeneration and
    /// daily resets without sleeping.
    pub async fn build_with_clock(args: ServeArgs, clock: SharedClock) -> anyhow::Result<Self> {
        Self::assemble(args.into_config()?, clock).await
    }

    /// Connects the database, binds the listener and starts the domains.
    pub async fn assemble(config: Config, clock: SharedClock) -> anyhow::Result<Self> {
        let db = Db::connect(&config.database.url, config.database.max_connections).await?;
        // Bound before anything starts, so a busy port leaves no task behind.
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let mut supervisor = Supervisor::new();
        db.checkpoint_in_background()
            .await
            .context("cannot set up the SQLite log's checkpoints")?;
        supervisor.spawn(
            crate::supervisor::Stage::Background,
            crate::db::checkpoint::run(
                db.clone(),
                crate::db::checkpoint::EVERY,
                supervisor.stop_token(crate::supervisor::Stage::Background),
            ),
        );
        let nodes = crate::nodes::start(&db, &clock, &config.nodes, &mut supervisor).await?;
        let (consensus, summoner) = crate::consensus::start(
            &nodes.registry,
            &clock,
            &config.consensus,
            &config.fallback,
            config.nodes.allow_private_node_urls,
        )?;
        let game = Arc::new(crate::game::Game::new(&config.game, db.dialect));
        let auth = Arc::new(crate::auth::Auth::build(&config.auth, &db, clock.now_ms()).await?);
        let board_cursor_key = crate::auth::secrets::shared_key(
            &db,
            crate::game::leaderboard::CURSOR_KEY,
            clock.now_ms(),
        )
        .await
        .context("loading the leaderboard's cursor key from the database")?;
        let ladder = Arc::new(crate::ladder::Ladder {
            ledger: game.ledger,
            args: config.ladder.clone(),
        });
        let effects = VerdictEffects::new(vec![
            Arc::new(crate::game::rewards::PlayerRewards {
                ledger: game.ledger,
            }),
            Arc::new(crate::ladder::verdicts::LadderVerdicts {
                ladder: (*ladder).clone(),
            }),
        ]);
        let hub = Arc::new(crate::events::Hub::default());
        let battle_cache = Arc::new(crate::battles::cache::BattleCache::new(
            config.reads.battle_cache_bytes,
            config.consensus.node_timeout,
        ));
        crate::events::bridge::start(&db, &config.database.url, &hub, &supervisor);
        let crate::battles::Started {
            wake: battle_wake,
            handoff,
        } = crate::battles::start(
            crate::battles::Parts {
                db: db.clone(),
                consensus,
                events: Arc::clone(&hub),
                clock: Arc::clone(&clock),
                effects,
                probation_votes: config.nodes.probation_votes,
                cache: Arc::clone(&battle_cache),
            },
            &config.worker,
            &mut supervisor,
        );
        let beats =
            config
                .scheduler
                .apply(tasks::beats(&ladder, config.retention, &battle_wake, &hub))?;
        crate::scheduler::start(
            db.clone(),
            Arc::clone(&clock),
            beats.clone(),
            &config.scheduler,
            &supervisor,
        );
        let state = AppState {
            events: Arc::new(crate::events::Events::new(
                hub,
                config.live_connections,
                config.live_token_recheck,
                supervisor.stop_token(crate::supervisor::Stage::Http),
            )),
            ladder,
            tasks: Arc::new(crate::scheduler::BeatTable {
                enabled: config.scheduler.enabled,
                beats,
            }),
            ip_limiter: Arc::new(crate::http::ip_limit::IpLimiter::new(
                config.net.ip_limits(),
                Arc::clone(&auth.windows),
            )),
            in_flight: Arc::default(),
            intake: Arc::new(crate::battles::intake::Intake::spawn(
                db.clone(),
                Arc::clone(&clock),
                handoff.clone(),
            )),
            player_intake: (db.dialect == crate::db::Dialect::Sqlite).then(|| {
                Arc::new(crate::game::battles::intake::PlayerIntake::spawn(
                    &db,
                    handoff.clone(),
                ))
            }),
            battle_cache,
            board_cache: Arc::new(crate::game::leaderboard::BoardCache::new(
                config.reads.leaderboard_ttl,
                board_cursor_key,
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
            summoner,
            auth,
            game,
        };
        Ok(Application {
            listener,
            state,
            supervisor,
            local_tokens: nodes.local_tokens,
            local_keys: crate::local::key_dir(&config.database.url),
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
            local_keys,
        } = self;
        let addr = listener.local_addr()?;
        crate::router::serve(listener, state.clone(), &mut supervisor);
        crate::local::start_nodes(&local_tokens, addr, &local_keys, &supervisor).await?;
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
