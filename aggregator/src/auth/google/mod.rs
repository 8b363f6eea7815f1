//! Google sign-in: an ID token (a JWT Google signed with RS256) checked against Google's
//! published keys ([`jwks`]), issuer, audience (our OAuth client ids) and times.

pub mod jwks;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Args;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use serde::Deserialize;

pub use jwks::Jwks;

/// Issuers Google documents for ID tokens.
const ISSUERS: [&str; 2] = ["accounts.google.com", "https://accounts.google.com"];
/// Clock skew tolerated on `exp` and `iat`, in seconds.
const LEEWAY_SECS: i64 = 60;
/// Longest ID token accepted.
pub const MAX_TOKEN_BYTES: usize = 8192;

#[derive(Debug, Clone, Args)]
pub struct GoogleArgs {
    /// OAuth client id(s) of the game's frontends (repeatable or comma-separated): an ID token
    /// must be issued for one of them. Google sign-in is off without one.
    #[arg(
        long = "google-client-id",
        env = "HERO_GOOGLE_CLIENT_IDS",
        value_delimiter = ','
    )]
    pub google_client_ids: Vec<String>,
    /// Where Google publishes its signing keys (JWKS).
    #[arg(
        long,
        env = "HERO_GOOGLE_JWKS_URL",
        default_value = "https://www.googleapis.com/oauth2/v3/certs"
    )]
    pub google_jwks_url: url::Url,
}

/// A Google account, as a verified ID token names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleAccount {
    /// Google's stable id of the account.
    pub sub: String,
    /// Only when Google says it is verified.
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the ID token is malformed")]
    Malformed,
    #[error("the ID token must be signed with RS256")]
    Algorithm,
    #[error("{0}")]
    Key(#[from] jwks::JwksError),
    #[error("the ID token's signature is not valid")]
    Signature,
    #[error("the ID token was not issued by Google")]
    Issuer,
    #[error("the ID token was issued for another application")]
    Audience,
    #[error("the ID token has expired")]
    Expired,
    #[error("the ID token was issued in the future")]
    IssuedInFuture,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    exp: i64,
    iat: i64,
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
}

pub struct Google {
    pub client_ids: Vec<String>,
    pub jwks: Jwks,
}

impl Google {
    /// `None` when no client id is configured (Google sign-in off).
    pub fn new(args: &GoogleArgs) -> Option<Google> {
        if args.google_client_ids.is_empty() {
            return None;
        }
        Some(Google {
            client_ids: args.google_client_ids.clone(),
            jwks: Jwks::new(args.google_jwks_url.to_string()),
        })
    }

    /// The account an ID token proves, at `now_ms`.
    pub async fn verify(&self, token: &str, now_ms: i64) -> Result<GoogleAccount, IdTokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(IdTokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(IdTokenError::Malformed);
        };
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| IdTokenError::Malformed)
        };
        let header: Header =
            serde_json::from_slice(&decode(header)?).map_err(|_| IdTokenError::Malformed)?;
        // The algorithm is pinned: HS256 "signed" with the public key, `none` and the rest are
        // refused before any key is looked at.
        if header.alg != "RS256" {
            return Err(IdTokenError::Algorithm);
        }
        let kid = header.kid.filter(|k| !k.is_empty() && k.len() <= 128);
        let kid = kid.ok_or(IdTokenError::Malformed)?;
        let key = self.jwks.key(&kid, now_ms).await?;
        let signing_input = &token[..token.len() - signature.len() - 1];
        RsaPublicKeyComponents {
            n: &key.n,
            e: &key.e,
        }
        .verify(
            &RSA_PKCS1_2048_8192_SHA256,
            signing_input.as_bytes(),
            &decode(signature)?,
        )
        .map_err(|_| IdTokenError::Signature)?;
        let claims: Claims =
            serde_json::from_slice(&decode(payload)?).map_err(|_| IdTokenError::Malformed)?;
        self.check(claims, now_ms.div_euclid(1000))
    }

    fn check(&self, claims: Claims, now_secs: i64) -> Result<GoogleAccount, IdTokenError> {
        if !ISSUERS.contains(&claims.iss.as_str()) {
            return Err(IdTokenError::Issuer);
        }
        if !self.client_ids.contains(&claims.aud) {
            return Err(IdTokenError::Audience);
        }
        if claims.exp + LEEWAY_SECS <= now_secs {
            return Err(IdTokenError::Expired);
        }
        if claims.iat > now_secs + LEEWAY_SECS {
            return Err(IdTokenError::IssuedInFuture);
        }
        if claims.sub.is_empty() || claims.sub.len() > 255 {
            return Err(IdTokenError::Malformed);
        }
        let verified = matches!(claims.email_verified, Some(serde_json::Value::Bool(true)))
            || matches!(&claims.email_verified, Some(serde_json::Value::String(s)) if s == "true");
        Ok(GoogleAccount {
            sub: claims.sub,
            email: claims
                .email
                .filter(|e| verified && e.len() <= 320 && !e.chars().any(char::is_control)),
        })
    }
}
