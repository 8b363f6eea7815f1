//! Entity tags: a strong `ETag` from a body's bytes, `If-None-Match` checked the way RFC 9110
//! asks, and 304 when the client holds the body already.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

/// A strong ETag: the first 16 bytes of the SHA-256 of `body`, in hex, quoted.
pub fn etag_of(body: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    format!("\"{}\"", hex::encode(&digest.as_ref()[..16]))
}

/// Whether `If-None-Match` names `etag` (or is `*`). The comparison is the weak one RFC 9110
/// asks for with `If-None-Match`: a `W/` prefix is ignored.
pub fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

/// `body` with its type, ETag and caching headers, or 304 when the client has it already.
pub fn respond(
    headers: &HeaderMap,
    body: impl Into<Body>,
    content_type: &'static str,
    etag: &str,
    cache_control: &'static str,
) -> Response {
    let fresh = not_modified(headers, etag);
    let mut response = if fresh {
        Response::new(Body::empty())
    } else {
        Response::new(body.into())
    };
    if fresh {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
    }
    let h = response.headers_mut();
    if !fresh {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    if let Ok(etag) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, etag);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// A JSON answer serialised once, with its ETag: cheap to keep and to serve again.
#[derive(Debug, Clone)]
pub struct Tagged {
    pub etag: String,
    pub body: axum::body::Bytes,
}

impl Tagged {
    pub fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<Self> {
        let body = serde_json::to_vec(value)?;
        Ok(Self {
            etag: etag_of(&body),
            body: body.into(),
        })
    }

    /// The body as `application/json`, or 304 when `If-None-Match` names it.
    pub fn respond(&self, headers: &HeaderMap, cache_control: &'static str) -> Response {
        respond(
            headers,
            self.body.clone(),
            "application/json",
            &self.etag,
            cache_control,
        )
    }

    /// Bytes held in memory, for cache weights.
    pub fn weight(&self) -> u32 {
        u32::try_from(self.body.len() + self.etag.len() + 64).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_strong_and_follow_the_content() {
        let tag = etag_of(b"hello");
        assert!(
            tag.starts_with('"') && tag.ends_with('"') && tag.len() == 34,
            "{tag}"
        );
        assert_eq!(tag, etag_of(b"hello"));
        assert_ne!(tag, etag_of(b"hello!"));
    }

    #[test]
    fn if_none_match_lists_and_wildcards_match() {
        let etag = etag_of(b"x");
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
            h
        };
        assert!(not_modified(&with(&etag), &etag));
        assert!(not_modified(&with(&format!("\"a\", W/{etag}")), &etag));
        assert!(not_modified(&with("*"), &etag));
        assert!(!not_modified(&with("\"a\""), &etag));
        assert!(!not_modified(&HeaderMap::new(), &etag));
        let answer = respond(&with(&etag), b"x".to_vec(), "text/plain", &etag, "no-cache");
        assert_eq!(answer.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(answer.headers()[header::ETAG], etag.as_str());
        let answer = respond(
            &HeaderMap::new(),
            b"x".to_vec(),
            "text/plain",
            &etag,
            "no-cache",
        );
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(answer.headers()[header::CONTENT_TYPE], "text/plain");
    }

    #[test]
    fn a_tagged_json_answer_is_served_again_and_revalidated() {
        let tagged = Tagged::json(&serde_json::json!({"a": 1})).unwrap();
        let answer = tagged.respond(&HeaderMap::new(), "no-cache");
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(answer.headers()[header::CONTENT_TYPE], "application/json");
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&tagged.etag).unwrap(),
        );
        assert_eq!(
            tagged.respond(&h, "no-cache").status(),
            StatusCode::NOT_MODIFIED
        );
    }
}
