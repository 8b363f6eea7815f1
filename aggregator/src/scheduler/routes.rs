//! `GET /api/v1/admin/tasks`: the scheduler's beat table and its latest runs.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::runs::{self, TaskRun};
use crate::auth::admin::Admin;
use crate::http::ApiError;
use crate::http::error::ApiResult;
use crate::http::openapi::ErrorResponse;
use crate::http::paging::{ApiQuery, Page, PageQuery};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskFilter {
    /// Only the runs of this task.
    pub task: Option<String>,
}

/// One row of the beat table.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduledTask {
    pub task: &'static str,
    /// e.g. `every 1h at +30m` (UTC), `every 1m`.
    pub schedule: String,
    /// The next slot (ms since the Unix epoch).
    pub next_slot_ms: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskList {
    /// Whether this process runs the scheduler.
    pub scheduler_enabled: bool,
    pub tasks: Vec<ScheduledTask>,
    /// Latest runs first (by slot).
    pub runs: Page<TaskRun>,
}

#[utoipa::path(
    get, path = "/api/v1/admin/tasks", tag = "admin",
    params(TaskFilter, PageQuery),
    responses(
        (status = 200, description = "The schedule and the latest runs with their outcome", body = TaskList),
        (status = 400, description = "Bad cursor or limit", body = ErrorResponse),
        (status = 401, description = "No or wrong admin token", body = ErrorResponse),
        (status = 403, description = "Admin endpoints are off (no --admin-token)", body = ErrorResponse),
        (status = 404, description = "No such task", body = ErrorResponse),
    ),
    security(("token" = []))
)]
async fn list(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(filter): ApiQuery<TaskFilter>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<TaskList>> {
    let now = state.clock.now_ms();
    let tasks: Vec<ScheduledTask> = state
        .tasks
        .beats
        .iter()
        .map(|b| ScheduledTask {
            task: b.task.name(),
            schedule: b.schedule.to_string(),
            next_slot_ms: b.schedule.next(now),
        })
        .collect();
    if let Some(task) = &filter.task
        && !tasks.iter().any(|t| t.task == task)
    {
        return Err(ApiError::NotFound(format!("no task named {task:?}")));
    }
    let runs = runs::page(&state.db, filter.task.as_deref(), &page).await?;
    Ok(Json(TaskList {
        scheduler_enabled: state.tasks.enabled,
        tasks,
        runs,
    }))
}
