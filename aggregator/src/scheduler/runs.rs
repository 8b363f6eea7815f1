//! `task_runs`: one row per (task, slot). Inserting the row claims the slot for one replica;
//! the task's work and the row's `done` commit in one transaction guarded by the owner, so a
//! slot's work happens exactly once even when a lease runs out and another replica takes over.

use serde::Serialize;
use sqlx::{FromRow, Row};
use utoipa::ToSchema;

use crate::db::{Db, Tx};
use crate::http::ApiError;
use crate::http::keyset::{Key, ListQuery};
use crate::http::paging::{self, Page, PageQuery};

/// Attempts of one slot before it is left failed.
pub const MAX_ATTEMPTS: i64 = 3;

/// A slot as the claimant sees it before trying.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Existing {
    status: String,
    owner: String,
    attempts: i64,
    lease_until_ms: i64,
}

/// Claims `slot` of `task` for `owner` until `lease_until_ms`: a new slot, or one whose
/// runner died (lease passed) or failed (retry delay passed) with attempts left. False when
/// the slot is done or another replica holds it.
pub async fn claim(
    db: &Db,
    task: &str,
    slot_ms: i64,
    owner: &str,
    now_ms: i64,
    lease_until_ms: i64,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO task_runs (task, slot_ms, status, owner, attempts, lease_until_ms, \
             started_at_ms) VALUES ($1, $2, 'running', $3, 1, $4, $5) \
         ON CONFLICT (task, slot_ms) DO NOTHING",
    )
    .bind(task)
    .bind(slot_ms)
    .bind(owner)
    .bind(lease_until_ms)
    .bind(now_ms)
    .execute(&db.writer)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(true);
    }
    let Some(row) = sqlx::query(
        "SELECT status, owner, attempts, lease_until_ms FROM task_runs \
         WHERE task = $1 AND slot_ms = $2",
    )
    .bind(task)
    .bind(slot_ms)
    .fetch_optional(&db.pool)
    .await?
    else {
        return Ok(false);
    };
    let old = Existing {
        status: row.try_get("status")?,
        owner: row.try_get("owner")?,
        attempts: row.try_get("attempts")?,
        lease_until_ms: row.try_get("lease_until_ms")?,
    };
    if old.status == "done" || old.lease_until_ms > now_ms || old.attempts >= MAX_ATTEMPTS {
        return Ok(false);
    }
    // Take over only the row exactly as read: two replicas racing for it, one wins.
    let taken = sqlx::query(
        "UPDATE task_runs SET status = 'running', owner = $3, attempts = attempts + 1, \
             lease_until_ms = $4, started_at_ms = $5, finished_at_ms = NULL, outcome = NULL \
         WHERE task = $1 AND slot_ms = $2 AND status = $6 AND owner = $7 AND attempts = $8",
    )
    .bind(task)
    .bind(slot_ms)
    .bind(owner)
    .bind(lease_until_ms)
    .bind(now_ms)
    .bind(&old.status)
    .bind(&old.owner)
    .bind(old.attempts)
    .execute(&db.writer)
    .await?;
    if taken.rows_affected() == 1 {
        tracing::info!(task, slot_ms, previous = %old.owner, status = %old.status,
            "took over a task slot");
    }
    Ok(taken.rows_affected() == 1)
}

/// Marks the slot done inside the task's own transaction; false (and the caller rolls back)
/// when the lease was lost to another replica.
pub async fn finish(
    tx: &mut Tx,
    task: &str,
    slot_ms: i64,
    owner: &str,
    now_ms: i64,
    outcome: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE task_runs SET status = 'done', finished_at_ms = $4, outcome = $5 \
         WHERE task = $1 AND slot_ms = $2 AND owner = $3 AND status = 'running'",
    )
    .bind(task)
    .bind(slot_ms)
    .bind(owner)
    .bind(now_ms)
    .bind(outcome)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a failed attempt; the slot may be retried after `retry_at_ms`.
pub async fn fail(
    db: &Db,
    task: &str,
    slot_ms: i64,
    owner: &str,
    now_ms: i64,
    retry_at_ms: i64,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE task_runs SET status = 'failed', finished_at_ms = $4, lease_until_ms = $5, \
             outcome = $6 \
         WHERE task = $1 AND slot_ms = $2 AND owner = $3 AND status = 'running'",
    )
    .bind(task)
    .bind(slot_ms)
    .bind(owner)
    .bind(now_ms)
    .bind(retry_at_ms)
    .bind(error)
    .execute(&db.writer)
    .await?;
    Ok(())
}

/// One run of one slot, as the admin sees it.
#[derive(Debug, Clone, Serialize, ToSchema, FromRow)]
pub struct TaskRun {
    pub task: String,
    /// The scheduled time this run is for (ms since the Unix epoch).
    pub slot_ms: i64,
    /// `running`, `done` or `failed` (retried until 3 attempts).
    pub status: String,
    /// The replica that ran it last.
    pub owner: String,
    pub attempts: i64,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    /// What the task did (`done`), or why it failed.
    pub outcome: Option<String>,
}

/// The latest runs, newest first, optionally of one task.
pub async fn page(
    db: &Db,
    task: Option<&str>,
    page: &PageQuery,
) -> Result<Page<TaskRun>, ApiError> {
    let filters: Vec<(&'static str, &str)> = task.map(|t| ("task", t)).into_iter().collect();
    let list = ListQuery {
        select: "SELECT task, slot_ms, status, owner, attempts, started_at_ms, finished_at_ms, \
                 outcome FROM task_runs",
        filters: &filters,
        keys: &[Key::desc_int("slot_ms"), Key::asc_text("task")],
    };
    let limit = page.limit()?;
    let (rows, _) = list.page(db, page, 2).await?;
    let runs = rows
        .iter()
        .map(TaskRun::from_row)
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Page::from_rows(runs, limit, |r| {
        paging::cursor(&[&r.slot_ms.to_string(), &r.task])
    }))
}
