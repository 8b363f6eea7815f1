//! `hero-node` binary: parse the CLI, set up logs, pick the engine, run until a signal.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use hero_engine::BattleEngine;
use hero_node::{Application, Cli, EngineKind};
use tokio_util::sync::CancellationToken;

/// jemalloc (two arenas, `.cargo/config.toml`): with glibc's malloc, allocation took about a
/// fifth of the node's samples under load, and waits on its arena locks most of the futex time.
#[cfg(all(target_os = "linux", not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    hero_node::telemetry::init_tracing(cli.log_format);
    tracing::info!(config = ?cli.node, engine = ?cli.engine, llm = ?cli.llm, "starting hero-node");

    let engine = engine_for(&cli)?;
    let app = Application::build(cli.node, engine).await?;

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", app.ready_line()).context("cannot write the ready line")?;
    stdout.flush().context("cannot flush stdout")?;
    drop(stdout);

    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    app.run_until_stopped(shutdown).await
}

/// The one place an engine kind becomes an engine. Missing or unusable settings stop the
/// node before it listens, with the flag to fix in the message.
fn engine_for(cli: &Cli) -> anyhow::Result<Arc<dyn BattleEngine>> {
    let settings = cli.llm.engine_settings(cli.engine)?;
    let kind = cli
        .engine
        .to_possible_value()
        .map(|v| v.get_name().to_owned());
    let engine = hero_engine::build_engine(settings)
        .with_context(|| format!("cannot set up --engine {}", kind.as_deref().unwrap_or("?")))?;
    if cli.engine != EngineKind::Sim {
        tracing::info!(
            engine = engine.kind(),
            model = engine.model(),
            "LLM engine ready"
        );
    }
    Ok(engine)
}

/// Cancels `shutdown` on Ctrl-C or SIGTERM.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
    shutdown.cancel();
}
