//! `/api/v1/admin/battles` (create a battle between two inline fighters) and
//! `/api/v1/battles/{id}` (status, verdict, log and every vote).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use hero_protocol::Fighter;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use std::sync::Arc;

use super::cache;
use super::intake::Order;
use super::store::{self, BattleView, MAX_SEED};
use crate::auth::admin::RecordedAdmin;
use crate::http::error::ApiResult;
use crate::http::etag::Tagged;
use crate::http::{ApiError, ApiJson};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(show))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBattle {
    pub fighters: Vec<Fighter>,
    /// Fixed seed (for reproducible battles); random when absent.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Prompt for seed-style nodes; built from the fighters when absent.
    #[serde(default)]
    pub prompt: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BattleCreated {
    pub battle_id: String,
    pub status: crate::battles::Status,
}

/// Checks a battle's two fighters before anything is stored.
pub fn check_fighters(fighters: &[Fighter]) -> Result<(), ApiError> {
    let bad = |m: String| Err(ApiError::Unprocessable(m));
    if fighters.len() != 2 {
        return bad(format!(
            "a battle needs exactly 2 fighters, got {}",
            fighters.len()
        ));
    }
    if fighters[0].id == fighters[1].id {
        return bad("the two fighters must have different ids".into());
    }
    for f in fighters {
        if f.id.trim().is_empty() || f.id.len() > 64 {
            return bad("fighter id must be 1-64 characters".into());
        }
        let name_len = f.name.trim().chars().count();
        if name_len == 0 || name_len > 50 || !crate::http::input::is_plain_line(&f.name) {
            return bad(format!(
                "fighter {}: name must be 1-50 characters on one line, without bidirectional \
                 or zero-width characters",
                f.id
            ));
        }
        if !(1..=5).contains(&f.rarity) {
            return bad(format!("fighter {}: rarity must be 1-5", f.id));
        }
        if [f.strength, f.agility, f.luck].iter().any(|&s| s > 10_000) {
            return bad(format!("fighter {}: stats must be at most 10000", f.id));
        }
        if f.skill_description.chars().count() > 500 {
            return bad(format!(
                "fighter {}: skill_description must be at most 500 characters",
                f.id
            ));
        }
    }
    Ok(())
}

/// Create a battle between two inline fighters; it settles through consensus.
#[utoipa::path(
    post, path = "/api/v1/admin/battles", tag = "admin",
    request_body = CreateBattle,
    responses(
        (status = 202, description = "Created and waiting for the nodes", body = BattleCreated),
        (status = 401, description = "No or wrong admin token", body = crate::http::openapi::ErrorResponse),
        (status = 403, description = "Admin endpoints are off (no --admin-token)", body = crate::http::openapi::ErrorResponse),
        (status = 422, description = "Bad fighters or seed", body = crate::http::openapi::ErrorResponse),
    ),
    security(("token" = []))
)]
async fn create(
    RecordedAdmin(admin): RecordedAdmin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateBattle>,
) -> ApiResult<(StatusCode, Json<BattleCreated>)> {
    check_fighters(&body.fighters)?;
    if body.seed.is_some_and(|s| s > MAX_SEED) {
        return Err(ApiError::Unprocessable(format!(
            "seed must be at most {MAX_SEED}"
        )));
    }
    if body
        .prompt
        .as_ref()
        .is_some_and(|p| p.chars().count() > 5000)
    {
        return Err(ApiError::Unprocessable(
            "prompt must be at most 5000 characters".into(),
        ));
    }
    let seed = body.seed.unwrap_or_else(store::random_seed);
    let prompt = body
        .prompt
        .unwrap_or_else(|| hero_engine::request_prompt(&body.fighters));
    // Committed together with the battles created at the same moment (group commit).
    let created = state
        .intake
        .create(Order {
            fighters: body.fighters.clone(),
            seed,
            prompt,
            created_by: Some(format!("admin:{}", admin.name)),
        })
        .await?;
    let id = created.id;
    // Inserted claimed when handed off to this replica's worker.
    let status = match created.launch {
        Some(_) => crate::battles::Status::Running,
        None => crate::battles::Status::Pending,
    };
    // Announced before the battle starts, so `created` comes before its other events.
    crate::battles::feed::created(
        &state.events.hub,
        &id,
        status,
        &body.fighters,
        crate::battles::feed::Route::default(),
    );
    match created.launch {
        Some(launch) => launch.go(),
        None => state.battle_wake.pending(),
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(BattleCreated {
            battle_id: id,
            status,
        }),
    ))
}

/// A battle: status, winner, how it settled, the full log and every vote. Answers carry an
/// `ETag`; `If-None-Match` with it gets 304 while the battle is unchanged. A battle that can no
/// longer change is served from memory.
#[utoipa::path(
    get, path = "/api/v1/battles/{id}", tag = "battles",
    params(("id" = String, Path, description = "Battle id")),
    responses(
        (status = 200, description = "The battle", body = BattleView),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        (status = 404, description = "No such battle", body = crate::http::openapi::ErrorResponse),
    )
)]
async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    if let Some(hit) = state.battle_cache.get(&id) {
        return Ok(hit.respond(&headers, cache::FINAL));
    }
    let before = state.battle_cache.before_read(&id, state.clock.now_ms());
    let view = store::get(&state.db, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no battle with id {id}")))?;
    let tagged = Arc::new(Tagged::json(&view)?);
    let done = state.battle_cache.keep(&view, &tagged, before);
    Ok(tagged.respond(&headers, if done { cache::FINAL } else { cache::CHANGING }))
}
