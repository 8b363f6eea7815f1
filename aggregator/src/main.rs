//! `hero-aggregator`: parse the command line, set up logging, run.

use anyhow::Context;
use clap::Parser;
use hero_aggregator::cli::{AdminCommand, Cli, Command, KeysCommand, OperatorsCommand};
use hero_aggregator::clock::SystemClock;
use hero_aggregator::{Application, db::Db, telemetry};
use tokio_util::sync::CancellationToken;

/// jemalloc, which hands memory freed under load back to the system (a background thread
/// purges it after about a second unused, `.cargo/config.toml`), where glibc's malloc kept
/// it in its arenas.
#[cfg(all(target_os = "linux", not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
        Some(Command::Operators(command)) => {
            telemetry::init(hero_aggregator::cli::LogFormat::Text);
            operators(command).await
        }
        Some(Command::Admin(command)) => {
            telemetry::init(hero_aggregator::cli::LogFormat::Text);
            admins(command).await
        }
        Some(Command::Keys(KeysCommand::Rotate { database })) => {
            telemetry::init(hero_aggregator::cli::LogFormat::Text);
            let db = Db::connect(&database.database_url, 1).await?;
            let now = hero_aggregator::clock::Clock::now_ms(&SystemClock);
            let kid = hero_aggregator::auth::rotate_stored_keys(&db, now).await?;
            tracing::warn!(target: "security", action = "signing_key_rotated", kid = %kid, source = "cli", "security event");
            println!("new signing key {kid} is current; the previous key is still accepted");
            Ok(())
        }
        Some(Command::Backup { to, database }) => {
            telemetry::init(hero_aggregator::cli::LogFormat::Text);
            let holds = hero_aggregator::db::backup::backup(&database.database_url, &to).await?;
            println!("backup written to {}: {holds}", to.display());
            Ok(())
        }
        Some(Command::Restore {
            from,
            replace,
            database,
        }) => {
            telemetry::init(hero_aggregator::cli::LogFormat::Text);
            let url = &database.database_url;
            let holds = hero_aggregator::db::backup::restore(url, &from, replace).await?;
            println!(
                "{} restored from {}: {holds}",
                hero_aggregator::db::redact(url),
                from.display()
            );
            Ok(())
        }
        Some(Command::Serve(args)) => serve(*args).await,
        None => serve(cli.serve).await,
    }
}

async fn operators(command: OperatorsCommand) -> anyhow::Result<()> {
    use hero_aggregator::clock::Clock;
    use hero_aggregator::nodes::operators;
    let now = hero_aggregator::clock::SystemClock.now_ms();
    match command {
        OperatorsCommand::Create {
            name,
            max_nodes,
            max_weight,
            database,
        } => {
            operators::check(&name, max_nodes, max_weight).map_err(anyhow::Error::msg)?;
            let db = Db::connect(&database.database_url, 1).await?;
            let (op, token) = operators::create(&db, &name, max_nodes, max_weight, now)
                .await
                .with_context(|| format!("creating operator {name} (does it exist already?)"))?;
            tracing::warn!(target: "security", action = "operator_created", operator = %op.name, source = "cli", "security event");
            let left = hero_aggregator::nodes::store::leave_open_nodes(&db, now).await?;
            if !left.is_empty() {
                println!(
                    "the network is now closed: {} open-network node(s) left and must register \
                     with an operator token",
                    left.len()
                );
            }
            println!(
                "operator {} created (max_nodes={}, max_weight={})",
                op.name, op.max_nodes, op.max_weight
            );
            println!("enrollment token (shown once, give it to the operator): {token}");
        }
        OperatorsCommand::List { database } => {
            let db = Db::connect(&database.database_url, 1).await?;
            for op in operators::list(&db).await? {
                println!(
                    "{}\tmax_nodes={}\tmax_weight={}\t{}",
                    op.name,
                    op.max_nodes,
                    op.max_weight,
                    if op.revoked_at_ms.is_some() {
                        "revoked"
                    } else {
                        "active"
                    }
                );
            }
        }
        OperatorsCommand::Revoke { name, database } => {
            let db = Db::connect(&database.database_url, 1).await?;
            let Some(op) = operators::revoke(&db, &name, now).await? else {
                anyhow::bail!("no operator named {name}");
            };
            let left = hero_aggregator::nodes::store::leave_all_of(&db, &op.name, now).await?;
            tracing::warn!(target: "security", action = "operator_revoked", operator = %op.name, nodes = left.len(), source = "cli", "security event");
            println!(
                "operator {} revoked; {} of its nodes left the network",
                op.name,
                left.len()
            );
        }
    }
    Ok(())
}

async fn admins(command: AdminCommand) -> anyhow::Result<()> {
    use hero_aggregator::auth::admin;
    let now = hero_aggregator::clock::Clock::now_ms(&SystemClock);
    match command {
        AdminCommand::Create { name, database } => {
            admin::check_name(&name).map_err(anyhow::Error::msg)?;
            let db = Db::connect(&database.database_url, 1).await?;
            let token = admin::create(&db, &name, now)
                .await
                .with_context(|| format!("creating admin {name} (does it exist already?)"))?;
            tracing::warn!(target: "security", action = "admin_created", admin = %name, source = "cli", "security event");
            println!("admin {name} created");
            println!("admin token (shown once; use it as Authorization: Bearer ...): {token}");
        }
        AdminCommand::List { database } => {
            let db = Db::connect(&database.database_url, 1).await?;
            for a in admin::list(&db).await? {
                let status = if a.revoked_at_ms.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                let used = a
                    .last_used_at_ms
                    .map_or_else(|| "never used".to_owned(), |t| format!("last used at {t}"));
                println!("{}\t{status}\t{used}", a.name);
            }
        }
        AdminCommand::Revoke { name, database } => {
            let db = Db::connect(&database.database_url, 1).await?;
            if !admin::revoke(&db, &name, now).await? {
                anyhow::bail!("no active admin named {name}");
            }
            tracing::warn!(target: "security", action = "admin_revoked", admin = %name, source = "cli", "security event");
            println!("admin {name} revoked");
        }
    }
    Ok(())
}

async fn serve(args: hero_aggregator::cli::ServeArgs) -> anyhow::Result<()> {
    telemetry::init(args.log_format);
    let config = args.into_config()?;
    let database_url = config.database.url.clone();
    let app = Application::assemble(config, std::sync::Arc::new(SystemClock))
        .await
        .context("starting the aggregator")?;
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        on_signal.cancel();
    });
    let running = app.start().await.context("starting the aggregator")?;
    running.announce(&database_url);
    running.until(shutdown).await;
    Ok(())
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
