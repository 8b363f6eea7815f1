//! Access tokens: compact JWTs signed with HMAC-SHA256 (ring), algorithm pinned.
//!
//! The verifier never reads `alg` to choose an algorithm: the header must be exactly the one we
//! issue, so `none`, RS256-with-our-secret-as-public-key and other confusion tricks are refused
//! before the signature is even looked at.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde::{Deserialize, Serialize};

/// The only header we issue and accept: `{"alg":"HS256","typ":"JWT"}`.
const HEADER_JSON: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// Clock skew tolerated for `iat` (seconds).
const IAT_LEEWAY_SECS: i64 = 60;

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// Player id.
    pub sub: String,
    /// Session (refresh-token family) id; logout revokes it.
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("access token is malformed")]
    Malformed,
    #[error("access token uses an unsupported algorithm")]
    Algorithm,
    #[error("access token signature is not valid")]
    Signature,
    #[error("access token has expired")]
    Expired,
    #[error("access token was issued for another service")]
    Audience,
}

/// Issues and verifies access tokens with one HMAC key.
pub struct TokenKeys {
    key: hmac::Key,
    issuer: String,
    audience: String,
    pub ttl_secs: i64,
}

impl TokenKeys {
    pub fn new(secret: &[u8], issuer: &str, audience: &str, ttl_secs: i64) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl_secs,
        }
    }

    /// A signed token for `player` in `session`, valid from `now_secs` for `ttl_secs`.
    pub fn issue(&self, player: &str, session: &str, now_secs: i64) -> String {
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: player.to_owned(),
            sid: session.to_owned(),
            iat: now_secs,
            exp: now_secs + self.ttl_secs,
        };
        // Serializing a struct of strings and integers cannot fail.
        let payload = serde_json::to_vec(&claims).unwrap_or_default();
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(HEADER_JSON),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let tag = hmac::sign(&self.key, signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The claims of a token we issued that has not expired at `now_secs`.
    pub fn verify(&self, token: &str, now_secs: i64) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let signing_input = &token[..header.len() + 1 + payload.len()];
        let header_json = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| TokenError::Malformed)?;
        let header_value: serde_json::Value =
            serde_json::from_slice(&header_json).map_err(|_| TokenError::Malformed)?;
        let expected: serde_json::Value =
            serde_json::from_str(HEADER_JSON).map_err(|_| TokenError::Malformed)?;
        if header_value != expected {
            return Err(TokenError::Algorithm);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        hmac::verify(&self.key, signing_input.as_bytes(), &signature)
            .map_err(|_| TokenError::Signature)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        if claims.iss != self.issuer || claims.aud != self.audience {
            return Err(TokenError::Audience);
        }
        if now_secs >= claims.exp || claims.iat > now_secs + IAT_LEEWAY_SECS {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(b"0123456789abcdef0123456789abcdef", "iss", "aud", 900)
    }

    #[test]
    fn issued_tokens_verify_until_they_expire() {
        let k = keys();
        let t = k.issue("p1", "s1", 1_000);
        let c = k.verify(&t, 1_000).unwrap();
        assert_eq!((c.sub.as_str(), c.sid.as_str(), c.exp), ("p1", "s1", 1_900));
        assert!(k.verify(&t, 1_899).is_ok());
        assert_eq!(k.verify(&t, 1_900), Err(TokenError::Expired));
    }

    #[test]
    fn another_key_or_audience_is_refused() {
        let t = keys().issue("p1", "s1", 1_000);
        let other = TokenKeys::new(b"another-secret-another-secret-xx", "iss", "aud", 900);
        assert_eq!(other.verify(&t, 1_000), Err(TokenError::Signature));
        let aud = TokenKeys::new(b"0123456789abcdef0123456789abcdef", "iss", "other", 900);
        assert_eq!(aud.verify(&t, 1_000), Err(TokenError::Audience));
    }

    #[test]
    fn tampered_payload_is_refused() {
        let k = keys();
        let t = k.issue("p1", "s1", 1_000);
        let parts: Vec<&str> = t.split('.').collect();
        let forged_claims = serde_json::json!({
            "iss": "iss", "aud": "aud", "sub": "p2", "sid": "s1", "iat": 1000, "exp": 99999
        });
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(forged_claims.to_string()),
            parts[2]
        );
        assert_eq!(k.verify(&forged, 1_000), Err(TokenError::Signature));
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let k = keys();
        let t = k.issue("p1", "s1", 1_000);
        let parts: Vec<&str> = t.split('.').collect();
        for header in [
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"HS512","typ":"JWT"}"#,
            r#"{"alg":"RS256","typ":"JWT"}"#,
        ] {
            let forged = format!("{}.{}.", URL_SAFE_NO_PAD.encode(header), parts[1]);
            assert_eq!(k.verify(&forged, 1_000), Err(TokenError::Algorithm));
        }
        for garbage in ["", "a.b", "a.b.c.d", "!!.??.##"] {
            assert_eq!(k.verify(garbage, 1_000), Err(TokenError::Malformed));
        }
    }
}
