//! A fresh database per test: a SQLite file in a temp folder, or a new PostgreSQL database
//! that is dropped afterwards. PostgreSQL being unreachable fails the test; it never skips.

use sqlx::{Connection, Executor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestDb {
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

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        sqlx::any::install_default_drivers();
        let id = uuid::Uuid::new_v4().simple().to_string();
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("hero-e2e-{id}"));
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
                let name = format!("hero_e2e_{id}");
                let mut conn = sqlx::AnyConnection::connect(&admin).await.unwrap_or_else(|e| {
                    panic!("PostgreSQL is not reachable at {admin} ({e}); start it or set HERO_TEST_POSTGRES_URL")
                });
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
                        let _ = conn
                            .execute(
                                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                            )
                            .await;
                    }
                });
            })
            .join();
        }
    }
}
