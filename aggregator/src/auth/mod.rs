//! Player authentication: guest and device logins, Sign-In with Ethereum, Google ID tokens,
//! linked accounts, short-lived JWT access tokens with rotating keys, rotating refresh tokens
//! with reuse detection, logout, the `CurrentPlayer` extractor, admin accounts and rate limits
//! (per replica, or shared through Redis).

pub mod admin;
mod extractor;
pub mod google;
pub mod jwt;
pub mod kinds;
pub mod logins;
pub mod rate_limit;
pub(crate) mod routes;
pub mod secrets;
pub mod sessions;
pub mod settings;
pub mod siwe;
pub mod store;
pub mod windows;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use anyhow::Context;

pub use extractor::CurrentPlayer;
pub use rate_limit::{Bucket, RateLimiter};
pub use settings::AuthArgs;

use crate::db::Db;

/// Least time between two reloads of the signing keys caused by an unknown `kid`.
const KEY_RELOAD_EVERY_MS: i64 = 10_000;
/// The signing keys are reloaded at least this often while tokens are being verified, so a
/// rotation reaches every running replica within a minute (new tokens are signed with the new
/// key, and after a second rotation the retired key is refused).
const KEY_REFRESH_EVERY_MS: i64 = 60_000;

pub fn router() -> utoipa_axum::router::OpenApiRouter<crate::state::AppState> {
    routes::router().merge(logins::routes::router())
}

/// Everything the auth routes and the extractor need, built once at start-up.
pub struct Auth {
    tokens: RwLock<Arc<jwt::TokenKeys>>,
    /// Keys come from the database (reloaded when a token names a key we lack: another
    /// replica may have rotated) rather than from `--jwt-secret`.
    keys_in_database: bool,
    last_reload_ms: AtomicI64,
    args: AuthArgs,
    pub refresh_ttl_ms: i64,
    pub limiter: RateLimiter,
    /// The rate-limit windows, shared with the per-address limits.
    pub windows: Arc<windows::Windows>,
    pub siwe: siwe::Siwe,
    /// Authenticates the Sign-In with Ethereum nonces this server issues.
    pub nonces: siwe::nonces::NonceKey,
    /// `None` when Google sign-in is off.
    pub google: Option<google::Google>,
    /// Sessions lately found open, or ended here.
    pub sessions: sessions::OpenSessions,
}

impl Auth {
    /// Builds the token keys (from `--jwt-secret` or the keys stored in the database), the
    /// rate limiter (connecting to Redis with `--redis-url`) and the sign-in checks.
    pub async fn build(args: &AuthArgs, db: &Db, now_ms: i64) -> anyhow::Result<Auth> {
        args.check()?;
        let keys_in_database = args.jwt_secret.is_none();
        let tokens = if keys_in_database {
            let keys = stored_keys(db, args, now_ms)
                .await
                .context("loading the JWT signing keys from the database")?;
            tracing::info!(
                kid = keys.current_kid(),
                "signing access tokens with the key stored in the database (set --jwt-secret to provide one)"
            );
            keys
        } else {
            token_keys(
                args,
                args.jwt_secret.as_deref().unwrap_or_default(),
                args.jwt_previous_secret.as_deref(),
            )
        };
        let windows = Arc::new(match &args.redis_url {
            Some(url) => {
                let redis = windows::redis::RedisWindows::connect(url, &args.redis_prefix)
                    .await
                    .with_context(|| {
                        format!("connecting to Redis at {}", crate::db::redact(url))
                    })?;
                tracing::info!("rate limits are shared by every replica through Redis");
                windows::Windows::shared(redis)
            }
            None => windows::Windows::local(),
        });
        let per_hour = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Ok(Auth {
            tokens: RwLock::new(Arc::new(tokens)),
            keys_in_database,
            last_reload_ms: AtomicI64::new(now_ms),
            refresh_ttl_ms: i64::try_from(args.refresh_token_ttl_secs)
                .unwrap_or(86_400)
                .saturating_mul(1000),
            limiter: RateLimiter::new(
                rate_limit::Limits {
                    requests: per_hour(args.rate_limit_requests_per_hour),
                    summons: per_hour(args.rate_limit_summons_per_hour),
                    battles: per_hour(args.rate_limit_battles_per_hour),
                    window_ms: 3_600_000,
                },
                Arc::clone(&windows),
            ),
            windows,
            siwe: siwe::Siwe::new(&args.siwe),
            nonces: siwe::nonces::NonceKey::load(db, now_ms)
                .await
                .context("loading the sign-in nonce key from the database")?,
            google: google::Google::new(&args.google),
            sessions: sessions::OpenSessions::default(),
            args: args.clone(),
        })
    }

    /// The keys access tokens are issued and verified with.
    pub fn tokens(&self) -> Arc<jwt::TokenKeys> {
        match self.tokens.read() {
            Ok(keys) => Arc::clone(&keys),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Verifies an access token. The keys are reloaded from the database every minute, and
    /// when a token names a key we lack (at most every 10 s): another replica or
    /// `hero-aggregator keys rotate` may have rotated them.
    pub async fn verify(
        &self,
        db: &Db,
        token: &str,
        now_ms: i64,
    ) -> Result<jwt::Claims, jwt::TokenError> {
        let now_secs = now_ms.div_euclid(1000);
        if self.keys_in_database {
            self.reload(db, now_ms, KEY_REFRESH_EVERY_MS).await;
        }
        match self.tokens().verify(token, now_secs) {
            Err(jwt::TokenError::UnknownKey) if self.keys_in_database => {}
            other => return other,
        }
        if !self.reload(db, now_ms, KEY_RELOAD_EVERY_MS).await {
            return Err(jwt::TokenError::UnknownKey);
        }
        self.tokens().verify(token, now_secs)
    }

    /// Reloads the keys unless they were loaded less than `every_ms` ago (or another request
    /// is reloading them); whether this call reloaded.
    async fn reload(&self, db: &Db, now_ms: i64, every_ms: i64) -> bool {
        let last = self.last_reload_ms.load(Ordering::Relaxed);
        if now_ms - last < every_ms
            || self
                .last_reload_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return false;
        }
        match load_keys(db, &self.args).await {
            Ok(Some(keys)) => {
                if keys.current_kid() != self.tokens().current_kid() {
                    tracing::info!(kid = keys.current_kid(), "loaded rotated JWT signing keys");
                }
                if let Ok(mut current) = self.tokens.write() {
                    *current = Arc::new(keys);
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not reload the JWT signing keys"),
        }
        true
    }
}

fn token_keys(args: &AuthArgs, current: &str, previous: Option<&str>) -> jwt::TokenKeys {
    jwt::TokenKeys::new(
        current.as_bytes(),
        previous.map(str::as_bytes),
        &args.jwt_issuer,
        &args.jwt_audience,
        i64::try_from(args.access_token_ttl_secs).unwrap_or(900),
    )
}

const CURRENT_KEY: &str = "jwt_hs256";
const PREVIOUS_KEY: &str = "jwt_hs256_previous";

async fn load_keys(db: &Db, args: &AuthArgs) -> Result<Option<jwt::TokenKeys>, sqlx::Error> {
    let current: Option<String> =
        sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
            .bind(CURRENT_KEY)
            .fetch_optional(&db.pool)
            .await?;
    let previous: Option<String> =
        sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
            .bind(PREVIOUS_KEY)
            .fetch_optional(&db.pool)
            .await?;
    Ok(current.map(|c| token_keys(args, &c, previous.as_deref())))
}

/// The signing keys kept in `server_secrets`, the current one created by whichever replica
/// starts first.
async fn stored_keys(db: &Db, args: &AuthArgs, now_ms: i64) -> Result<jwt::TokenKeys, sqlx::Error> {
    sqlx::query(
        "INSERT INTO server_secrets (name, value, created_at_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(CURRENT_KEY)
    .bind(secrets::new_secret())
    .bind(now_ms)
    .execute(&db.writer)
    .await?;
    load_keys(db, args).await?.ok_or(sqlx::Error::RowNotFound)
}

/// `hero-aggregator keys rotate`: a new current signing key; the current one becomes the
/// previous (still accepted), the previous one is dropped. Returns the new key's id.
pub async fn rotate_stored_keys(db: &Db, now_ms: i64) -> Result<String, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let current: Option<String> =
        sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
            .bind(CURRENT_KEY)
            .fetch_optional(&mut *tx)
            .await?;
    let upsert = "INSERT INTO server_secrets (name, value, created_at_ms) VALUES ($1, $2, $3) \
                  ON CONFLICT (name) DO UPDATE SET value = excluded.value, \
                  created_at_ms = excluded.created_at_ms";
    if let Some(current) = current {
        sqlx::query(upsert)
            .bind(PREVIOUS_KEY)
            .bind(current)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
    }
    let next = secrets::new_secret();
    sqlx::query(upsert)
        .bind(CURRENT_KEY)
        .bind(&next)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(jwt::key_id(next.as_bytes()))
}
