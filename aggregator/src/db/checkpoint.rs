//! On SQLite, the write-ahead log is copied back into the database file by a task of its own,
//! not by whichever commit crosses SQLite's threshold (1,000 pages of log). That commit did the
//! copy and synced the file while it held the one writer, so every write queued behind it —
//! verdicts, new battles, votes — waited too (the tail of the consensus overhead). The writer
//! runs with `wal_autocheckpoint = 0` once [`Db::checkpoint_in_background`] is called, and
//! this task runs a PASSIVE checkpoint, which never waits for readers or the writer, every
//! [`EVERY`]. PostgreSQL checkpoints on its own.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Db, Dialect};

/// Between checkpoints: the log stays at about what a busy aggregator writes in this time
/// (a megabyte or two at 2,000 battles/s).
pub const EVERY: Duration = Duration::from_millis(100);

impl Db {
    /// Hands the SQLite log's checkpoints to a task ([`run`]) from now on: the writer (and any
    /// writer connection opened later) stops checkpointing at commit. Nothing on PostgreSQL.
    pub async fn checkpoint_in_background(&self) -> Result<(), sqlx::Error> {
        if self.dialect != Dialect::Sqlite {
            return Ok(());
        }
        self.manual_checkpoints.store(true, Ordering::Release);
        sqlx::query("PRAGMA wal_autocheckpoint = 0")
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}

/// Checkpoints the log every `every` until `stop`, then once more.
pub async fn run(db: Db, every: Duration, stop: CancellationToken) {
    if db.dialect != Dialect::Sqlite {
        return;
    }
    loop {
        let stopping = tokio::select! {
            _ = stop.cancelled() => true,
            _ = tokio::time::sleep(every) => false,
        };
        // busy (0/1), frames in the log, frames copied back.
        let done: Result<(i64, i64, i64), sqlx::Error> =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&db.pool)
                .await;
        match done {
            Ok((_, log, copied)) if log > 0 => {
                tracing::trace!(log, copied, "WAL checkpoint");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
        if stopping {
            break;
        }
    }
}
