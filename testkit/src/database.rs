//! A fresh database per test: a SQLite file in a temporary folder, or a new PostgreSQL
//! database that is dropped afterwards. PostgreSQL being unreachable fails the test; it never
//! skips.

use sqlx::{Connection, Executor};

/// The database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database made for one test. Dropping it removes the SQLite folder or drops the
/// PostgreSQL database (quietly); [`TestDb::remove`] does it at once and fails loudly.
pub struct TestDb {
    /// What to give a program's `--database-url` (or `sqlx` / the aggregator's `Db`).
    pub url: String,
    backend: Backend,
    pg_name: Option<String>,
    dir: Option<std::path::PathBuf>,
}

/// Server URL used to create test databases (`HERO_TEST_POSTGRES_URL`).
pub fn postgres_admin_url() -> String {
    std::env::var("HERO_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// `admin_url` with its database name replaced by `db`, keeping any query string.
fn with_database(admin_url: &str, db: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin_url, None),
    };
    let base = base.rsplit_once('/').map(|(b, _)| b).unwrap_or(base);
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

async fn admin_connection(admin: &str) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(admin).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable at {admin} ({e}); start it or set HERO_TEST_POSTGRES_URL"
        )
    })
}

fn drop_statement(name: &str) -> String {
    format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        sqlx::any::install_default_drivers();
        let id = uuid::Uuid::new_v4().simple().to_string();
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("hero-test-{id}"));
                std::fs::create_dir_all(&dir).expect("create temp dir");
                TestDb {
                    url: format!("sqlite://{}/hero.db", dir.display()),
                    backend,
                    pg_name: None,
                    dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let name = format!("hero_test_{id}");
                let mut conn = admin_connection(&admin).await;
                conn.execute(format!("CREATE DATABASE {name}").as_str())
                    .await
                    .expect("create test database");
                let _ = conn.close().await;
                TestDb {
                    url: with_database(&admin, &name),
                    backend,
                    pg_name: Some(name),
                    dir: None,
                }
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The PostgreSQL database's name (`None` on SQLite).
    pub fn postgres_name(&self) -> Option<&str> {
        self.pg_name.as_deref()
    }

    /// Drops the PostgreSQL database (or removes the SQLite folder) now; a failure fails the
    /// test. Close the pools on it first.
    pub async fn remove(mut self) {
        if let Some(dir) = self.dir.take() {
            std::fs::remove_dir_all(dir).expect("remove the test database folder");
        }
        if let Some(name) = self.pg_name.take() {
            let mut conn = admin_connection(&postgres_admin_url()).await;
            conn.execute(drop_statement(&name).as_str())
                .await
                .expect("drop the test database");
            let _ = conn.close().await;
        }
    }

    /// Runs a query with one integer parameter against the test database.
    pub async fn scalar_i64_by_number(&self, sql: &str, bind: i64) -> i64 {
        self.scalar(sqlx::query_scalar(sql).bind(bind)).await
    }

    /// Runs a query with one text parameter against the test database.
    pub async fn scalar_i64(&self, sql: &str, bind: &str) -> i64 {
        self.scalar(sqlx::query_scalar(sql).bind(bind.to_owned()))
            .await
    }

    async fn scalar<'q>(
        &self,
        query: sqlx::query::QueryScalar<'q, sqlx::Any, i64, sqlx::any::AnyArguments<'q>>,
    ) -> i64 {
        let mut conn = sqlx::AnyConnection::connect(&self.url)
            .await
            .expect("connect test db");
        let v = query.fetch_one(&mut conn).await.expect("query");
        let _ = conn.close().await;
        v
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(name) = self.pg_name.take() {
            let admin = postgres_admin_url();
            // Drop runs inside the test's runtime: use a thread with its own runtime.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    if let Ok(mut conn) = sqlx::AnyConnection::connect(&admin).await {
                        let _ = conn.execute(drop_statement(&name).as_str()).await;
                    }
                });
            })
            .join();
        }
    }
}

/// Runs each named async test body (`async fn name(backend: Backend)`) once on SQLite and once
/// on PostgreSQL, as the tests `name::sqlite` and `name::postgres`.
///
/// The calling crate needs `tokio` (with the multi-thread runtime) among its dependencies.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::database::Backend::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::database::Backend::Postgres).await;
                }
            }
        )*
    };
}
