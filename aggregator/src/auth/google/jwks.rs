//! Google's signing keys (a JWKS document), fetched from the configured URL and cached for as
//! long as its `Cache-Control: max-age` says. A token naming a key we do not know triggers one
//! refetch (Google rotates keys), but at most one per [`REFETCH_EVERY_MS`], so a flood of
//! made-up key ids cannot turn into a flood of requests to Google. One fetch runs at a time
//! (the others wait for its result rather than fetching too); when Google cannot be reached,
//! the keys already known keep working for up to [`STALE_FOR_MS`] past their cache time.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// Least time between two fetches (caused by unknown key ids, or after a failed fetch).
pub const REFETCH_EVERY_MS: i64 = 30_000;
/// How long past their cache time known keys are still used while Google cannot be reached.
pub const STALE_FOR_MS: i64 = 86_400_000;
/// Cache lifetime bounds, whatever the server says.
const MIN_CACHE_MS: i64 = 60_000;
const MAX_CACHE_MS: i64 = 86_400_000;
/// Cache lifetime without a `max-age`.
const DEFAULT_CACHE_MS: i64 = 3_600_000;
/// Largest JWKS document read.
const MAX_JWKS_BYTES: usize = 64 * 1024;

/// An RSA public key: big-endian modulus and exponent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaKey {
    pub n: Vec<u8>,
    pub e: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("Google's signing keys could not be fetched: {0}")]
    Fetch(String),
    #[error("the token is signed with a key Google does not publish")]
    UnknownKey,
}

#[derive(Default)]
struct Cached {
    keys: HashMap<String, RsaKey>,
    /// The last fetch tried, successful or not.
    attempted_at_ms: Option<i64>,
    /// Why the last fetch failed, while it is the latest news.
    failure: Option<String>,
    expires_at_ms: i64,
}

pub struct Jwks {
    url: String,
    client: reqwest::Client,
    cache: tokio::sync::Mutex<Cached>,
}

#[derive(Deserialize)]
struct Document {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    n: Option<String>,
    e: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
}

/// The `max-age` of a `Cache-Control` header, in milliseconds, bounded.
pub fn cache_ms(cache_control: Option<&str>) -> i64 {
    let max_age = cache_control.and_then(|v| {
        v.split(',')
            .filter_map(|d| d.trim().strip_prefix("max-age="))
            .find_map(|s| s.trim().parse::<i64>().ok())
    });
    max_age
        .map_or(DEFAULT_CACHE_MS, |secs| secs.saturating_mul(1000))
        .clamp(MIN_CACHE_MS, MAX_CACHE_MS)
}

/// The RSA signing keys of a JWKS document, by key id.
pub fn parse(body: &[u8]) -> Result<HashMap<String, RsaKey>, JwksError> {
    let doc: Document = serde_json::from_slice(body)
        .map_err(|e| JwksError::Fetch(format!("not a JWKS document: {e}")))?;
    let mut keys = HashMap::new();
    for jwk in doc.keys {
        if jwk.kty != "RSA" || jwk.usage.as_deref().is_some_and(|u| u != "sig") {
            continue;
        }
        let (Some(kid), Some(n), Some(e)) = (jwk.kid, jwk.n, jwk.e) else {
            continue;
        };
        let (Ok(n), Ok(e)) = (URL_SAFE_NO_PAD.decode(n), URL_SAFE_NO_PAD.decode(e)) else {
            continue;
        };
        keys.insert(kid, RsaKey { n, e });
    }
    Ok(keys)
}

impl Jwks {
    pub fn new(url: String) -> Jwks {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Jwks {
            url,
            client,
            cache: tokio::sync::Mutex::new(Cached::default()),
        }
    }

    /// The key `kid`, from the cache or a fetch.
    pub async fn key(&self, kid: &str, now_ms: i64) -> Result<RsaKey, JwksError> {
        let mut cache = self.cache.lock().await;
        let fresh = now_ms < cache.expires_at_ms;
        if fresh && let Some(key) = cache.keys.get(kid) {
            return Ok(key.clone());
        }
        let tried_lately = cache
            .attempted_at_ms
            .is_some_and(|at| now_ms - at < REFETCH_EVERY_MS);
        if !tried_lately {
            cache.attempted_at_ms = Some(now_ms);
            match self.fetch().await {
                Ok((keys, ttl)) => {
                    tracing::info!(
                        keys = keys.len(),
                        cache_ms = ttl,
                        "fetched Google's signing keys"
                    );
                    cache.keys = keys;
                    cache.expires_at_ms = now_ms + ttl;
                    cache.failure = None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "fetching Google's signing keys failed");
                    cache.failure = Some(e.to_string());
                }
            }
        }
        let usable = now_ms < cache.expires_at_ms + STALE_FOR_MS;
        match (cache.keys.get(kid), &cache.failure) {
            (Some(key), _) if usable => Ok(key.clone()),
            (_, Some(failure)) => Err(JwksError::Fetch(failure.clone())),
            _ => Err(JwksError::UnknownKey),
        }
    }

    async fn fetch(&self) -> Result<(HashMap<String, RsaKey>, i64), JwksError> {
        let fail = |e: reqwest::Error| JwksError::Fetch(e.without_url().to_string());
        let mut resp = self.client.get(&self.url).send().await.map_err(fail)?;
        if !resp.status().is_success() {
            return Err(JwksError::Fetch(format!("HTTP {}", resp.status())));
        }
        let ttl = cache_ms(
            resp.headers()
                .get(reqwest::header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok()),
        );
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(fail)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_JWKS_BYTES {
                return Err(JwksError::Fetch("the JWKS document is too large".into()));
            }
        }
        Ok((parse(&body)?, ttl))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_lifetime_follows_max_age_within_bounds() {
        assert_eq!(
            cache_ms(Some("public, max-age=19845, must-revalidate")),
            19_845_000
        );
        assert_eq!(cache_ms(Some("no-cache")), DEFAULT_CACHE_MS);
        assert_eq!(cache_ms(None), DEFAULT_CACHE_MS);
        assert_eq!(cache_ms(Some("max-age=1")), MIN_CACHE_MS);
        assert_eq!(cache_ms(Some("max-age=99999999")), MAX_CACHE_MS);
    }

    #[test]
    fn only_rsa_signing_keys_are_kept() {
        let doc = br#"{"keys":[
            {"kty":"RSA","kid":"a","n":"AQAB","e":"AQAB","use":"sig","alg":"RS256"},
            {"kty":"RSA","kid":"b","n":"AQAB","e":"AQAB","use":"enc"},
            {"kty":"EC","kid":"c","crv":"P-256","x":"AA","y":"AA"},
            {"kty":"RSA","n":"AQAB","e":"AQAB"}
        ]}"#;
        let keys = parse(doc).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), vec!["a"]);
        assert!(parse(b"[]").is_err());
    }
}
