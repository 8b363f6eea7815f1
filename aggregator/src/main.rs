//! `hero-aggregator`: parse the command line, set up logging, run.

use anyhow::Context;
use clap::Parser;
use hero_aggregator::cli::{Cli, Command};
use hero_aggregator::{Application, db::Db, telemetry};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Migrate(db)) => {
            telemetry::init(hero_aggregator::cli::LogFormat::Text);
            Db::connect(&db.database_url, 1).await?;
            println!(
                "migrations applied to {}",
                hero_aggregator::db::redact(&db.database_url)
            );
            Ok(())
        }
        Some(Command::Serve(args)) => serve(*args).await,
        None => serve(cli.serve).await,
    }
}

async fn serve(args: hero_aggregator::cli::ServeArgs) -> anyhow::Result<()> {
    telemetry::init(args.log_format);
    let app = Application::build(args)
        .await
        .context("starting the aggregator")?;
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        on_signal.cancel();
    });
    app.run_until_stopped(shutdown).await
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
