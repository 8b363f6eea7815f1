//! Player authentication: guest and device logins, short-lived JWT access tokens, rotating
//! refresh tokens with reuse detection, logout, the `CurrentPlayer` extractor and per-player
//! rate limits.

pub mod admin;
mod extractor;
pub mod jwt;
pub mod rate_limit;
pub(crate) mod routes;
pub mod secrets;
pub mod sessions;
pub mod settings;
pub mod store;

use anyhow::Context;

pub use extractor::CurrentPlayer;
pub use rate_limit::{Bucket, RateLimiter};
pub use routes::router;
pub use settings::AuthArgs;

use crate::db::Db;

/// Everything the auth routes and the extractor need, built once at start-up.
pub struct Auth {
    pub tokens: jwt::TokenKeys,
    pub refresh_ttl_ms: i64,
    pub limiter: RateLimiter,
}

impl Auth {
    /// Builds the token keys (from `--jwt-secret` or the key stored in the database) and the
    /// rate limiter.
    pub async fn build(args: &AuthArgs, db: &Db, now_ms: i64) -> anyhow::Result<Auth> {
        args.check()?;
        let secret = match &args.jwt_secret {
            Some(secret) => secret.clone(),
            None => {
                let secret = stored_secret(db, now_ms)
                    .await
                    .context("loading the JWT signing key from the database")?;
                tracing::info!(
                    "signing access tokens with the key stored in the database (set --jwt-secret to provide one)"
                );
                secret
            }
        };
        let per_hour = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Ok(Auth {
            tokens: jwt::TokenKeys::new(
                secret.as_bytes(),
                &args.jwt_issuer,
                &args.jwt_audience,
                i64::try_from(args.access_token_ttl_secs).unwrap_or(900),
            ),
            refresh_ttl_ms: i64::try_from(args.refresh_token_ttl_secs)
                .unwrap_or(86_400)
                .saturating_mul(1000),
            limiter: RateLimiter::new(rate_limit::Limits {
                requests: per_hour(args.rate_limit_requests_per_hour),
                summons: per_hour(args.rate_limit_summons_per_hour),
                battles: per_hour(args.rate_limit_battles_per_hour),
                window_ms: 3_600_000,
            }),
        })
    }
}

/// The signing key kept in `server_secrets`, created by whichever replica starts first.
async fn stored_secret(db: &Db, now_ms: i64) -> Result<String, sqlx::Error> {
    sqlx::query(
        "INSERT INTO server_secrets (name, value, created_at_ms) VALUES ('jwt_hs256', $1, $2) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(secrets::new_secret())
    .bind(now_ms)
    .execute(&db.writer)
    .await?;
    sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = 'jwt_hs256'")
        .fetch_one(&db.pool)
        .await
}
