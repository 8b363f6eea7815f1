//! SQLite's log is copied back into the database file by its own task, not at commit: after
//! `checkpoint_in_background`, commits leave the log growing, and the task moves it into the
//! database file. On PostgreSQL both are no-ops. And SQLite's reading connections keep a small
//! page cache each, the writer the default one.

use std::time::Duration;

use hero_aggregator::db::{Db, checkpoint, sqlite_path};
use hero_testkit::{Backend, TestDb, on_both_databases};
use tokio_util::sync::CancellationToken;

on_both_databases!(the_log_is_checkpointed_by_its_task);

#[tokio::test]
async fn sqlite_readers_keep_a_small_page_cache() {
    let test_db = TestDb::new(Backend::Sqlite).await;
    let db = crate::connect(&test_db.url).await;
    // Negative: KiB. Every reader that is handed out has it, however many are open.
    let mut readers = Vec::new();
    for _ in 0..3 {
        readers.push(db.pool.acquire().await.unwrap());
    }
    for reader in &mut readers {
        let cache: i64 = sqlx::query_scalar("PRAGMA cache_size")
            .fetch_one(&mut **reader)
            .await
            .unwrap();
        assert_eq!(cache, -512);
    }
    let writer: i64 = sqlx::query_scalar("PRAGMA cache_size")
        .fetch_one(&db.writer)
        .await
        .unwrap();
    assert_eq!(writer, -2000, "the writer keeps SQLite's default cache");
}

fn size(path: &str) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

async fn fill(db: &Db, rows: usize) {
    sqlx::query("CREATE TABLE IF NOT EXISTS filler (body BLOB NOT NULL)")
        .execute(&db.writer)
        .await
        .unwrap();
    for _ in 0..rows {
        // One commit each, as the aggregator's writes come.
        sqlx::query("INSERT INTO filler (body) VALUES (zeroblob(16384))")
            .execute(&db.writer)
            .await
            .unwrap();
    }
}

async fn the_log_is_checkpointed_by_its_task(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let db = crate::connect(&test_db.url).await;
    db.checkpoint_in_background().await.unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(checkpoint::run(
        db.clone(),
        Duration::from_secs(3600),
        stop.clone(),
    ));
    if backend == Backend::Postgres {
        stop.cancel();
        task.await.unwrap();
        return;
    }
    let pages: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
        .fetch_one(&db.writer)
        .await
        .unwrap();
    assert_eq!(pages, i64::from(checkpoint::SAFETY_NET_PAGES));
    let file = sqlite_path(&test_db.url).unwrap().to_owned();
    let wal = format!("{file}-wal");
    let before = size(&file);
    // 600 commits of 16 KiB: about 2,400 pages of log, past SQLite's 1,000-page threshold.
    fill(&db, 600).await;
    assert!(
        size(&wal) > 9_000_000,
        "the log was checkpointed at commit: {} bytes left in it",
        size(&wal)
    );
    assert!(size(&file) < before + 1_000_000, "the database file grew");
    // Stopping runs one last checkpoint, which copies the log back.
    stop.cancel();
    task.await.unwrap();
    assert!(
        size(&file) > before + 9_000_000,
        "the task did not copy the log into the database file ({} bytes)",
        size(&file)
    );
}
