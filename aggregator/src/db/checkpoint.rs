//! On SQLite, the write-ahead log is copied back into the database file by a task of its own,
//! not by whichever commit crosses SQLite's threshold (1,000 pages of log). That commit did the
//! copy and synced the file while it held the one writer, so every write queued behind it —
//! verdicts, new battles, votes — waited too (the tail of the consensus overhead). Once
//! [`Db::checkpoint_in_background`] is called the writer checkpoints only past
//! [`SAFETY_NET_PAGES`] of log (should this task stall), and this task runs a PASSIVE
//! checkpoint, which never waits for readers or the writer, every [`EVERY`], on a connection
//! of its own (taken out of the read pool, so busy readers never hold it up). PostgreSQL
//! checkpoints on its own.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Db, Dialect};

/// Between checkpoints: the log stays at about what a busy aggregator writes in this time
/// (a megabyte or two at 2,000 battles/s).
pub const EVERY: Duration = Duration::from_millis(100);

/// Pages of log (4 KiB each) past which the writer still checkpoints at commit, as SQLite
/// does at 1,000 by default: a bound on the log should the task fall behind.
pub const SAFETY_NET_PAGES: u32 = 10_000;

impl Db {
    /// Hands the SQLite log's checkpoints to a task ([`run`]) from now on: the writer (and any
    /// writer connection opened later) stops checkpointing at commit. Nothing on PostgreSQL.
    pub async fn checkpoint_in_background(&self) -> Result<(), sqlx::Error> {
        if self.dialect != Dialect::Sqlite {
            return Ok(());
        }
        self.manual_checkpoints.store(true, Ordering::Release);
        sqlx::query(&format!("PRAGMA wal_autocheckpoint = {SAFETY_NET_PAGES}"))
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
    // A connection of its own: the pool opens another in its place.
    let mut own = None;
    loop {
        let stopping = tokio::select! {
            _ = stop.cancelled() => true,
            _ = tokio::time::sleep(every) => false,
        };
        if own.is_none() {
            own = match db.pool.acquire().await {
                Ok(conn) => Some(conn.detach()),
                Err(e) => {
                    tracing::warn!(error = %e, "no connection for the WAL checkpoint");
                    None
                }
            };
        }
        let Some(conn) = own.as_mut() else {
            if stopping {
                break;
            }
            continue;
        };
        // busy (0/1), frames in the log, frames copied back.
        let done: Result<(i64, i64, i64), sqlx::Error> =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&mut *conn)
                .await;
        match done {
            Ok((_, log, copied)) if log > 0 => {
                tracing::trace!(log, copied, "WAL checkpoint");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoint failed");
                // A fresh connection next time.
                own = None;
            }
        }
        if stopping {
            break;
        }
    }
}
