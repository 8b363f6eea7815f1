//! `hero-aggregator backup` and `restore`.
//!
//! SQLite: `VACUUM INTO` writes an online, consistent copy while the aggregator keeps serving
//! (readers and the writer go on; the copy is one read transaction). Restoring copies a
//! checked backup over the database file, with the aggregator stopped.
//!
//! PostgreSQL: `pg_dump --format=custom` (online and consistent: one snapshot) and
//! `pg_restore --clean --single-transaction`; both programs must be on `PATH`, of the
//! server's major version or newer.
//!
//! Either way the backup is written to a temporary file beside the target and renamed into
//! place only once complete and checked, so a failed backup never leaves a half file under
//! the name an operator will restore from.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sqlx::Connection;

use super::{Dialect, redact, sqlite_path};

/// What a backup or a restore holds, counted in the copy itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    pub battles: i64,
    pub votes: i64,
    pub ledger_entries: i64,
    pub players: i64,
}

impl std::fmt::Display for Contents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} battles, {} votes, {} ledger entries, {} players",
            self.battles, self.votes, self.ledger_entries, self.players
        )
    }
}

fn dialect_of(url: &str) -> anyhow::Result<Dialect> {
    if url.starts_with("sqlite:") {
        Ok(Dialect::Sqlite)
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Dialect::Postgres)
    } else {
        anyhow::bail!("unsupported database url (use sqlite://... or postgres://...)")
    }
}

/// Counts what the database at `url` holds (it must have the aggregator's tables).
pub async fn contents(url: &str) -> anyhow::Result<Contents> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .with_context(|| format!("cannot open {}", redact(url)))?;
    let mut count = async |table: &str| -> anyhow::Result<i64> {
        sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut conn)
            .await
            .with_context(|| {
                format!(
                    "{}: no {table} table; not an aggregator database",
                    redact(url)
                )
            })
    };
    let found = Contents {
        battles: count("battles").await?,
        votes: count("battle_votes").await?,
        ledger_entries: count("ledger").await?,
        players: count("players").await?,
    };
    let _ = conn.close().await;
    Ok(found)
}

/// A temporary name beside `to`, removed again if the work fails.
struct Partial(PathBuf);

impl Partial {
    fn beside(to: &Path) -> Partial {
        let mut name = to.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".partial-{}", uuid::Uuid::new_v4().simple()));
        Partial(to.with_file_name(name))
    }

    fn finish(self, to: &Path) -> anyhow::Result<()> {
        std::fs::rename(&self.0, to)
            .with_context(|| format!("cannot move the backup into {}", to.display()))?;
        std::mem::forget(self);
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Writes a consistent copy of the database at `url` to `to` (which must not exist) while
/// the aggregator may keep running; answers what the copy holds.
pub async fn backup(url: &str, to: &Path) -> anyhow::Result<Contents> {
    if to.exists() {
        anyhow::bail!(
            "{} exists; choose a new file (a backup never overwrites one)",
            to.display()
        );
    }
    if let Some(parent) = to.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let partial = Partial::beside(to);
    let found = match dialect_of(url)? {
        Dialect::Sqlite => {
            let path = sqlite_path(url).unwrap_or_default();
            if !Path::new(path).exists() {
                anyhow::bail!("no database file at {path}");
            }
            sqlx::any::install_default_drivers();
            let mut conn = sqlx::AnyConnection::connect(&format!("sqlite://{path}?mode=ro"))
                .await
                .with_context(|| format!("cannot open {path}"))?;
            let target = partial.0.to_string_lossy().replace('\'', "''");
            sqlx::query(&format!("VACUUM INTO '{target}'"))
                .execute(&mut conn)
                .await
                .context("VACUUM INTO failed")?;
            let _ = conn.close().await;
            check_sqlite_file(&partial.0).await?
        }
        Dialect::Postgres => {
            run(tokio::process::Command::new("pg_dump")
                .args(["--format=custom", "--no-owner", "--no-privileges", "--file"])
                .arg(&partial.0)
                .arg(url))
            .await
            .context("pg_dump")?;
            run(tokio::process::Command::new("pg_restore")
                .arg("--list")
                .arg(&partial.0))
            .await
            .context("the dump does not read back (pg_restore --list)")?;
            contents(url).await?
        }
    };
    partial.finish(to)?;
    Ok(found)
}

/// Restores `from` (a file written by [`backup`]) into the database at `url`, then applies
/// this binary's migrations. The aggregator must be stopped: the database is replaced. A
/// database that already holds an aggregator's tables is replaced only with `replace`.
pub async fn restore(url: &str, from: &Path, replace: bool) -> anyhow::Result<Contents> {
    if !from.is_file() {
        anyhow::bail!("no backup file at {}", from.display());
    }
    let has_data = contents(url).await.is_ok();
    if has_data && !replace {
        anyhow::bail!(
            "{} already holds an aggregator database; stop every aggregator on it and pass \
             --replace to overwrite it",
            redact(url)
        );
    }
    match dialect_of(url)? {
        Dialect::Sqlite => {
            check_sqlite_file(from)
                .await
                .with_context(|| format!("{} is not a usable SQLite backup", from.display()))?;
            let path = PathBuf::from(sqlite_path(url).unwrap_or_default());
            if path.as_os_str().is_empty() {
                anyhow::bail!("the database url names no file");
            }
            if let Some(parent) = path.parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            let partial = Partial::beside(&path);
            std::fs::copy(from, &partial.0)
                .with_context(|| format!("cannot copy {}", from.display()))?;
            // The old database's journal must not be replayed onto the restored file.
            for suffix in ["-wal", "-shm", "-journal"] {
                let mut side = path.clone().into_os_string();
                side.push(suffix);
                let side = PathBuf::from(side);
                if side.exists() {
                    std::fs::remove_file(&side)
                        .with_context(|| format!("cannot remove {}", side.display()))?;
                }
            }
            partial.finish(&path)?;
        }
        Dialect::Postgres => {
            run(tokio::process::Command::new("pg_restore")
                .args([
                    "--clean",
                    "--if-exists",
                    "--no-owner",
                    "--no-privileges",
                    "--single-transaction",
                    "--exit-on-error",
                    "--dbname",
                ])
                .arg(url)
                .arg(from))
            .await
            .context("pg_restore")?;
        }
    }
    let db = super::Db::connect(url, 1).await?;
    db.pool.close().await;
    db.writer.close().await;
    contents(url).await
}

/// `PRAGMA integrity_check` on a SQLite file, and what it holds.
async fn check_sqlite_file(path: &Path) -> anyhow::Result<Contents> {
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}?mode=ro", path.display());
    let mut conn = sqlx::AnyConnection::connect(&url)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let verdict: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .context("integrity check")?;
    let _ = conn.close().await;
    if verdict != "ok" {
        anyhow::bail!("integrity check failed: {verdict}");
    }
    contents(&url).await
}

/// Runs a program, failing with its own error output.
async fn run(command: &mut tokio::process::Command) -> anyhow::Result<()> {
    let program = command
        .as_std()
        .get_program()
        .to_string_lossy()
        .into_owned();
    let output = command.output().await.with_context(|| {
        format!("cannot run {program} (install PostgreSQL's client programs, same major version as the server or newer)")
    })?;
    if !output.status.success() {
        anyhow::bail!(
            "{program} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}
