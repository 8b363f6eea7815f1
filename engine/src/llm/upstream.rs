//! The HTTP side of an LLM call shared by every provider: the client, bounded body reads,
//! `Retry-After` hints, and which statuses and transport errors are worth a retry.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Response, StatusCode};

use super::retry::Failure;
use crate::EngineError;

/// Largest response body read from an upstream; anything longer is refused.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// How much of an upstream's error message ends up in our error.
const MAX_MESSAGE_CHARS: usize = 300;

/// One pooled rustls client per engine.
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, EngineError> {
    reqwest::Client::builder()
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("hero-engine/", env!("CARGO_PKG_VERSION")))
        // Requests carry the provider's key (`x-goog-api-key`, `Authorization`): a redirect
        // from a gateway must not send it to whatever host it names.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| EngineError::Config(format!("cannot build the HTTP client: {e}")))
}

/// Whether a failed status is transient: rate limits, timeouts and overloaded servers.
pub(crate) fn is_retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// The server's own wait hint: `retry-after-ms` (OpenAI) or `Retry-After` in seconds.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok()) {
        return finite_secs(ms / 1000.0);
    }
    text("retry-after")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .and_then(finite_secs)
}

/// A protobuf `Duration` as JSON (`"2s"`, `"0.250s"`), as Gemini's `RetryInfo` sends it.
pub(crate) fn parse_proto_duration(text: &str) -> Option<Duration> {
    text.trim()
        .strip_suffix('s')?
        .parse::<f64>()
        .ok()
        .and_then(finite_secs)
}

fn finite_secs(secs: f64) -> Option<Duration> {
    (secs.is_finite() && (0.0..1e9).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

/// Classifies a transport error: connection trouble is transient, the rest is not.
pub(crate) fn transport(provider: &str, error: &reqwest::Error) -> Failure {
    // Keys travel in headers, never in the URL, so the message is safe to keep.
    let engine_error = EngineError::Upstream(format!("{provider} unreachable: {error}"));
    if error.is_connect() || error.is_request() || error.is_body() {
        Failure::Retry {
            error: engine_error,
            hint: None,
        }
    } else {
        Failure::Fatal(engine_error)
    }
}

/// Reads a body of at most [`MAX_BODY_BYTES`].
pub(crate) async fn read_body(provider: &str, mut response: Response) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(Failure::Fatal(EngineError::Upstream(format!(
                        "{provider} answered with more than {MAX_BODY_BYTES} bytes"
                    ))));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(error) => return Err(transport(provider, &error)),
        }
    }
}

/// Turns a failed status and the server's message into a retryable or fatal failure.
pub(crate) fn status_failure(
    provider: &str,
    status: StatusCode,
    message: &str,
    hint: Option<Duration>,
) -> Failure {
    let message: String = message.trim().chars().take(MAX_MESSAGE_CHARS).collect();
    let error = EngineError::Upstream(format!("{provider} answered {status}: {message}"));
    if is_retryable(status) {
        Failure::Retry { error, hint }
    } else {
        Failure::Fatal(error)
    }
}

/// A short, printable piece of a body that is not the JSON we expected.
pub(crate) fn body_excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .take(MAX_MESSAGE_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_reads_seconds_and_milliseconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(250)));
    }

    #[test]
    fn proto_durations_parse() {
        assert_eq!(parse_proto_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_proto_duration("0.250s"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_proto_duration("soon"), None);
        assert_eq!(parse_proto_duration("-1s"), None);
    }

    #[test]
    fn only_transient_statuses_are_retried() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        for code in [400, 401, 403, 404, 422, 501] {
            assert!(!is_retryable(StatusCode::from_u16(code).unwrap()), "{code}");
        }
    }
}
