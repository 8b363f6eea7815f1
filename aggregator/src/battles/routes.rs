//! `/api/v1/admin/battles` (create a battle between two inline fighters) and
//! `/api/v1/battles/{id}` (status, verdict, log and every vote).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use hero_protocol::Fighter;
use serde::{Deserialize, Serialize};

use super::store::{self, BattleView, NewBattle};
use crate::auth::admin::Admin;
use crate::http::error::ApiResult;
use crate::http::{ApiError, ApiJson};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/battles", post(create))
        .route("/api/v1/battles/{id}", get(show))
}

#[derive(Debug, Deserialize)]
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

#[derive(Debug, Serialize)]
pub struct BattleCreated {
    pub battle_id: String,
    pub status: crate::battles::Status,
}

/// Largest seed we hand out: JSON numbers stay exact in every client.
const MAX_SEED: u64 = (1 << 53) - 1;

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
        if name_len == 0 || name_len > 50 {
            return bad(format!("fighter {}: name must be 1-50 characters", f.id));
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

async fn create(
    _: Admin,
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
    let seed = body
        .seed
        .unwrap_or_else(|| rand::random::<u64>() & MAX_SEED);
    let prompt = body
        .prompt
        .unwrap_or_else(|| hero_engine::request_prompt(&body.fighters));
    let mut tx = state.db.begin_write().await?;
    let id = store::insert(
        &mut tx,
        &NewBattle {
            fighters: &body.fighters,
            seed,
            prompt: &prompt,
            created_by: None,
        },
        state.clock.now_ms(),
    )
    .await?;
    tx.commit().await?;
    state.battle_wake.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(BattleCreated {
            battle_id: id,
            status: crate::battles::Status::Pending,
        }),
    ))
}

async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<BattleView>> {
    store::get(&state.db, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no battle with id {id}")))
}
