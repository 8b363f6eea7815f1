//! Retrying an upstream call: capped exponential backoff with jitter, server hints honoured
//! (but capped), all inside one overall deadline.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::EngineError;

/// How often and how patiently an LLM engine retries a transient upstream failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Retries after the first attempt.
    pub(crate) max_retries: u32,
    /// Base delay before the first retry; doubles on each further retry.
    pub(crate) initial_backoff: Duration,
    /// Longest wait between two attempts, server hints included.
    pub(crate) max_backoff: Duration,
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0-based). A server hint (`retryDelay`,
    /// `Retry-After`) is taken as given but capped; otherwise "equal jitter": a random
    /// delay between half and all of the capped exponential backoff.
    pub(crate) fn delay(&self, retry: u32, hint: Option<Duration>) -> Duration {
        if let Some(hint) = hint {
            return hint.min(self.max_backoff);
        }
        let factor = 2u32.saturating_pow(retry.min(30));
        let ceiling = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        let half = ceiling_ms / 2;
        let jitter = if half == 0 {
            0
        } else {
            rand::rng().random_range(0..=half)
        };
        Duration::from_millis(ceiling_ms - half + jitter)
    }
}

/// How one attempt failed: worth another try (with the server's hint, if any) or not.
#[derive(Debug)]
pub(crate) enum Failure {
    Retry {
        error: EngineError,
        hint: Option<Duration>,
    },
    Fatal(EngineError),
}

impl Failure {
    /// The error, whether or not it was worth retrying.
    pub(crate) fn into_error(self) -> EngineError {
        match self {
            Failure::Retry { error, .. } | Failure::Fatal(error) => error,
        }
    }
}

/// Runs `attempt` until it succeeds, fails fatally, runs out of retries or `timeout` (which
/// covers every attempt and every wait) passes. A wait that would end past the deadline is
/// not started: the last upstream error is returned instead.
pub(crate) async fn with_retries<T, F, Fut>(
    policy: RetryPolicy,
    timeout: Duration,
    mut attempt: F,
) -> Result<T, EngineError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let deadline = Instant::now() + timeout;
    let mut retries = 0;
    loop {
        let outcome = tokio::time::timeout_at(deadline, attempt()).await;
        let (error, hint) = match outcome {
            Err(_elapsed) => return Err(EngineError::Timeout(millis(timeout))),
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(Failure::Fatal(error))) => return Err(error),
            Ok(Err(Failure::Retry { error, hint })) => (error, hint),
        };
        if retries >= policy.max_retries {
            return Err(gave_up(error, retries + 1));
        }
        let wait = policy.delay(retries, hint);
        if Instant::now() + wait >= deadline {
            return Err(gave_up(error, retries + 1));
        }
        tokio::time::sleep(wait).await;
        retries += 1;
    }
}

fn gave_up(error: EngineError, attempts: u32) -> EngineError {
    match error {
        EngineError::Upstream(message) if attempts > 1 => {
            EngineError::Upstream(format!("{message} (gave up after {attempts} attempts)"))
        }
        other => other,
    }
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    const POLICY: RetryPolicy = RetryPolicy {
        max_retries: 3,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(1000),
    };

    /// Real time, so tiny waits.
    const FAST: RetryPolicy = RetryPolicy {
        max_retries: 3,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(4),
    };

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        for _ in 0..50 {
            let first = POLICY.delay(0, None);
            assert!((50..=100).contains(&first.as_millis()), "{first:?}");
            let third = POLICY.delay(2, None);
            assert!((200..=400).contains(&third.as_millis()), "{third:?}");
            let late = POLICY.delay(20, None);
            assert!((500..=1000).contains(&late.as_millis()), "{late:?}");
        }
    }

    #[test]
    fn server_hint_is_honoured_but_capped() {
        let hint = Some(Duration::from_millis(700));
        assert_eq!(POLICY.delay(0, hint), Duration::from_millis(700));
        let long = Some(Duration::from_secs(3600));
        assert_eq!(POLICY.delay(0, long), POLICY.max_backoff);
    }

    #[tokio::test]
    async fn retries_transient_failures_then_gives_up() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retries(FAST, Duration::from_secs(60), || {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                Err(Failure::Retry {
                    error: EngineError::Upstream("503".into()),
                    hint: None,
                })
            }
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        let message = result.unwrap_err().to_string();
        assert!(message.contains("gave up after 4 attempts"), "{message}");
    }

    #[tokio::test]
    async fn fatal_failures_are_not_retried() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retries(FAST, Duration::from_secs(60), || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(Failure::Fatal(EngineError::Upstream("400".into()))) }
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(matches!(result, Err(EngineError::Upstream(_))));
    }

    #[tokio::test]
    async fn the_deadline_covers_all_attempts() {
        let result: Result<(), _> = with_retries(FAST, Duration::from_millis(300), || async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok(())
        })
        .await;
        assert!(matches!(result, Err(EngineError::Timeout(300))));
    }
}
