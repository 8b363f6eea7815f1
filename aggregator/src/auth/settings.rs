//! Flags for player logins: the JWT signing key, token lifetimes and per-player rate limits.

use clap::Args;

#[derive(Clone, Args)]
pub struct AuthArgs {
    /// Secret that signs player access tokens (HS256, at least 32 characters). Without it the
    /// aggregator generates one on first start and keeps it in the database, so tokens survive
    /// restarts and every replica sharing the database accepts them.
    #[arg(long, env = "HERO_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
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
            .finish_non_exhaustive()
    }
}

impl AuthArgs {
    /// Refuses settings that cannot work, with the reason.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.jwt_secret.as_ref().is_some_and(|s| s.len() < 32) {
            anyhow::bail!("--jwt-secret must be at least 32 characters");
        }
        if self.jwt_issuer.trim().is_empty() || self.jwt_audience.trim().is_empty() {
            anyhow::bail!("--jwt-issuer and --jwt-audience must not be empty");
        }
        Ok(())
    }
}
