//! Fresh databases for the aggregator's integration tests: a SQLite file, or a new
//! PostgreSQL database (dropped by `Pg::drop_database`). PostgreSQL being unreachable fails
//! the test.

#![expect(clippy::unwrap_used, reason = "test support")]

use hero_aggregator::db::Db;
use sqlx::{Connection, Executor};

pub fn sqlite_url() -> String {
    let dir = std::env::temp_dir().join(format!("hero-it-{}", uuid::Uuid::new_v4().simple()));
    format!("sqlite://{}/t.db", dir.display())
}

fn admin_url() -> String {
    std::env::var("HERO_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A PostgreSQL database made for one test.
pub struct Pg {
    pub url: String,
    name: String,
}

impl Pg {
    pub async fn create() -> Pg {
        sqlx::any::install_default_drivers();
        let admin = admin_url();
        let name = format!("hero_it_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::AnyConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL unreachable at {admin}: {e}"));
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap();
        Pg {
            url: format!("{base}/{name}"),
            name,
        }
    }

    pub async fn drop_database(self) {
        let mut conn = sqlx::AnyConnection::connect(&admin_url()).await.unwrap();
        conn.execute(format!("DROP DATABASE {} WITH (FORCE)", self.name).as_str())
            .await
            .unwrap();
    }
}

#[allow(dead_code, reason = "each test binary uses part of this module")]
pub async fn connect(url: &str) -> Db {
    Db::connect(url, 4).await.unwrap()
}
