//! Access tokens: compact JWTs signed with HMAC-SHA256 (ring), algorithm pinned, each naming
//! its signing key (`kid`) so keys rotate: tokens are signed with the current key and verified
//! with the current or the previous one.
//!
//! The verifier never reads `alg` to choose an algorithm: the header must be exactly the one we
//! issue, so `none`, RS256-with-our-secret-as-public-key and other confusion tricks are refused
//! before the signature is even looked at. The `kind` claim is always `player`: an access token
//! is never taken for an admin or a node credential, nor the other way round.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde::{Deserialize, Serialize};

/// Clock skew tolerated for `iat` (seconds).
const IAT_LEEWAY_SECS: i64 = 60;
/// The only `kind` of token this module issues.
pub const PLAYER_KIND: &str = "player";

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// Player id.
    pub sub: String,
    /// Session (refresh-token family) id; logout revokes it.
    pub sid: String,
    /// Always `player`.
    pub kind: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Header {
    alg: String,
    typ: String,
    kid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("access token is malformed")]
    Malformed,
    #[error("access token uses an unsupported algorithm")]
    Algorithm,
    #[error("access token is signed with a key this server does not have")]
    UnknownKey,
    #[error("access token signature is not valid")]
    Signature,
    #[error("access token has expired")]
    Expired,
    #[error("access token was issued for another service")]
    Audience,
    #[error("this is not a player access token")]
    Kind,
}

/// The id of a signing key: the first 8 bytes of its secret's SHA-256, in hex.
pub fn key_id(secret: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, secret);
    hex::encode(&digest.as_ref()[..8])
}

/// Issues access tokens with the current key; verifies with the current or the previous one.
pub struct TokenKeys {
    /// `(kid, key)`, the current key first.
    keys: Vec<(String, hmac::Key)>,
    issuer: String,
    audience: String,
    pub ttl_secs: i64,
}

impl TokenKeys {
    /// Keys from `current` and an optional `previous` secret.
    pub fn new(
        current: &[u8],
        previous: Option<&[u8]>,
        issuer: &str,
        audience: &str,
        ttl_secs: i64,
    ) -> Self {
        let keys = std::iter::once(current)
            .chain(previous)
            .map(|secret| (key_id(secret), hmac::Key::new(hmac::HMAC_SHA256, secret)))
            .collect();
        Self {
            keys,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl_secs,
        }
    }

    /// The id of the key new tokens are signed with.
    pub fn current_kid(&self) -> &str {
        &self.keys[0].0
    }

    /// A signed token for `player` in `session`, valid from `now_secs` for `ttl_secs`.
    pub fn issue(&self, player: &str, session: &str, now_secs: i64) -> String {
        let (kid, key) = &self.keys[0];
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: player.to_owned(),
            sid: session.to_owned(),
            kind: PLAYER_KIND.to_owned(),
            iat: now_secs,
            exp: now_secs + self.ttl_secs,
        };
        let header = Header {
            alg: "HS256".into(),
            typ: "JWT".into(),
            kid: kid.clone(),
        };
        // Serializing structs of strings and integers cannot fail.
        let header = serde_json::to_vec(&header).unwrap_or_default();
        let payload = serde_json::to_vec(&claims).unwrap_or_default();
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let tag = hmac::sign(key, signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The claims of a token we issued that has not expired at `now_secs`.
    pub fn verify(&self, token: &str, now_secs: i64) -> Result<Claims, TokenError> {
        if token.len() > 4096 {
            return Err(TokenError::Malformed);
        }
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
        let header: Header =
            serde_json::from_slice(&header_json).map_err(|_| TokenError::Algorithm)?;
        if header.alg != "HS256" || header.typ != "JWT" {
            return Err(TokenError::Algorithm);
        }
        let (_, key) = self
            .keys
            .iter()
            .find(|(kid, _)| *kid == header.kid)
            .ok_or(TokenError::UnknownKey)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        hmac::verify(key, signing_input.as_bytes(), &signature)
            .map_err(|_| TokenError::Signature)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        if claims.kind != PLAYER_KIND {
            return Err(TokenError::Kind);
        }
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

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const OTHER: &[u8] = b"another-secret-another-secret-xx";

    fn keys() -> TokenKeys {
        TokenKeys::new(SECRET, None, "iss", "aud", 900)
    }

    fn forge(header: &str, claims: &serde_json::Value, key: &[u8]) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
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
    fn keys_rotate_without_logging_anyone_out() {
        let old = keys().issue("p1", "s1", 1_000);
        let rotated = TokenKeys::new(OTHER, Some(SECRET), "iss", "aud", 900);
        assert!(
            rotated.verify(&old, 1_000).is_ok(),
            "the previous key still verifies"
        );
        let new = rotated.issue("p1", "s1", 1_000);
        assert_ne!(rotated.current_kid(), keys().current_kid());
        assert_eq!(keys().verify(&new, 1_000), Err(TokenError::UnknownKey));
        let twice = TokenKeys::new(
            b"third-secret-third-secret-third!",
            Some(OTHER),
            "iss",
            "aud",
            900,
        );
        assert_eq!(
            twice.verify(&old, 1_000),
            Err(TokenError::UnknownKey),
            "two rotations drop it"
        );
    }

    #[test]
    fn another_key_or_audience_is_refused() {
        let t = keys().issue("p1", "s1", 1_000);
        let aud = TokenKeys::new(SECRET, None, "iss", "other", 900);
        assert_eq!(aud.verify(&t, 1_000), Err(TokenError::Audience));
        let kid = key_id(SECRET);
        let header = format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{kid}"}}"#);
        let claims = serde_json::json!({
            "iss": "iss", "aud": "aud", "sub": "p2", "sid": "s1", "kind": "player", "iat": 1000, "exp": 99999
        });
        assert_eq!(
            keys().verify(&forge(&header, &claims, OTHER), 1_000),
            Err(TokenError::Signature)
        );
        let admin = serde_json::json!({
            "iss": "iss", "aud": "aud", "sub": "p2", "sid": "s1", "kind": "admin", "iat": 1000, "exp": 99999
        });
        assert_eq!(
            keys().verify(&forge(&header, &admin, SECRET), 1_000),
            Err(TokenError::Kind)
        );
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let k = keys();
        let t = k.issue("p1", "s1", 1_000);
        let parts: Vec<&str> = t.split('.').collect();
        let kid = key_id(SECRET);
        for header in [
            format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#),
            format!(r#"{{"alg":"HS512","typ":"JWT","kid":"{kid}"}}"#),
            format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{kid}"}}"#),
            r#"{"alg":"HS256","typ":"JWT"}"#.to_owned(),
            format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{kid}","jku":"https://evil"}}"#),
        ] {
            let forged = format!("{}.{}.", URL_SAFE_NO_PAD.encode(header), parts[1]);
            assert_eq!(k.verify(&forged, 1_000), Err(TokenError::Algorithm));
        }
        for garbage in ["", "a.b", "a.b.c.d", "!!.??.##"] {
            assert_eq!(k.verify(garbage, 1_000), Err(TokenError::Malformed));
        }
    }
}
