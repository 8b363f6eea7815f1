//! Suspicious betting, flagged for the admin rather than dropped: a player placing many bets
//! in a short burst, and many new accounts backing one side of one battle. A flag is raised
//! once per (kind, subject); `GET /api/v1/admin/flags` lists them.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;

use super::Side;
use crate::auth::admin::Admin;
use crate::db::Tx;
use crate::http::error::ApiResult;
use crate::http::keyset::{Key, ListQuery};
use crate::http::openapi::ErrorResponse;
use crate::http::paging::{self, ApiQuery, Page, PageQuery};
use crate::ladder::LadderArgs;
use crate::state::AppState;

/// Checks the patterns after a bet, in its transaction.
pub async fn check(
    tx: &mut Tx,
    args: &LadderArgs,
    player: &str,
    scheduled: &str,
    side: Side,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let recent: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM bets WHERE player_id = $1 AND created_at_ms > $2")
            .bind(player)
            .bind(now_ms - args.flag_burst_window)
            .fetch_one(&mut **tx)
            .await?;
    if recent >= args.flag_burst_bets {
        let window = now_ms / args.flag_burst_window.max(1);
        raise(
            tx,
            "bet_burst",
            &format!("player:{player}:{window}"),
            &format!(
                "player {player} placed {recent} bets within {} ms",
                args.flag_burst_window
            ),
            now_ms,
        )
        .await?;
    }
    let newcomers: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT b.player_id) FROM bets b JOIN players p ON p.id = b.player_id \
         WHERE b.scheduled_battle_id = $1 AND b.side = $2 AND p.created_at_ms > $3",
    )
    .bind(scheduled)
    .bind(side.as_str())
    .bind(now_ms - args.flag_new_account_age)
    .fetch_one(&mut **tx)
    .await?;
    if newcomers >= args.flag_new_accounts {
        raise(
            tx,
            "new_accounts_one_side",
            &format!("scheduled_battle:{scheduled}:{}", side.as_str()),
            &format!(
                "{newcomers} accounts younger than {} ms back {} in scheduled battle {scheduled}",
                args.flag_new_account_age,
                side.as_str()
            ),
            now_ms,
        )
        .await?;
    }
    Ok(())
}

async fn raise(
    tx: &mut Tx,
    kind: &str,
    subject: &str,
    detail: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let raised = sqlx::query(
        "INSERT INTO flags (id, kind, subject, detail, created_at_ms) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (kind, subject) DO NOTHING",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(kind)
    .bind(subject)
    .bind(detail)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    if raised.rows_affected() == 1 {
        tracing::warn!(kind, subject, detail, "suspicious betting flagged");
    }
    Ok(())
}

/// A pattern the admin should look at.
#[derive(Debug, Clone, Serialize, ToSchema, FromRow)]
pub struct RaisedFlag {
    pub id: String,
    /// `bet_burst` or `new_accounts_one_side`.
    pub kind: String,
    /// What it is about: `player:ID:WINDOW` or `scheduled_battle:ID:SIDE`.
    pub subject: String,
    pub detail: String,
    pub created_at_ms: i64,
}

#[utoipa::path(
    get, path = "/api/v1/admin/flags", tag = "admin",
    params(PageQuery),
    responses(
        (status = 200, description = "Suspicious betting patterns, newest first", body = Page<RaisedFlag>),
        (status = 401, description = "No or wrong admin token", body = ErrorResponse),
        (status = 403, description = "Admin endpoints are off (no --admin-token)", body = ErrorResponse),
        (status = 422, description = "Bad cursor or limit", body = ErrorResponse),
    ),
    security(("token" = []))
)]
pub async fn list(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<RaisedFlag>>> {
    let list = ListQuery {
        select: "SELECT id, kind, subject, detail, created_at_ms FROM flags",
        filters: &[],
        keys: &[Key::desc_int("created_at_ms"), Key::desc_text("id")],
    };
    let limit = page.limit()?;
    let (rows, _) = list.page(&state.db, &page, 2).await?;
    let flags = rows
        .iter()
        .map(RaisedFlag::from_row)
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Json(Page::from_rows(flags, limit, |f| {
        paging::cursor(&[&f.created_at_ms.to_string(), &f.id])
    })))
}
