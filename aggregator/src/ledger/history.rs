//! `GET /api/v1/players/me/ledger`: the player's own ledger, newest first, paged.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use crate::auth::CurrentPlayer;
use crate::game::paging::{self, ApiQuery, Page, PageQuery};
use crate::http::error::ApiResult;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/players/me/ledger", get(list))
}

/// One change to one balance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LedgerEntry {
    pub id: String,
    /// `gold`, `prompt`, `prompt_power`, `exp_potion` or `energy`.
    pub resource: String,
    pub delta: i64,
    pub balance_after: i64,
    /// `signup`, `summon`, `summon_power`, `upgrade`, `battle`, `battle_refund`,
    /// `battle_reward`, `quest_reward`, `energy_regen`.
    pub reason: String,
    /// The character, battle or quest the change is about.
    pub reference: Option<String>,
    pub created_at_ms: i64,
}

#[utoipa::path(
    get, path = "/api/v1/players/me/ledger", tag = "players",
    params(PageQuery),
    responses(
        (status = 200, description = "Ledger entries, newest first", body = Page<LedgerEntry>),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    player: CurrentPlayer,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<LedgerEntry>>> {
    let limit = page.limit()?;
    let rows = match page.cursor(2)? {
        None => {
            sqlx::query(
                "SELECT id, resource, delta, balance_after, reason, reference, created_at_ms \
                 FROM ledger WHERE player_id = $1 \
                 ORDER BY created_at_ms DESC, id DESC LIMIT $2",
            )
            .bind(&player.id)
            .bind(limit + 1)
            .fetch_all(&state.db.pool)
            .await?
        }
        Some(c) => {
            sqlx::query(
                "SELECT id, resource, delta, balance_after, reason, reference, created_at_ms \
                 FROM ledger WHERE player_id = $1 \
                     AND (created_at_ms < $2 OR (created_at_ms = $2 AND id < $3)) \
                 ORDER BY created_at_ms DESC, id DESC LIMIT $4",
            )
            .bind(&player.id)
            .bind(paging::int(&c[0])?)
            .bind(&c[1])
            .bind(limit + 1)
            .fetch_all(&state.db.pool)
            .await?
        }
    };
    let entries = rows
        .iter()
        .map(|r| {
            Ok(LedgerEntry {
                id: r.try_get("id")?,
                resource: r.try_get("resource")?,
                delta: r.try_get("delta")?,
                balance_after: r.try_get("balance_after")?,
                reason: r.try_get("reason")?,
                reference: r.try_get("reference")?,
                created_at_ms: r.try_get("created_at_ms")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Json(Page::from_rows(entries, limit, |e| {
        paging::cursor(&[&e.created_at_ms.to_string(), &e.id])
    })))
}
