//! Sign in with a wallet or a Google account, and link or unlink them:
//! `/api/v1/auth/web3/nonce`, `/api/v1/auth/web3`, `/api/v1/auth/google`,
//! `/api/v1/players/me/logins[...]`.

use axum::Json;
use std::net::IpAddr;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Account, LoginKind, Logins};
use crate::auth::routes::{Login, player_view};
use crate::auth::siwe::{self, SiweMessage, nonces};
use crate::auth::{CurrentPlayer, sessions};
use crate::db::Tx;
use crate::http::error::ApiResult;
use crate::http::ip_limit::Kind;
use crate::http::net::ClientIp;
use crate::http::openapi::ErrorResponse;
use crate::http::{ApiError, ApiJson};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(web3_nonce))
        .routes(routes!(web3_login))
        .routes(routes!(google_login))
        .routes(routes!(list_logins))
        .routes(routes!(link_web3, unlink_web3))
        .routes(routes!(link_google, unlink_google))
}

/// What a wallet signs in with: a fresh nonce and the values the message must carry.
#[derive(Debug, Serialize, ToSchema)]
pub struct Web3Nonce {
    /// Put it in the message's `Nonce:` line; usable once, for 5 minutes.
    pub nonce: String,
    pub expires_at_ms: i64,
    /// The message's first line must name this domain.
    pub domain: String,
    /// The message's `URI:` must be on this origin.
    pub uri: String,
    /// `Chain ID:` must be one of these.
    pub chain_ids: Vec<u64>,
}

/// A signed EIP-4361 message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Web3Proof {
    /// The message exactly as signed (lines end with `\n`).
    pub message: String,
    /// `personal_sign` signature: 0x and 130 hex digits.
    pub signature: String,
}

/// A Google ID token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GoogleProof {
    pub id_token: String,
}

/// A sign-in with an outside account.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountLogin {
    /// True when this sign-in created the player.
    pub new_player: bool,
    #[serde(flatten)]
    pub login: Login,
}

#[utoipa::path(
    get, path = "/api/v1/auth/web3/nonce", tag = "auth",
    responses(
        (status = 200, description = "A single-use nonce for a Sign-In with Ethereum message", body = Web3Nonce),
        (status = 429, description = "Too many sign-ins from this address; see Retry-After", body = ErrorResponse),
    )
)]
pub async fn web3_nonce(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
) -> ApiResult<Json<Web3Nonce>> {
    let now = state.clock.now_ms();
    state.ip_limiter.check(ip, Kind::Auth, now).await?;
    let (nonce, expires_at_ms) = state.auth.nonces.issue(now);
    let siwe = &state.auth.siwe;
    Ok(Json(Web3Nonce {
        nonce,
        expires_at_ms,
        domain: siwe.domain.clone(),
        uri: siwe.origin.ascii_serialization(),
        chain_ids: siwe.chain_ids.clone(),
    }))
}

/// A wallet a signed message proves, and the nonce to spend for it.
struct ProvenWallet {
    account: Account,
    nonce: String,
    nonce_expires_ms: i64,
}

/// Checks a signed message without touching the database: its grammar, domain, URI, chain,
/// times, signer, and that its nonce is one this server issued and still valid.
fn proven_wallet(state: &AppState, proof: &Web3Proof) -> ApiResult<ProvenWallet> {
    if proof.message.len() > siwe::message::MAX_MESSAGE_BYTES
        || proof.signature.len() > siwe::MAX_SIGNATURE_BYTES
    {
        return Err(ApiError::Unprocessable(format!(
            "the message is at most {} bytes and the signature {} characters",
            siwe::message::MAX_MESSAGE_BYTES,
            siwe::MAX_SIGNATURE_BYTES
        )));
    }
    let message =
        SiweMessage::parse(&proof.message).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let now = state.clock.now_ms();
    let refused = |e: siwe::Refused| ApiError::Unauthorized(e.to_string());
    let address = state
        .auth
        .siwe
        .verify(&message, &proof.message, &proof.signature, now)
        .map_err(refused)?;
    let nonce_expires_ms = state
        .auth
        .nonces
        .check(&message.nonce, now)
        .ok_or_else(|| refused(siwe::Refused::Nonce))?;
    Ok(ProvenWallet {
        account: Account {
            kind: LoginKind::Web3,
            subject: format!("0x{}", hex::encode(address)),
            email: None,
            chain_id: i64::try_from(message.chain_id).ok(),
        },
        nonce: message.nonce,
        nonce_expires_ms,
    })
}

/// Spends the wallet's nonce in `tx`: once only, so a message signs in (or links) once.
async fn spend_nonce(state: &AppState, tx: &mut Tx, wallet: &ProvenWallet) -> ApiResult<()> {
    let now = state.clock.now_ms();
    if !nonces::spend(tx, &wallet.nonce, wallet.nonce_expires_ms, now).await? {
        return Err(ApiError::Unauthorized(siwe::Refused::Nonce.to_string()));
    }
    Ok(())
}

/// The Google account an ID token proves.
async fn proven_google(state: &AppState, proof: &GoogleProof) -> ApiResult<Account> {
    let Some(google) = &state.auth.google else {
        return Err(ApiError::Forbidden(
            "Google sign-in is not enabled on this server (--google-client-id)".into(),
        ));
    };
    let account = google
        .verify(&proof.id_token, state.clock.now_ms())
        .await
        .map_err(|e| match e {
            crate::auth::google::IdTokenError::Key(
                crate::auth::google::jwks::JwksError::Fetch(reason),
            ) => {
                tracing::warn!(%reason, "Google's signing keys are unavailable");
                ApiError::Unavailable("Google's signing keys are unavailable; try again".into())
            }
            e => ApiError::Unauthorized(e.to_string()),
        })?;
    Ok(Account {
        kind: LoginKind::Google,
        subject: account.sub,
        email: account.email,
        chain_id: None,
    })
}

/// Signs in with `account` in `tx`; a new player counts against the address's daily limit of
/// new accounts.
async fn sign_in(
    state: &AppState,
    mut tx: Tx,
    account: &Account,
    ip: IpAddr,
) -> ApiResult<Json<AccountLogin>> {
    let now = state.clock.now_ms();
    let (player, new_player) = match super::owner(&mut tx, account).await? {
        Some(player) => {
            super::sign_in_existing(&mut tx, account, now).await?;
            (player, false)
        }
        None => {
            state.ip_limiter.check(ip, Kind::NewAccount, now).await?;
            (
                super::sign_up(&mut tx, &state.game.ledger, account, now).await?,
                true,
            )
        }
    };
    sqlx::query("UPDATE players SET last_login_at_ms = $2 WHERE id = $1")
        .bind(&player)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let tokens = sessions::open(&mut tx, &state.auth, &player, None, now).await?;
    let view = player_view(state, &mut tx, &player, now).await?;
    tx.commit().await?;
    if new_player {
        tracing::info!(player.id = %player, login = account.kind.as_str(), "player created");
    }
    Ok(Json(AccountLogin {
        new_player,
        login: Login {
            player: view,
            tokens,
        },
    }))
}

#[utoipa::path(
    post, path = "/api/v1/auth/web3", tag = "auth",
    request_body = Web3Proof,
    responses(
        (status = 200, description = "Signed in (the wallet's player, created on first sign-in)", body = AccountLogin),
        (status = 401, description = "Wrong domain, URI or chain, expired or not yet valid, bad signature, or a nonce unknown, expired or used", body = ErrorResponse),
        (status = 422, description = "Not an EIP-4361 message, or over the size limits", body = ErrorResponse),
        (status = 429, description = "Too many sign-ins from this address; see Retry-After", body = ErrorResponse),
    )
)]
pub async fn web3_login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(proof): ApiJson<Web3Proof>,
) -> ApiResult<Json<AccountLogin>> {
    state
        .ip_limiter
        .check(ip, Kind::Auth, state.clock.now_ms())
        .await?;
    let wallet = proven_wallet(&state, &proof)?;
    let mut tx = state.db.begin_write().await?;
    spend_nonce(&state, &mut tx, &wallet).await?;
    sign_in(&state, tx, &wallet.account, ip).await
}

#[utoipa::path(
    post, path = "/api/v1/auth/google", tag = "auth",
    request_body = GoogleProof,
    responses(
        (status = 200, description = "Signed in (the Google account's player, created on first sign-in)", body = AccountLogin),
        (status = 401, description = "Not a valid Google ID token for this game (algorithm, key, signature, issuer, audience or time)", body = ErrorResponse),
        (status = 403, description = "Google sign-in is not enabled", body = ErrorResponse),
        (status = 429, description = "Too many sign-ins from this address; see Retry-After", body = ErrorResponse),
        (status = 503, description = "Google's keys could not be fetched", body = ErrorResponse),
    )
)]
pub async fn google_login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(proof): ApiJson<GoogleProof>,
) -> ApiResult<Json<AccountLogin>> {
    state
        .ip_limiter
        .check(ip, Kind::Auth, state.clock.now_ms())
        .await?;
    let account = proven_google(&state, &proof).await?;
    let tx = state.db.begin_write().await?;
    match sign_in(&state, tx, &account, ip).await {
        // The same new account signing in twice at once (a double click): the other request
        // created the player; sign in to it.
        Err(ApiError::Database(e)) if crate::db::is_unique_violation(&e) => {
            let tx = state.db.begin_write().await?;
            sign_in(&state, tx, &account, ip).await
        }
        answer => answer,
    }
}

async fn logins_of(state: &AppState, player: &str) -> ApiResult<Json<Logins>> {
    let mut conn = state.db.pool.acquire().await?;
    Ok(Json(super::list(&mut conn, player).await?))
}

#[utoipa::path(
    get, path = "/api/v1/players/me/logins", tag = "auth",
    responses(
        (status = 200, description = "The wallet and Google account linked to you, and your devices", body = Logins),
        (status = 401, description = "No valid access token", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn list_logins(
    State(state): State<AppState>,
    player: CurrentPlayer,
) -> ApiResult<Json<Logins>> {
    logins_of(&state, &player.id).await
}

async fn link_account(
    state: &AppState,
    mut tx: Tx,
    player: &str,
    account: Account,
) -> ApiResult<Json<Logins>> {
    super::link(&mut tx, player, &account, state.clock.now_ms()).await?;
    tx.commit().await?;
    tracing::info!(player.id = %player, login = account.kind.as_str(), "account linked");
    logins_of(state, player).await
}

#[utoipa::path(
    post, path = "/api/v1/players/me/logins/web3", tag = "auth",
    request_body = Web3Proof,
    responses(
        (status = 200, description = "The wallet is linked: it signs in to this player from now on", body = Logins),
        (status = 401, description = "The message or signature is refused (as for sign-in)", body = ErrorResponse),
        (status = 409, description = "The wallet belongs to another player, or you have one linked already", body = ErrorResponse),
        (status = 422, description = "Not an EIP-4361 message", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn link_web3(
    State(state): State<AppState>,
    player: CurrentPlayer,
    ApiJson(proof): ApiJson<Web3Proof>,
) -> ApiResult<Json<Logins>> {
    let wallet = proven_wallet(&state, &proof)?;
    let mut tx = state.db.begin_write().await?;
    spend_nonce(&state, &mut tx, &wallet).await?;
    link_account(&state, tx, &player.id, wallet.account).await
}

#[utoipa::path(
    post, path = "/api/v1/players/me/logins/google", tag = "auth",
    request_body = GoogleProof,
    responses(
        (status = 200, description = "The Google account is linked", body = Logins),
        (status = 401, description = "The ID token is refused (as for sign-in)", body = ErrorResponse),
        (status = 403, description = "Google sign-in is not enabled", body = ErrorResponse),
        (status = 409, description = "The account belongs to another player, or you have one linked already", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn link_google(
    State(state): State<AppState>,
    player: CurrentPlayer,
    ApiJson(proof): ApiJson<GoogleProof>,
) -> ApiResult<Json<Logins>> {
    let account = proven_google(&state, &proof).await?;
    let tx = state.db.begin_write().await?;
    link_account(&state, tx, &player.id, account).await
}

async fn unlink(
    state: &AppState,
    player: &CurrentPlayer,
    kind: LoginKind,
) -> ApiResult<StatusCode> {
    let mut tx = state.db.begin_write().await?;
    super::unlink(&mut tx, &player.id, kind).await?;
    tx.commit().await?;
    tracing::info!(player.id = %player.id, login = kind.as_str(), "account unlinked");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete, path = "/api/v1/players/me/logins/web3", tag = "auth",
    responses(
        (status = 204, description = "Unlinked: the wallet no longer signs in to this player"),
        (status = 404, description = "No wallet is linked", body = ErrorResponse),
        (status = 409, description = "It is your last way to sign in", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn unlink_web3(
    State(state): State<AppState>,
    player: CurrentPlayer,
) -> ApiResult<StatusCode> {
    unlink(&state, &player, LoginKind::Web3).await
}

#[utoipa::path(
    delete, path = "/api/v1/players/me/logins/google", tag = "auth",
    responses(
        (status = 204, description = "Unlinked: the Google account no longer signs in to this player"),
        (status = 404, description = "No Google account is linked", body = ErrorResponse),
        (status = 409, description = "It is your last way to sign in", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn unlink_google(
    State(state): State<AppState>,
    player: CurrentPlayer,
) -> ApiResult<StatusCode> {
    unlink(&state, &player, LoginKind::Google).await
}
