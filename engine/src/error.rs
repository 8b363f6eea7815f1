//! Why an engine could not produce a battle result.

/// Every way generation fails. `InvalidRequest` is the caller's fault (a node answers 422);
/// everything else is the engine's or its upstream's (a node answers 502/504).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request cannot be served by this engine (for example Sim without fighters).
    #[error("invalid battle request: {0}")]
    InvalidRequest(String),
    /// The upstream model answered, but not with a usable battle.
    #[error("model output rejected: {0}")]
    InvalidOutput(String),
    /// The upstream refused or failed (after retries where they make sense).
    #[error("upstream error: {0}")]
    Upstream(String),
    /// The upstream did not answer in time.
    #[error("upstream timed out after {0} ms")]
    Timeout(u64),
    /// The upstream's safety system refused the prompt or withheld the answer.
    #[error("model refused: {0}")]
    Blocked(String),
    /// The engine's settings are unusable (empty key, malformed base url, ...).
    #[error("engine misconfigured: {0}")]
    Config(String),
}

impl EngineError {
    /// Whether the failure is the caller's fault.
    pub fn is_client_error(&self) -> bool {
        matches!(self, EngineError::InvalidRequest(_))
    }
}
