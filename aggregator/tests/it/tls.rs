//! PostgreSQL over TLS (rustls): `sslmode=require` encrypts, `verify-full` with the right CA
//! connects and runs migrations, and a server certificate from another CA is refused.
//! `scripts/pg-tls-setup` (run by `scripts/test`) gives the local server a test certificate
//! and leaves the CAs in `target/pg-tls/`.

use std::path::PathBuf;

use hero_aggregator::db::Db;
use hero_testkit::{Backend, TestDb};

fn ca(name: &str) -> PathBuf {
    let dir = std::env::var_os("HERO_TEST_PG_TLS_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/pg-tls"),
        PathBuf::from,
    );
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/pg-tls-setup (scripts/test does) to give the test \
         PostgreSQL server its certificate",
        path.display()
    );
    path
}

/// The test database's URL on `localhost` (the name in the server certificate) with `query`.
fn with_tls(url: &str, query: &str) -> String {
    let url = url.replacen("@127.0.0.1:", "@localhost:", 1);
    let joiner = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joiner}{query}")
}

async fn encrypted(db: &Db) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls_verifies_the_server() {
    let test_db = TestDb::new(Backend::Postgres).await;
    let good = ca("ca.crt");
    let full = with_tls(
        &test_db.url,
        &format!("sslmode=verify-full&sslrootcert={}", good.display()),
    );
    let db = Db::connect(&full, 2).await.unwrap();
    assert!(encrypted(&db).await, "verify-full connected in the clear");
    assert_eq!(db.migrations_missing().await.unwrap(), 0);
    db.pool.close().await;

    let required = Db::connect(&with_tls(&test_db.url, "sslmode=require"), 1)
        .await
        .unwrap();
    assert!(
        encrypted(&required).await,
        "sslmode=require connected in the clear"
    );
    required.pool.close().await;

    let other = ca("other-ca.crt");
    let forged = with_tls(
        &test_db.url,
        &format!("sslmode=verify-full&sslrootcert={}", other.display()),
    );
    let Err(refused) = Db::connect(&forged, 1).await else {
        panic!("a server certificate of another CA was accepted");
    };
    let why = format!("{refused:#}").to_lowercase();
    assert!(why.contains("certificate") || why.contains("tls"), "{why}");
    test_db.remove().await;
}
