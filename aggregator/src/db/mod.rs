//! The database: one `AnyPool` for SQLite or PostgreSQL, migrations, and write transactions.

pub mod backup;
pub mod checkpoint;
mod lane;
pub mod schema;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

/// Which SQL dialect the pool speaks; a few statements differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A cheap handle to the pools plus the dialect.
///
/// `pool` serves reads. `writer` serves writes: on SQLite it is one connection, so writers
/// queue fairly in the pool instead of colliding on the file lock and backing off in sleeps
/// (SQLite has one writer at a time anyway); on PostgreSQL it is the same pool. On SQLite,
/// work that holds the writer runs on the write lane ([`Db::write`]).
#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub writer: AnyPool,
    pub dialect: Dialect,
    lane: Option<Arc<lane::Lane>>,
    /// SQLite's log is checkpointed by a task, not at commit (`checkpoint.rs`).
    manual_checkpoints: Arc<AtomicBool>,
}

pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// How a selected row is locked until commit on PostgreSQL; nothing on SQLite, where write
/// transactions are already exclusive (`BEGIN IMMEDIATE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// `FOR UPDATE`: the row is about to be deleted.
    Delete,
    /// `FOR NO KEY UPDATE`: the row is about to change (foreign keys pointing at it still
    /// take their `KEY SHARE` without waiting).
    Update,
    /// `FOR SHARE`: the row must not change until commit.
    Share,
    /// `FOR UPDATE SKIP LOCKED`: claim rows no one else is claiming.
    Claim,
}

impl Dialect {
    /// The clause that ends a `SELECT` taking `lock`: the one place row locks are written.
    pub fn lock(self, lock: Lock) -> &'static str {
        match (self, lock) {
            (Dialect::Sqlite, _) => "",
            (Dialect::Postgres, Lock::Delete) => " FOR UPDATE",
            (Dialect::Postgres, Lock::Update) => " FOR NO KEY UPDATE",
            (Dialect::Postgres, Lock::Share) => " FOR SHARE",
            (Dialect::Postgres, Lock::Claim) => " FOR UPDATE SKIP LOCKED",
        }
    }
}

/// A 0/1 integer column (both dialects store flags as integers), read into a `bool` field of a
/// `FromRow` struct with `#[sqlx(try_from = "Flag")]`.
#[derive(Debug, Clone, Copy, sqlx::Type)]
#[sqlx(transparent)]
pub struct Flag(i64);

impl From<Flag> for bool {
    fn from(flag: Flag) -> bool {
        flag.0 != 0
    }
}

/// A nullable 0/1 integer column, read into an `Option<bool>` field with
/// `#[sqlx(try_from = "MaybeFlag")]`.
#[derive(Debug, Clone, Copy, sqlx::Type)]
#[sqlx(transparent)]
pub struct MaybeFlag(Option<i64>);

impl From<MaybeFlag> for Option<bool> {
    fn from(flag: MaybeFlag) -> Option<bool> {
        flag.0.map(|f| f != 0)
    }
}

/// Where the database is and how many connections to pool.
#[derive(Clone)]
pub struct DbSettings {
    /// `sqlite://path/to/file.db` or `postgres://user@host/db`.
    pub url: String,
    pub max_connections: u32,
}

impl std::fmt::Debug for DbSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbSettings")
            .field("url", &redact(&self.url))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl Db {
    /// Connects (creating the SQLite file and its folder when needed) and runs migrations.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Db> {
        install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Dialect::Postgres
        } else {
            anyhow::bail!("unsupported database url (use sqlite://... or postgres://...)");
        };
        let url = match dialect {
            Dialect::Sqlite => prepare_sqlite_url(url)?,
            Dialect::Postgres => url.to_string(),
        };
        let manual_checkpoints = Arc::new(AtomicBool::new(false));
        let pool = open_pool(&url, dialect, max_connections, Role::Reads).await?;
        let writer = match dialect {
            Dialect::Sqlite => {
                let role = Role::Writes(Arc::clone(&manual_checkpoints));
                open_pool(&url, dialect, 1, role).await?
            }
            Dialect::Postgres => pool.clone(),
        };
        let lane = match dialect {
            Dialect::Sqlite => Some(lane::Lane::start().context("cannot start the write lane")?),
            Dialect::Postgres => None,
        };
        let db = Db {
            pool,
            writer,
            dialect,
            lane,
            manual_checkpoints,
        };
        db.migrate().await?;
        Ok(db)
    }

    fn migrator(&self) -> sqlx::migrate::Migrator {
        match self.dialect {
            Dialect::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Dialect::Postgres => sqlx::migrate!("./migrations/postgres"),
        }
    }

    /// Applies the migrations of this dialect.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        self.migrator()
            .run(&self.writer)
            .await
            .context("database migration failed")
    }

    /// Begins a write transaction (IMMEDIATE on SQLite, so read-then-write never deadlocks).
    pub async fn begin_write(&self) -> Result<Tx, sqlx::Error> {
        match self.dialect {
            Dialect::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Dialect::Postgres => self.writer.begin().await,
        }
    }

    /// Runs `work`, a write transaction from begin to commit, on the write lane (SQLite), or
    /// here (PostgreSQL). On the lane it runs to the end even if the caller stops waiting.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<sqlx::Error> + Send + 'static,
    {
        match &self.lane {
            Some(lane) => lane.run(work).await,
            None => work.await,
        }
    }

    /// How many batching writers (group commits) may run at once: one on SQLite, which has
    /// one writer; a few on PostgreSQL, so one batch's commit (its WAL flush) overlaps the next
    /// one's statements.
    pub fn batch_writers(&self) -> usize {
        match self.dialect {
            Dialect::Sqlite => 1,
            Dialect::Postgres => 2,
        }
    }

    /// Starts `task`, one that does nothing but write (a batching writer), on the write lane
    /// (SQLite) or on the runtime (PostgreSQL).
    pub fn spawn_writer<F>(&self, task: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match &self.lane {
            Some(lane) => lane.spawn(task),
            None => tokio::spawn(task),
        }
    }

    /// How many migrations of this binary the database has not applied (for `/api/ready`).
    pub async fn migrations_missing(&self) -> Result<usize, sqlx::Error> {
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_all(&self.pool)
                .await?;
        Ok(self
            .migrator()
            .iter()
            .filter(|m| !applied.contains(&m.version))
            .count())
    }

    /// Cheap liveness probe for `/api/health`.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}

/// A new id for a row of a table that only grows (battles and what hangs off them, the
/// ledger): a UUIDv7, whose first 48 bits are the time in milliseconds, then a counter that
/// starts at a random value each millisecond, then 32 random bits. Ids made one after the
/// other sort one after the other (within this process), so a batch of new rows lands on the
/// last pages of each index keyed by them instead of on as many random pages as rows; every
/// page a transaction touches is written to the log again. Battle ids are public anyway
/// (`GET /api/v1/battles/{id}`); ledger ids are never shown to other players. Like every
/// UUID, 36 characters.
pub fn time_ordered_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// What a pool's connections are for, on SQLite.
#[derive(Clone)]
enum Role {
    /// The read pool. Each connection keeps a page cache of its own, filled by whatever it
    /// last read: with SQLite's default of 2 MB, ten readers that each took a turn at the
    /// node sync's scan of every node held about 14 MB more after two minutes with 10,000
    /// nodes. Pages past the cache come from the operating system's file cache, shared.
    Reads,
    /// The one writer, with the full default cache (every write's index pages pass through
    /// it); when the flag is set, it leaves the log's checkpoints to `checkpoint.rs` (past a
    /// safety net).
    Writes(Arc<AtomicBool>),
}

/// A pooled connection idle this long is checked (pinged) before it is used again.
const CHECK_IDLE_AFTER: Duration = Duration::from_secs(1);

/// Page cache of each reading SQLite connection, in KiB.
const READER_CACHE_KIB: u32 = 512;

async fn open_pool(
    url: &str,
    dialect: Dialect,
    max_connections: u32,
    role: Role,
) -> anyhow::Result<AnyPool> {
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        // sqlx pings every connection it hands out by default: a round trip to PostgreSQL (a
        // fifth of the TCP segments the aggregator sent it in `durable-postgres`; README,
        // twelfth round of Benchmarks), or a hop to SQLite's thread, before each transaction.
        // Only a connection that sat idle for a while is checked: one the server may have
        // closed meanwhile (a restart, a proxy's idle timeout) is then replaced instead of
        // failing its first statement. One that fails while in use is dropped when it is
        // given back (sqlx pings it then).
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                Ok(meta.idle_for < CHECK_IDLE_AFTER || sqlx::Connection::ping(conn).await.is_ok())
            })
        })
        .after_connect(move |conn, _meta| {
            let role_pragma = match &role {
                Role::Reads => Some(format!("PRAGMA cache_size = -{READER_CACHE_KIB}")),
                Role::Writes(manual) if manual.load(Ordering::Acquire) => Some(format!(
                    "PRAGMA wal_autocheckpoint = {}",
                    checkpoint::SAFETY_NET_PAGES
                )),
                Role::Writes(_) => None,
            };
            Box::pin(async move {
                if dialect == Dialect::Sqlite {
                    // `temp_store = MEMORY`: a multi-row statement's journal (kept to undo
                    // that statement alone), past 64 KiB, went to a temporary file that was
                    // created, written and deleted about ten times a second under player
                    // battles: 40 of the writer's 95 KB a battle (README, eleventh round).
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; \
                         PRAGMA temp_store = MEMORY;",
                    )
                    .await?;
                    if let Some(pragma) = role_pragma {
                        conn.execute(pragma.as_str()).await?;
                    }
                }
                Ok(())
            })
        })
        .connect(url)
        .await
        .with_context(|| format!("cannot connect to the database ({})", redact(url)))
}

/// Makes sure the folder of a SQLite file exists and the file is created on first use.
/// The file path of a `sqlite:` URL (`None` for other databases).
pub fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    rest.split('?').next()
}

fn prepare_sqlite_url(url: &str) -> anyhow::Result<String> {
    let path = sqlite_path(url).unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        anyhow::bail!(
            "an in-memory SQLite database loses every battle on restart; give a file path"
        );
    }
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the database folder {}", parent.display()))?;
    }
    Ok(if url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    })
}

/// A database URL without its password, for error messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// A statement whose text changes with its batch size (multi-row `VALUES`), kept out of the
/// connection's prepared-statement cache: cached, every size ever seen would stay prepared on
/// every connection (up to sqlx's 100 per connection, each with its parameter list), memory
/// that grows for hours as rarer sizes turn up.
pub fn one_off(sql: &str) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
    sqlx::query(sql).persistent(false)
}

/// Whether `conn` is a PostgreSQL connection.
pub fn is_postgres(conn: &sqlx::AnyConnection) -> bool {
    conn.backend_name().starts_with("Postgre")
}

/// The rows of a batch statement as one JSON parameter, for PostgreSQL, which reads them back
/// with `json_to_recordset(CAST($1 AS JSON)) AS r (column TYPE, ...)` (bytes travel as
/// hex, turned back by `decode(r.column, 'hex')`). A multi-row `VALUES` is a new statement
/// for each number of rows: sqlx then parses and describes it in one trip to the server and
/// runs it in a second, and under load each trip waits its turn on the runtime's busy threads.
/// With the rows in one parameter the statement's text is the same for any number of rows, so
/// it is prepared once per connection and each batch is one trip. SQLite, a library in the
/// process, keeps its `VALUES` ([`values_placeholders`]).
pub fn json_rows<T: serde::Serialize>(rows: &[T]) -> Result<String, sqlx::Error> {
    serde_json::to_string(rows).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// Bytes as the hex text [`json_rows`] carries (`serialize_with`).
pub fn hex_bytes<S: serde::Serializer, B: AsRef<[u8]>>(
    bytes: &Option<B>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(bytes) => serializer.serialize_str(&hex::encode(bytes)),
        None => serializer.serialize_none(),
    }
}

/// Placeholders for a multi-row `VALUES` of `rows` rows of `columns` columns, bound in order:
/// `($1, $2, ...), ($n+1, ...)` on PostgreSQL, `(?, ?, ...), ...` on SQLite. SQLite looks a
/// named parameter such as `$7` up by a linear search of the statement's names, so binding a
/// thousand of them costs a million comparisons; anonymous ones are found by position.
pub fn values_placeholders(conn: &sqlx::AnyConnection, rows: usize, columns: usize) -> String {
    placeholders(!is_postgres(conn), rows, columns)
}

/// Placeholders handed out in binding order: `$1`, `$2`, ... on PostgreSQL, `?` on SQLite
/// (see [`values_placeholders`] for why). Put each one in the SQL once, and bind a value for
/// each: on SQLite every `?` is a parameter of its own.
pub struct Params {
    sqlite: bool,
    n: usize,
}

impl Params {
    pub fn new(dialect: Dialect) -> Self {
        Self {
            sqlite: dialect == Dialect::Sqlite,
            n: 0,
        }
    }

    /// The dialect of an open transaction.
    pub fn of(tx: &Tx) -> Self {
        Self::new(if tx.backend_name().starts_with("Postgre") {
            Dialect::Postgres
        } else {
            Dialect::Sqlite
        })
    }

    pub fn take(&mut self) -> String {
        self.n += 1;
        if self.sqlite {
            "?".to_owned()
        } else {
            format!("${}", self.n)
        }
    }

    pub fn sqlite(&self) -> bool {
        self.sqlite
    }
}

/// `WITH v (name, ...) AS (VALUES (...), ...)` for `rows` rows of `columns` (name and SQL
/// type), its placeholders taken from `params` row by row; bind the values in that order. A
/// CTE names the columns the same way on both databases, and the casts give PostgreSQL a type
/// for every value, NULLs included. SQLite gets none: a bound value keeps the storage class it
/// was bound with (an `i64` is an integer, a `&str` text), so a cast to its own type changes
/// nothing there, while each one is six more tokens for SQLite to parse in a statement that is
/// parsed anew for every batch (about a third of such a statement's parse time).
pub fn values_cte(params: &mut Params, columns: &[(&str, &str)], rows: usize) -> String {
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let mut values = Vec::with_capacity(rows);
    for _ in 0..rows {
        let row: Vec<String> = columns
            .iter()
            .map(|(_, ty)| {
                let param = params.take();
                if params.sqlite() {
                    param
                } else {
                    format!("CAST({param} AS {ty})")
                }
            })
            .collect();
        values.push(format!("({})", row.join(", ")));
    }
    format!(
        "WITH v ({}) AS (VALUES {})",
        names.join(", "),
        values.join(", ")
    )
}

/// Locks the rows of `table` with these `ids` in id order, on PostgreSQL, so that one
/// statement changing them all (which locks in whatever order it meets them) cannot deadlock
/// with another transaction. SQLite's one writer needs none. `table` is never input.
pub async fn lock_in_order(
    tx: &mut Tx,
    dialect: Dialect,
    table: &'static str,
    ids: &[&str],
) -> Result<(), sqlx::Error> {
    if dialect != Dialect::Postgres || ids.len() < 2 {
        return Ok(());
    }
    let list: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT id FROM {table} WHERE id IN ({}) ORDER BY id{}",
        list.join(", "),
        dialect.lock(Lock::Update)
    );
    let mut select = one_off(&sql);
    for id in ids {
        select = select.bind(*id);
    }
    select.fetch_all(&mut **tx).await?;
    Ok(())
}

fn placeholders(sqlite: bool, rows: usize, columns: usize) -> String {
    let mut out = String::with_capacity(rows * columns * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..columns {
            if c > 0 {
                out.push_str(", ");
            }
            if sqlite {
                out.push('?');
            } else {
                out.push('$');
                out.push_str(&(r * columns + c + 1).to_string());
            }
        }
        out.push(')');
    }
    out
}

/// Whether an error is a transient conflict worth retrying: a PostgreSQL deadlock or
/// serialization failure, or SQLite still busy after its timeout.
pub fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            matches!(db.code().as_deref(), Some("40P01" | "40001" | "5" | "517"))
                || db.message().contains("database is locked")
        }
        sqlx::Error::PoolTimedOut => true,
        _ => false,
    }
}

/// Whether an error is a unique-constraint violation (answered with 409, not 500).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                || db.code().as_deref() == Some("23505")
                || db.message().contains("UNIQUE constraint failed")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ordered_ids_sort_in_the_order_they_were_made() {
        let ids: Vec<String> = (0..2_000).map(|_| time_ordered_id()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, ids, "sorted, and no two alike");
        assert!(
            ids.iter()
                .all(|id| id.len() == 36 && uuid::Uuid::parse_str(id).is_ok())
        );
    }

    #[test]
    fn sqlite_url_gets_create_mode() {
        let dir = std::env::temp_dir().join(format!("hero-db-{}", uuid::Uuid::new_v4()));
        let url = format!("sqlite://{}/x.db", dir.display());
        let prepared = prepare_sqlite_url(&url).unwrap();
        assert!(prepared.ends_with("?mode=rwc"));
        assert!(dir.exists());
    }

    #[test]
    fn placeholders_are_numbered_across_rows() {
        assert_eq!(placeholders(false, 2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(placeholders(true, 2, 3), "(?, ?, ?), (?, ?, ?)");
        assert_eq!(placeholders(false, 0, 3), "");
    }

    #[test]
    fn pool_exhaustion_is_transient_but_missing_rows_are_not() {
        assert!(is_transient(&sqlx::Error::PoolTimedOut));
        assert!(!is_transient(&sqlx::Error::RowNotFound));
    }

    #[tokio::test]
    async fn sqlite_keeps_its_temporary_data_in_memory() {
        let test_db = hero_testkit::TestDb::new(hero_testkit::Backend::Sqlite).await;
        let db = Db::connect(&test_db.url, 2).await.unwrap();
        assert_eq!(
            through_both(&db, "PRAGMA temp_store").await,
            [2, 2],
            "MEMORY"
        );
        db.pool.close().await;
        db.writer.close().await;
        test_db.remove().await;
    }

    /// The number `sql` answers through the read pool, then through the writer.
    async fn through_both(db: &Db, sql: &str) -> [i64; 2] {
        let mut answers = [0; 2];
        for (answer, pool) in answers.iter_mut().zip([&db.pool, &db.writer]) {
            *answer = sqlx::query_scalar(sql).fetch_one(pool).await.unwrap();
        }
        answers
    }

    /// Connections the server closed while they sat idle in the pool (PostgreSQL restarted)
    /// are replaced, not handed out to fail.
    #[tokio::test]
    async fn idle_connections_closed_by_the_server_are_replaced() {
        let test_db = hero_testkit::TestDb::new(hero_testkit::Backend::Postgres).await;
        let db = Db::connect(&test_db.url, 2).await.unwrap();
        assert_eq!(through_both(&db, "SELECT 1").await, [1, 1]);
        let name = test_db.postgres_name().unwrap();
        let mut admin = sqlx::AnyConnection::connect(&hero_testkit::database::postgres_admin_url())
            .await
            .unwrap();
        use sqlx::Connection;
        let ended: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(name.to_owned())
        .fetch_all(&mut admin)
        .await
        .unwrap();
        assert!(ended.len() >= 2, "the pools' connections: {ended:?}");
        let _ = admin.close().await;
        tokio::time::sleep(CHECK_IDLE_AFTER + Duration::from_millis(200)).await;
        assert_eq!(through_both(&db, "SELECT 2").await, [2, 2]);
        db.pool.close().await;
        db.writer.close().await;
        test_db.remove().await;
    }

    #[test]
    fn memory_sqlite_is_refused() {
        assert!(prepare_sqlite_url("sqlite::memory:").is_err());
    }

    #[test]
    fn password_is_redacted() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
    }
}
