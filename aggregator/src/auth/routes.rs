//! `/api/v1/auth/...`: guest sign-up, device login, refresh-token rotation and logout.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::CurrentPlayer;
use super::secrets::{hash_secret, new_secret, secrets_match};
use super::sessions::{self, Tokens};
use super::store::{self, PlayerView};
use crate::http::error::ApiResult;
use crate::http::ip_limit::Kind;
use crate::http::net::ClientIp;
use crate::http::openapi::ErrorResponse;
use crate::http::{ApiError, ApiJson};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(guest))
        .routes(routes!(device))
        .routes(routes!(refresh))
        .routes(routes!(logout))
}

/// A successful login.
#[derive(Debug, Serialize, ToSchema)]
pub struct Login {
    pub player: PlayerView,
    #[serde(flatten)]
    pub tokens: Tokens,
}

/// A new guest: keep `device_id` and `device_secret` to log in again.
#[derive(Debug, Serialize, ToSchema)]
pub struct GuestLogin {
    pub device_id: String,
    /// Shown once; the server keeps only its hash.
    pub device_secret: String,
    #[serde(flatten)]
    pub login: Login,
}

pub(crate) async fn player_view(
    state: &AppState,
    tx: &mut crate::db::Tx,
    id: &str,
    now: i64,
) -> ApiResult<PlayerView> {
    store::load(&mut **tx, id, state.game.ledger.energy_regen_ms, now)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such player".into()))
}

#[utoipa::path(
    post, path = "/api/v1/auth/guest", tag = "auth",
    responses(
        (status = 201, description = "A new guest player with its device credentials and tokens", body = GuestLogin),
        (status = 429, description = "Too many sign-ins from this address (per minute) or guest accounts (per day); see Retry-After", body = ErrorResponse),
    )
)]
pub async fn guest(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
) -> ApiResult<(StatusCode, Json<GuestLogin>)> {
    let now = state.clock.now_ms();
    state.ip_limiter.check(ip, Kind::Auth, now).await?;
    state.ip_limiter.check(ip, Kind::NewAccount, now).await?;
    let mut tx = state.db.begin_write().await?;
    let player = store::create(&mut tx, &state.game.ledger, "guest", now).await?;
    let device_id = uuid::Uuid::new_v4().to_string();
    let device_secret = new_secret();
    store::add_device(
        &mut tx,
        &device_id,
        &player,
        &hash_secret(&device_secret),
        now,
    )
    .await?;
    let tokens = sessions::open(&mut tx, &state.auth, &player, Some(&device_id), now).await?;
    let view = player_view(&state, &mut tx, &player, now).await?;
    tx.commit().await?;
    tracing::info!(player.id = %player, "guest player created");
    Ok((
        StatusCode::CREATED,
        Json(GuestLogin {
            device_id,
            device_secret,
            login: Login {
                player: view,
                tokens,
            },
        }),
    ))
}

/// `POST /api/v1/auth/device` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceLogin {
    pub device_id: String,
    pub device_secret: String,
}

#[utoipa::path(
    post, path = "/api/v1/auth/device", tag = "auth",
    request_body = DeviceLogin,
    responses(
        (status = 200, description = "Logged in: a new session", body = Login),
        (status = 401, description = "Unknown device or wrong secret", body = ErrorResponse),
        (status = 429, description = "Too many logins from this address (per-minute limit); see Retry-After", body = ErrorResponse),
    )
)]
pub async fn device(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<DeviceLogin>,
) -> ApiResult<Json<Login>> {
    state
        .ip_limiter
        .check(ip, Kind::Auth, state.clock.now_ms())
        .await?;
    let refused = || ApiError::Unauthorized("unknown device or wrong device secret".into());
    if body.device_id.len() > 64 || body.device_secret.len() > 256 {
        return Err(refused());
    }
    let now = state.clock.now_ms();
    let mut tx = state.db.begin_write().await?;
    let device = store::device(&mut tx, &body.device_id)
        .await?
        .ok_or_else(refused)?;
    if !secrets_match(&hash_secret(&body.device_secret), &device.secret_hash) {
        return Err(refused());
    }
    let player = device.player_id;
    store::touch_login(&mut tx, &body.device_id, &player, now).await?;
    let tokens = sessions::open(&mut tx, &state.auth, &player, Some(&body.device_id), now).await?;
    let view = player_view(&state, &mut tx, &player, now).await?;
    tx.commit().await?;
    Ok(Json(Login {
        player: view,
        tokens,
    }))
}

/// `POST /api/v1/auth/refresh` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[utoipa::path(
    post, path = "/api/v1/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens; the old refresh token is spent", body = Tokens),
        (status = 401, description = "Unknown, expired or reused refresh token (reuse revokes the session)", body = ErrorResponse),
        (status = 429, description = "Too many refreshes from this address (per-minute limit); see Retry-After", body = ErrorResponse),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> ApiResult<Json<Tokens>> {
    state
        .ip_limiter
        .check(ip, Kind::Auth, state.clock.now_ms())
        .await?;
    if body.refresh_token.len() > 256 {
        return Err(ApiError::Unauthorized("refresh token is not valid".into()));
    }
    let (_, tokens) = sessions::rotate(
        &state.db,
        &state.auth,
        &body.refresh_token,
        state.clock.now_ms(),
    )
    .await?;
    Ok(Json(tokens))
}

#[utoipa::path(
    post, path = "/api/v1/auth/logout", tag = "auth",
    responses(
        (status = 204, description = "Session revoked: its access and refresh tokens stop working"),
        (status = 401, description = "No valid access token", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn logout(State(state): State<AppState>, player: CurrentPlayer) -> ApiResult<StatusCode> {
    let mut tx = state.db.begin_write().await?;
    sessions::revoke(&mut tx, &player.session_id, "logout", state.clock.now_ms()).await?;
    tx.commit().await?;
    state.auth.sessions.ended(&player.session_id);
    Ok(StatusCode::NO_CONTENT)
}
