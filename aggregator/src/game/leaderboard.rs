//! `GET /api/v1/leaderboard`: characters by wins then win rate, or players by wins. Public,
//! paged by keyset over an index in exactly the listed order, so a page is an index walk.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use moka::sync::Cache;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::ApiResult;
use crate::http::etag::Tagged;
use crate::http::keyset::{Key, ListQuery};
use crate::http::openapi::ErrorResponse;
use crate::http::paging::{self, ApiQuery, Page, PageQuery};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(leaderboard))
}

#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BoardKind {
    #[default]
    Characters,
    Players,
}

/// `GET /api/v1/leaderboard` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BoardQuery {
    /// `characters` (default) or `players`.
    #[param(inline)]
    pub kind: Option<BoardKind>,
    pub cursor: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    pub limit: Option<i64>,
}

/// One line of the leaderboard; character fields are null on the players board.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Standing {
    /// 1 for the first line; ties are ordered by id.
    pub rank: i64,
    pub player_id: String,
    pub nickname: String,
    pub character_id: Option<String>,
    pub character_name: Option<String>,
    pub rarity: Option<i64>,
    pub level: Option<i64>,
    pub rating: Option<i64>,
    pub wins: i64,
    pub losses: i64,
    /// Wins / battles in basis points.
    pub win_rate_bp: i64,
}

/// Leaderboard pages served from memory for `--leaderboard-cache-ms`: a busy board is read
/// from the database once per interval, not once per viewer. Also the key its cursors are
/// sealed with.
pub struct BoardCache {
    /// `None` when turned off.
    cache: Option<Cache<String, Arc<Tagged>>>,
    /// A cursor carries the rank of its row (counting the rows before it would be a walk of
    /// the whole index), so it is sealed: a forged one set any character's rank, and was
    /// cached under its key for whoever followed the link.
    cursor_key: ring::hmac::Key,
}

/// The name of the cursor key in `server_secrets`.
pub const CURSOR_KEY: &str = "leaderboard_cursor";

/// Bytes of pages kept at most (each a kind, a cursor and a limit).
const BOARD_BYTES: u64 = 4 * 1024 * 1024;
/// Only pages reached by a cursor of at most this length are kept: cursors the board hands
/// out are far shorter, and a client padding one must not fill the cache with its keys.
const CACHED_CURSOR_LEN: usize = 128;

impl BoardCache {
    pub fn new(ttl: Duration, cursor_key: ring::hmac::Key) -> Self {
        let cache = (!ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(BOARD_BYTES)
                .weigher(|key: &String, page: &Arc<Tagged>| {
                    page.weight()
                        .saturating_add(u32::try_from(key.len()).unwrap_or(u32::MAX))
                })
                .time_to_live(ttl)
                .build()
        });
        Self { cache, cursor_key }
    }

    fn mac(&self, fields: &[&str]) -> String {
        let tag = ring::hmac::sign(&self.cursor_key, fields.join("|").as_bytes());
        hex::encode(&tag.as_ref()[..16])
    }

    /// The cursor of a row: its `fields` (the rank last) and their MAC.
    fn seal(&self, fields: &[&str]) -> String {
        let mac = self.mac(fields);
        let mut sealed = fields.to_vec();
        sealed.push(&mac);
        paging::cursor(&sealed)
    }

    /// The rank carried by `page`'s cursor of `parts` parts (0 for the first page); 422 for a
    /// cursor this board did not seal.
    fn rank(&self, page: &PageQuery, parts: usize) -> ApiResult<i64> {
        let Some(fields) = page.cursor(parts)? else {
            return Ok(0);
        };
        let bad = || crate::http::ApiError::Unprocessable("cursor is not valid".into());
        let (mac, signed) = fields.split_last().ok_or_else(bad)?;
        let signed: Vec<&str> = signed.iter().map(String::as_str).collect();
        if !crate::auth::secrets::secrets_match(mac, &self.mac(&signed)) {
            return Err(bad());
        }
        paging::rank(signed.last().ok_or_else(bad)?)
    }
}

/// One page of the leaderboard, at most `--leaderboard-cache-ms` old; answers carry an `ETag`
/// and `If-None-Match` gets 304 while the page is unchanged.
#[utoipa::path(
    get, path = "/api/v1/leaderboard", tag = "leaderboard",
    params(BoardQuery),
    responses(
        (status = 200, description = "One page of the board", body = Page<Standing>),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        (status = 422, description = "Unknown kind, bad cursor or limit", body = ErrorResponse),
    )
)]
pub async fn leaderboard(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<BoardQuery>,
) -> ApiResult<Response> {
    let kind = query.kind.unwrap_or_default();
    let page = PageQuery {
        cursor: query.cursor,
        limit: query.limit,
    };
    let limit = page.limit()?;
    let key = format!("{kind:?}|{limit}|{}", page.cursor.as_deref().unwrap_or(""));
    let cache = state.board_cache.cache.as_ref().filter(|_| {
        page.cursor
            .as_ref()
            .is_none_or(|c| c.len() <= CACHED_CURSOR_LEN)
    });
    if let Some(hit) = cache.and_then(|c| c.get(&key)) {
        return Ok(hit.respond(&headers, BOARD_CACHE_CONTROL));
    }
    let standings = match kind {
        BoardKind::Characters => characters(&state, &page, limit).await,
        BoardKind::Players => players(&state, &page, limit).await,
    }?;
    let tagged = Arc::new(Tagged::json(&standings)?);
    if let Some(cache) = cache {
        cache.insert(key, Arc::clone(&tagged));
    }
    Ok(tagged.respond(&headers, BOARD_CACHE_CONTROL))
}

/// Clients ask again each time, with the ETag.
const BOARD_CACHE_CONTROL: &str = "no-cache";

async fn characters(state: &AppState, page: &PageQuery, limit: i64) -> ApiResult<Page<Standing>> {
    let list = ListQuery {
        select: "SELECT c.id, c.name, c.rarity, c.level, c.rating, c.wins, c.losses, \
                 c.win_rate_bp, c.player_id, p.nickname \
                 FROM characters c JOIN players p ON p.id = c.player_id",
        filters: &[],
        keys: &[
            Key::desc_int("c.wins"),
            Key::desc_int("c.win_rate_bp"),
            Key::asc_text("c.id"),
        ],
    };
    let board = &state.board_cache;
    let rank = board.rank(page, 5)?;
    let (rows, _) = list.page(&state.db, page, 5).await?;
    let items = rows
        .iter()
        .zip(rank + 1..)
        .map(|(r, rank)| {
            Ok(Standing {
                rank,
                player_id: r.try_get("player_id")?,
                nickname: r.try_get("nickname")?,
                character_id: Some(r.try_get("id")?),
                character_name: Some(r.try_get("name")?),
                rarity: Some(r.try_get("rarity")?),
                level: Some(r.try_get("level")?),
                rating: Some(r.try_get("rating")?),
                wins: r.try_get("wins")?,
                losses: r.try_get("losses")?,
                win_rate_bp: r.try_get("win_rate_bp")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Page::from_rows(items, limit, |s| {
        board.seal(&[
            &s.wins.to_string(),
            &s.win_rate_bp.to_string(),
            s.character_id.as_deref().unwrap_or_default(),
            &s.rank.to_string(),
        ])
    }))
}

async fn players(state: &AppState, page: &PageQuery, limit: i64) -> ApiResult<Page<Standing>> {
    let list = ListQuery {
        // The house account (`login_method = 'system'`) is not a player who fights.
        select: "SELECT id, nickname, wins, losses FROM (SELECT id, nickname, wins, losses \
                 FROM players WHERE login_method <> 'system') players",
        filters: &[],
        keys: &[Key::desc_int("wins"), Key::asc_text("id")],
    };
    let board = &state.board_cache;
    let rank = board.rank(page, 4)?;
    let (rows, _) = list.page(&state.db, page, 4).await?;
    let items = rows
        .iter()
        .zip(rank + 1..)
        .map(|(r, rank)| {
            let (wins, losses): (i64, i64) = (r.try_get("wins")?, r.try_get("losses")?);
            Ok(Standing {
                rank,
                player_id: r.try_get("id")?,
                nickname: r.try_get("nickname")?,
                character_id: None,
                character_name: None,
                rarity: None,
                level: None,
                rating: None,
                wins,
                losses,
                win_rate_bp: super::rewards::win_rate_bp(wins, losses),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Page::from_rows(items, limit, |s| {
        board.seal(&[&s.wins.to_string(), &s.player_id, &s.rank.to_string()])
    }))
}
