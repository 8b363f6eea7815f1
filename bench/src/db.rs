//! The database of a scenario: a fresh SQLite file, or a fresh PostgreSQL database dropped
//! afterwards; and what the scenarios read from it.

use std::path::Path;
use std::time::{Duration, Instant};

use sqlx::{Connection, Executor};

pub enum Fresh {
    Sqlite {
        url: String,
    },
    Postgres {
        url: String,
        server: String,
        name: String,
    },
}

impl Fresh {
    /// A SQLite file in `dir` (created).
    pub fn sqlite(dir: &Path) -> anyhow::Result<Fresh> {
        std::fs::create_dir_all(dir)?;
        Ok(Fresh::Sqlite {
            url: format!("sqlite://{}/bench.db", dir.display()),
        })
    }

    /// A new database on the PostgreSQL server `server` (a URL naming any database on it).
    pub async fn postgres(server: &str) -> anyhow::Result<Fresh> {
        let name = format!("hero_bench_{}", uuid::Uuid::new_v4().simple());
        let mut conn = connect(server).await?;
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await?;
        let _ = conn.close().await;
        let (base, query) = server.split_once('?').unwrap_or((server, ""));
        let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        Ok(Fresh::Postgres {
            url: format!("{base}/{name}{query}"),
            server: server.to_owned(),
            name,
        })
    }

    pub fn url(&self) -> &str {
        match self {
            Fresh::Sqlite { url } | Fresh::Postgres { url, .. } => url,
        }
    }

    /// A small pool for the scenario's own queries.
    pub async fn pool(&self) -> anyhow::Result<sqlx::AnyPool> {
        sqlx::any::install_default_drivers();
        Ok(sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .connect(self.url())
            .await?)
    }

    /// Drops a PostgreSQL database (the SQLite file goes with the scenario's folder).
    pub async fn remove(self) -> anyhow::Result<()> {
        if let Fresh::Postgres { server, name, .. } = self {
            let mut conn = connect(&server).await?;
            conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await?;
            let _ = conn.close().await;
        }
        Ok(())
    }
}

async fn connect(server: &str) -> anyhow::Result<sqlx::AnyConnection> {
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(server).await.map_err(|e| {
        anyhow::anyhow!(
            "PostgreSQL is not reachable at {} ({e}); start it or pass --postgres-url",
            hero_aggregator::db::redact(server)
        )
    })
}

/// Battles created since `since_ms` not settled yet (cheap: the claim index covers it).
pub async fn unsettled(pool: &sqlx::AnyPool, since_ms: i64) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM battles WHERE status IN ('PENDING', 'RUNNING') AND created_at_ms >= $1",
    )
    .bind(since_ms)
    .fetch_one(pool)
    .await?)
}

/// Waits until every battle of the database is settled, for at most `limit`.
pub async fn wait_settled(pool: &sqlx::AnyPool, limit: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + limit;
    loop {
        let left = unsettled(pool, 0).await?;
        if left == 0 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < until,
            "{left} battles still unsettled after {} s",
            limit.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Create → settled of every settled battle, from the battles' own timestamps (1 ms steps).
pub async fn settle_times(pool: &sqlx::AnyPool) -> anyhow::Result<Vec<Duration>> {
    let ms: Vec<i64> = sqlx::query_scalar(
        "SELECT settled_at_ms - created_at_ms FROM battles WHERE settled_at_ms IS NOT NULL",
    )
    .fetch_all(pool)
    .await?;
    Ok(ms
        .into_iter()
        .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
        .collect())
}

/// When the first battle was created and the last one settled (Unix milliseconds).
pub async fn first_created_last_settled(pool: &sqlx::AnyPool) -> anyhow::Result<(i64, i64)> {
    let created: Option<i64> = sqlx::query_scalar("SELECT MIN(created_at_ms) FROM battles")
        .fetch_one(pool)
        .await?;
    let settled: Option<i64> = sqlx::query_scalar("SELECT MAX(settled_at_ms) FROM battles")
        .fetch_one(pool)
        .await?;
    Ok((created.unwrap_or(0), settled.unwrap_or(0)))
}
