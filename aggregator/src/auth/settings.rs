//! Flags for player logins: the JWT signing key, token lifetimes and per-player rate limits.

use clap::Args;

#[derive(Clone, Args)]
pub struct AuthArgs {
    /// Secret that signs player access tokens (HS256, at least 32 characters). Without it the
    /// aggregator generates one on first start and keeps it in the database, so tokens survive
    /// restarts and every replica sharing the database accepts them.
    #[arg(long, env = "HERO_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// The signing secret used before the current `--jwt-secret`: tokens it signed are still
    /// accepted until they expire, so rotating the secret logs no one out. (Keys kept in the
    /// database rotate with `hero-aggregator keys rotate`.)
    #[arg(
        long,
        env = "HERO_JWT_PREVIOUS_SECRET",
        hide_env_values = true,
        requires = "jwt_secret"
    )]
    pub jwt_previous_secret: Option<String>,
    /// `iss` claim of access tokens.
    #[arg(long, env = "HERO_JWT_ISSUER", default_value = "hero-aggregator")]
    pub jwt_issuer: String,
    /// `aud` claim of access tokens.
    #[arg(long, env = "HERO_JWT_AUDIENCE", default_value = "hero-game")]
    pub jwt_audience: String,
    /// Lifetime of an access token, in seconds.
    #[arg(long, env = "HERO_ACCESS_TOKEN_TTL_SECS", default_value_t = 900,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub access_token_ttl_secs: u64,
    /// Lifetime of a refresh token, in seconds (each refresh issues a new one).
    #[arg(long, env = "HERO_REFRESH_TOKEN_TTL_SECS", default_value_t = 30 * 86_400,
          value_parser = clap::value_parser!(u64).range(60..=365 * 86_400))]
    pub refresh_token_ttl_secs: u64,
    /// Requests one player may make per hour, all endpoints together (per replica).
    #[arg(long, env = "HERO_RATE_LIMIT_REQUESTS_PER_HOUR", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub rate_limit_requests_per_hour: u64,
    /// Characters one player may summon per hour (per replica).
    #[arg(long, env = "HERO_RATE_LIMIT_SUMMONS_PER_HOUR", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub rate_limit_summons_per_hour: u64,
    /// Battles one player may start per hour (per replica).
    #[arg(long, env = "HERO_RATE_LIMIT_BATTLES_PER_HOUR", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub rate_limit_battles_per_hour: u64,
    /// Redis for rate limits shared by every replica (e.g. redis://127.0.0.1:6379). Without it
    /// each replica counts on its own. When Redis fails, requests are counted locally until it
    /// answers again.
    #[arg(long, env = "HERO_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key this aggregator writes (several deployments may share one
    /// Redis).
    #[arg(long, env = "HERO_REDIS_PREFIX", default_value = "hero")]
    pub redis_prefix: String,
    #[command(flatten)]
    pub siwe: crate::auth::siwe::SiweArgs,
    #[command(flatten)]
    pub google: crate::auth::google::GoogleArgs,
}

impl std::fmt::Debug for AuthArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthArgs")
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("access_token_ttl_secs", &self.access_token_ttl_secs)
            .field("refresh_token_ttl_secs", &self.refresh_token_ttl_secs)
            .field(
                "redis_url",
                &self.redis_url.as_ref().map(|u| crate::db::redact(u)),
            )
            .field("siwe", &self.siwe)
            .field("google", &self.google)
            .finish_non_exhaustive()
    }
}

impl AuthArgs {
    /// Refuses settings that cannot work, with the reason.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.jwt_secret.as_ref().is_some_and(|s| s.len() < 32)
            || self
                .jwt_previous_secret
                .as_ref()
                .is_some_and(|s| s.len() < 32)
        {
            anyhow::bail!("--jwt-secret and --jwt-previous-secret must be at least 32 characters");
        }
        if self.jwt_previous_secret.is_some() && self.jwt_previous_secret == self.jwt_secret {
            anyhow::bail!("--jwt-previous-secret must differ from --jwt-secret");
        }
        if self.redis_prefix.is_empty() || self.redis_prefix.len() > 64 {
            anyhow::bail!("--redis-prefix must be 1 to 64 characters");
        }
        self.siwe.check()?;
        if self
            .google
            .google_client_ids
            .iter()
            .any(|c| c.trim().is_empty())
        {
            anyhow::bail!("--google-client-id must not be empty");
        }
        if self.jwt_issuer.trim().is_empty() || self.jwt_audience.trim().is_empty() {
            anyhow::bail!("--jwt-issuer and --jwt-audience must not be empty");
        }
        Ok(())
    }
}
