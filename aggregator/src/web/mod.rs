//! The web page the aggregator serves at `/` (a player view and an operator view, plain
//! JavaScript, embedded in the binary), character portraits
//! (`GET /api/v1/characters/{id}/portrait.svg`), and the recent battles the operator view
//! lists (`GET /api/battles/recent`).
//!
//! The page's files are not API: [`pages`] is a plain router, merged beside the API, so they are
//! not in the OpenAPI document. Portraits and recent battles are API ([`router`]). Only the
//! exact paths of the page are routed: every other path still gets the API's JSON 404.

pub mod assets;
pub mod portrait;
pub mod recent;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::game::characters::store as characters;
use crate::http::ApiError;
use crate::http::error::ApiResult;
use crate::http::openapi::ErrorResponse;
use crate::state::AppState;

/// A portrait never changes (it is drawn from what a character was summoned with).
const PORTRAIT_CACHE: &str = "public, max-age=86400";

/// The API routes of this module (documented).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(portrait_svg))
        .routes(routes!(recent::recent))
}

/// The page and its files (not API, not documented).
pub fn pages() -> Router<AppState> {
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/app.js", get(assets::app_js))
        .route("/assets/style.css", get(assets::style_css))
}

/// A character's portrait: an SVG drawn from its rarity, stats and skill, the same bytes every
/// time. Public, like the leaderboard's characters.
#[utoipa::path(
    get, path = "/api/v1/characters/{id}/portrait.svg", tag = "characters",
    params(
        ("id" = String, Path, description = "Character id"),
        ("If-None-Match" = Option<String>, Header, description = "The ETag of an earlier answer: 304 while it still matches"),
    ),
    responses(
        (status = 200, description = "The portrait (`Cache-Control: public, max-age=86400`, strong `ETag`)", body = String, content_type = "image/svg+xml"),
        (status = 304, description = "Not modified: the ETag in If-None-Match is current"),
        (status = 404, description = "No such character", body = ErrorResponse),
    )
)]
pub async fn portrait_svg(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let character = characters::public(&state.db.pool, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no character with id {id}")))?;
    let svg = portrait::draw(&portrait::Traits::innate(&character)).into_bytes();
    let etag = assets::etag_of(&svg);
    let mut response = assets::respond(&headers, svg, "image/svg+xml", &etag, PORTRAIT_CACHE);
    // Opened on its own, the SVG is a document: it may run nothing and load nothing.
    response.headers_mut().insert(
        axum::http::header::CONTENT_SECURITY_POLICY,
        axum::http::HeaderValue::from_static("default-src 'none'"),
    );
    Ok(response)
}
