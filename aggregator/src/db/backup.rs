//! `hero-aggregator backup` and `restore`.
//!
//! SQLite: `VACUUM INTO` writes an online, consistent copy while the aggregator keeps serving
//! (readers and the writer go on; the copy is one read transaction). Restoring copies a
//! checked backup over the database file, with the aggregator stopped.
//!
//! PostgreSQL: `pg_dump --format=custom` (online and consistent: one snapshot) and
//! `pg_restore --single-transaction` (with `--replace`, into a `public` schema emptied first);
//! both programs must be on `PATH`, of the server's major version or newer; the password goes
//! in `PGPASSWORD`, never on their command line. A restore never overwrites a database that
//! is not the aggregator's, nor an aggregator's without `--replace`.
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

    /// Flushes the file to disk, renames it to `to`, and flushes the folder (so a power cut
    /// leaves either the old file or the whole new one under that name).
    fn finish(self, to: &Path) -> anyhow::Result<()> {
        std::fs::File::open(&self.0)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("cannot flush {}", self.0.display()))?;
        std::fs::rename(&self.0, to)
            .with_context(|| format!("cannot move the backup into {}", to.display()))?;
        std::mem::forget(self);
        let folder = match to.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if let Ok(dir) = std::fs::File::open(folder) {
            let _ = dir.sync_all();
        }
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
            let (mut dump, bare) = pg_tool("pg_dump", url);
            run(dump
                .args(["--format=custom", "--no-owner", "--no-privileges", "--file"])
                .arg(&partial.0)
                .arg("--dbname")
                .arg(bare))
            .await
            .context("pg_dump")?;
            run(tokio::process::Command::new("pg_restore")
                .arg("--list")
                .arg(&partial.0))
            .await
            .context("the dump does not read back (pg_restore --list)")?;
            // Counted on the live database after the dump: battles settled meanwhile make
            // these a little larger than what the dump holds.
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
    match target(url).await? {
        Target::Empty => {}
        Target::Aggregator if replace => {}
        Target::Aggregator => anyhow::bail!(
            "{} already holds an aggregator database; stop every aggregator on it and pass \
             --replace to overwrite it",
            redact(url)
        ),
        Target::Other => anyhow::bail!(
            "{} holds something that is not an aggregator database; refusing to overwrite it \
             (restore into an empty database)",
            redact(url)
        ),
    }
    if dialect_of(url)? == Dialect::Postgres {
        let (mut list, _) = pg_tool("pg_restore", url);
        run(list.arg("--list").arg(from))
            .await
            .with_context(|| format!("{} is not a usable pg_dump file", from.display()))?;
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
            if replace {
                // Tables of newer migrations, not in the dump, must go too: a clean schema.
                sqlx::any::install_default_drivers();
                let mut conn = sqlx::AnyConnection::connect(url)
                    .await
                    .with_context(|| format!("cannot open {}", redact(url)))?;
                sqlx::raw_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
                    .execute(&mut conn)
                    .await
                    .context("emptying the database before the restore")?;
                let _ = conn.close().await;
            }
            let (mut restore, bare) = pg_tool("pg_restore", url);
            run(restore
                .args([
                    "--no-owner",
                    "--no-privileges",
                    "--single-transaction",
                    "--exit-on-error",
                    "--dbname",
                ])
                .arg(bare)
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

/// What a restore would overwrite.
enum Target {
    /// Nothing: a missing or empty SQLite file, a PostgreSQL database without tables.
    Empty,
    /// The aggregator's tables.
    Aggregator,
    /// Something else: never overwritten.
    Other,
}

async fn target(url: &str) -> anyhow::Result<Target> {
    let tables: Vec<String> = match dialect_of(url)? {
        Dialect::Sqlite => {
            let path = Path::new(sqlite_path(url).unwrap_or_default());
            if std::fs::metadata(path).map_or(true, |m| m.len() == 0) {
                return Ok(Target::Empty);
            }
            sqlx::any::install_default_drivers();
            let mut conn =
                sqlx::AnyConnection::connect(&format!("sqlite://{}?mode=ro", path.display()))
                    .await
                    .with_context(|| format!("cannot open {}", path.display()))?;
            let names = sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(&mut conn)
                .await
                .with_context(|| format!("{} is not a SQLite database", path.display()))?;
            let _ = conn.close().await;
            names
        }
        Dialect::Postgres => {
            sqlx::any::install_default_drivers();
            let mut conn = sqlx::AnyConnection::connect(url)
                .await
                .with_context(|| format!("cannot open {}", redact(url)))?;
            let names = sqlx::query_scalar(
                "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
                 WHERE table_schema = 'public'",
            )
            .fetch_all(&mut conn)
            .await?;
            let _ = conn.close().await;
            names
        }
    };
    Ok(if tables.is_empty() {
        Target::Empty
    } else if tables.iter().any(|t| t == "_sqlx_migrations")
        && tables.iter().any(|t| t == "battles")
    {
        Target::Aggregator
    } else {
        Target::Other
    })
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

/// A PostgreSQL URL without its password, and the password (for `PGPASSWORD`): a password
/// on a command line is visible to every local user in the process list.
fn split_password(url: &str) -> (String, Option<String>) {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let password = u.password().map(percent_decode);
            let _ = u.set_password(None);
            (u.to_string(), password)
        }
        _ => (url.to_owned(), None),
    }
}

/// `%41` → `A`: a URL's password as the server knows it.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(Some(h)), Some(Some(l))) = (
                bytes.get(i + 1).map(|&b| hex(b)),
                bytes.get(i + 2).map(|&b| hex(b)),
            )
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `pg_dump` / `pg_restore` for `url`: the URL without its password as `--dbname`, the
/// password in the environment.
fn pg_tool(program: &str, url: &str) -> (tokio::process::Command, String) {
    let (bare, password) = split_password(url);
    let mut command = tokio::process::Command::new(program);
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    (command, bare)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url_for_the_environment() {
        let (bare, password) =
            split_password("postgres://hero:p%40ss%2Fw@db:5432/hero?sslmode=require");
        assert_eq!(bare, "postgres://hero@db:5432/hero?sslmode=require");
        assert_eq!(password.as_deref(), Some("p@ss/w"));
        let (bare, password) = split_password("postgres://hero@db/hero");
        assert_eq!(bare, "postgres://hero@db/hero");
        assert!(password.is_none());
    }
}
