//! What the migrations built: tables with their columns, and the indexes created by name.
//! Used to prove that the SQLite and PostgreSQL migrations describe the same schema.

use std::collections::BTreeSet;

use sqlx::Row;

use super::{Db, Dialect};

/// `table.column` for every column, and `index_name` for every index created by name (not the
/// ones a primary key or UNIQUE constraint creates implicitly), sqlx's own table excluded.
#[derive(Debug, PartialEq, Eq)]
pub struct Schema {
    pub columns: BTreeSet<String>,
    pub indexes: BTreeSet<String>,
}

pub async fn describe(db: &Db) -> Result<Schema, sqlx::Error> {
    let (columns_sql, indexes_sql) = match db.dialect {
        Dialect::Sqlite => (
            "SELECT m.name AS t, p.name AS c FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'",
            "SELECT name AS i FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
        ),
        Dialect::Postgres => (
            "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'",
            "SELECT indexname::text AS i FROM pg_indexes x WHERE schemaname = current_schema() \
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = x.indexname)",
        ),
    };
    let columns = sqlx::query(columns_sql)
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(format!(
                "{}.{}",
                r.try_get::<String, _>("t")?,
                r.try_get::<String, _>("c")?
            ))
        })
        .collect::<Result<_, sqlx::Error>>()?;
    let indexes = sqlx::query(indexes_sql)
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("i"))
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Schema { columns, indexes })
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection, Executor};

    use super::*;

    /// Both dialects' migrations end in the same tables, columns and named indexes.
    /// PostgreSQL being unreachable fails the test.
    #[tokio::test]
    async fn sqlite_and_postgres_schemas_are_the_same() {
        sqlx::any::install_default_drivers();
        let dir = std::env::temp_dir().join(format!("hero-schema-{}", uuid::Uuid::new_v4()));
        let sqlite = Db::connect(&format!("sqlite://{}/s.db", dir.display()), 1)
            .await
            .unwrap();
        let admin = std::env::var("HERO_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("hero_schema_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::AnyConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL unreachable at {admin}: {e}"));
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap();
        let postgres = Db::connect(&format!("{base}/{name}"), 1).await.unwrap();
        let (a, b) = (
            describe(&sqlite).await.unwrap(),
            describe(&postgres).await.unwrap(),
        );
        postgres.pool.close().await;
        conn.execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
            .await
            .unwrap();
        let _ = std::fs::remove_dir_all(dir);
        assert!(a.columns.len() > 50 && a.indexes.len() > 5, "{a:?}");
        let only = |x: &BTreeSet<String>, y: &BTreeSet<String>| -> Vec<String> {
            x.difference(y).cloned().collect()
        };
        assert_eq!(
            (only(&a.columns, &b.columns), only(&b.columns, &a.columns)),
            (vec![], vec![]),
            "columns only in SQLite / only in PostgreSQL"
        );
        assert_eq!(
            (only(&a.indexes, &b.indexes), only(&b.indexes, &a.indexes)),
            (vec![], vec![]),
            "indexes only in SQLite / only in PostgreSQL"
        );
    }
}
