//! The bearer key callers present on `/generate_battle`, compared in constant time.

use std::fmt;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use rand::Rng;
use rand::distr::Alphanumeric;
use ring::digest::{SHA256, digest};

use crate::error::ApiError;
use crate::telemetry;

/// The node's API key, kept as a SHA-256 digest so comparison time does not depend on where
/// a guess first differs.
#[derive(Clone)]
pub struct ApiKey {
    digest: Arc<[u8]>,
}

impl ApiKey {
    pub fn new(key: &str) -> Self {
        Self {
            digest: Arc::from(digest(&SHA256, key.as_bytes()).as_ref()),
        }
    }

    /// A fresh random key for a node started without one.
    pub fn generate() -> String {
        random_chars(40)
    }

    /// Whether `presented` is the key.
    pub fn matches(&self, presented: &str) -> bool {
        let other = digest(&SHA256, presented.as_bytes());
        let other = other.as_ref();
        other.len() == self.digest.len()
            && self
                .digest
                .iter()
                .zip(other)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// `n` random ASCII letters and digits.
pub fn random_chars(n: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// Proof that the request carried `Authorization: Bearer <api key>`.
pub struct Authorized;

impl<S> FromRequestParts<S> for Authorized
where
    ApiKey: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let key = ApiKey::from_ref(state);
        let presented = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token);
        match presented {
            Some(token) if key.matches(token) => Ok(Authorized),
            _ => {
                telemetry::battle_counted("unauthorized");
                Err(ApiError::Unauthorized)
            }
        }
    }
}

/// The token of a `Bearer <token>` header value (scheme case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_key_matches() {
        let key = ApiKey::new("s3cret");
        assert!(key.matches("s3cret"));
        assert!(!key.matches("s3cres"));
        assert!(!key.matches(""));
        assert!(!format!("{key:?}").contains("s3cret"));
    }

    #[test]
    fn bearer_scheme_is_parsed() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(random_chars(6).len(), 6);
    }
}
