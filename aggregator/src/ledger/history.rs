//! A player's ledger, newest first, paged (served at `GET /api/v1/players/me/ledger`).

use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;

use crate::db::Db;
use crate::http::ApiError;
use crate::http::keyset::{Key, ListQuery};
use crate::http::paging::{self, Page, PageQuery};

/// One change to one balance.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
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

/// One page of a player's ledger, newest first.
pub async fn page(db: &Db, player: &str, page: &PageQuery) -> Result<Page<LedgerEntry>, ApiError> {
    let list = ListQuery {
        select: "SELECT id, resource, delta, balance_after, reason, reference, created_at_ms \
                 FROM ledger",
        filters: &[("player_id", player)],
        keys: &[Key::desc_int("created_at_ms"), Key::desc_text("id")],
    };
    let limit = page.limit()?;
    let (rows, _) = list.page(db, page, 2).await?;
    let entries = rows
        .iter()
        .map(LedgerEntry::from_row)
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Page::from_rows(entries, limit, |e| {
        paging::cursor(&[&e.created_at_ms.to_string(), &e.id])
    }))
}
