//! Membership in the aggregator's registry: register (with backoff), heartbeat, leave.

use std::fmt;
use std::time::Duration;

use hero_protocol::signing::{
    SIGNATURE_HEADER, TIMESTAMP_HEADER, VoteSigner, registration_message,
};
use hero_protocol::{ErrorBody, Heartbeat, HeartbeatReply, NodeRegistration, RegistrationReply};
use rand::Rng;
use reqwest::StatusCode;
use tokio_util::sync::CancellationToken;

use crate::capacity::Capacity;

/// First retry delay after the aggregator could not be reached.
const BACKOFF_START: Duration = Duration::from_millis(500);
/// Longest retry delay; also the delay after a refusal (4xx).
const BACKOFF_CAP: Duration = Duration::from_secs(15);
/// How long leaving the registry may take at shutdown.
const DEREGISTER_TIMEOUT: Duration = Duration::from_secs(3);

/// What the aggregator gave us at registration.
pub struct Session {
    pub node_id: String,
    node_token: String,
    heartbeat_interval: Duration,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("node_id", &self.node_id)
            .field("node_token", &"<redacted>")
            .field("heartbeat_interval", &self.heartbeat_interval)
            .finish()
    }
}

/// Why a registration attempt did not succeed.
enum RegisterError {
    /// Network error, 5xx or an unreadable answer: retry with backoff.
    Unavailable(String),
    /// The aggregator said no (4xx): retry at the cap, the operator may fix it meanwhile.
    Refused(StatusCode, String),
}

enum HeartbeatOutcome {
    Accepted(Option<Duration>),
    /// 404 or 401: the aggregator no longer knows us.
    Forgotten(StatusCode),
    Failed(String),
}

/// Talks to one aggregator on behalf of this node.
pub struct Lifecycle {
    pub client: reqwest::Client,
    /// Aggregator base URL without a trailing slash.
    pub aggregator: String,
    pub registration: NodeRegistration,
    pub enrollment_token: Option<String>,
    pub capacity: Capacity,
    /// The node's identity key: registrations are signed with it.
    pub signer: std::sync::Arc<VoteSigner>,
}

impl Lifecycle {
    /// Registers, then heartbeats, until `shutdown`; returns the session to leave with, if
    /// registered at that moment.
    pub async fn run(&self, shutdown: CancellationToken) -> Option<Session> {
        let mut current: Option<Session> = None;
        loop {
            let session = match current.take() {
                Some(session) => session,
                None => {
                    shutdown
                        .run_until_cancelled(self.register_until_accepted())
                        .await?
                }
            };
            if shutdown
                .run_until_cancelled(tokio::time::sleep(session.heartbeat_interval))
                .await
                .is_none()
            {
                return Some(session);
            }
            let Some(outcome) = shutdown.run_until_cancelled(self.heartbeat(&session)).await else {
                return Some(session);
            };
            current = match outcome {
                HeartbeatOutcome::Accepted(interval) => Some(Session {
                    heartbeat_interval: interval.unwrap_or(session.heartbeat_interval),
                    ..session
                }),
                HeartbeatOutcome::Forgotten(status) => {
                    tracing::warn!(%status, node_id = %session.node_id, "aggregator no longer knows this node; registering again");
                    None
                }
                HeartbeatOutcome::Failed(error) => {
                    tracing::warn!(%error, node_id = %session.node_id, "heartbeat failed; will retry");
                    Some(session)
                }
            };
        }
    }

    async fn register_until_accepted(&self) -> Session {
        let mut failures: u32 = 0;
        loop {
            let delay = match self.register().await {
                Ok(session) => return session,
                Err(RegisterError::Unavailable(error)) => {
                    let delay = backoff(failures);
                    failures = failures.saturating_add(1);
                    tracing::warn!(aggregator = %self.aggregator, %error, retry_in_ms = delay.as_millis() as u64, "aggregator unavailable; registration will be retried");
                    delay
                }
                Err(RegisterError::Refused(status, reason)) => {
                    let delay = jitter(BACKOFF_CAP);
                    tracing::error!(aggregator = %self.aggregator, %status, %reason, retry_in_ms = delay.as_millis() as u64, "aggregator refused registration; check the enrollment token and public URL");
                    delay
                }
            };
            tokio::time::sleep(delay).await;
        }
    }

    async fn register(&self) -> Result<Session, RegisterError> {
        let body = serde_json::to_vec(&self.registration)
            .map_err(|e| RegisterError::Unavailable(format!("cannot encode registration: {e}")))?;
        let timestamp_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let signature = self.signer.sign(&registration_message(timestamp_ms, &body));
        let mut request = self
            .client
            .post(format!("{}/api/nodes/register", self.aggregator))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp_ms.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(body);
        if let Some(token) = &self.enrollment_token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| RegisterError::Unavailable(chain(&e)))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(RegisterError::Unavailable(format!(
                "{status}: {}",
                reason(response).await
            )));
        }
        if !status.is_success() {
            return Err(RegisterError::Refused(status, reason(response).await));
        }
        let reply: RegistrationReply = response.json().await.map_err(|e| {
            RegisterError::Unavailable(format!("unreadable registration reply: {e}"))
        })?;
        tracing::info!(
            aggregator = %self.aggregator,
            node_id = %reply.node_id,
            heartbeat_interval_secs = reply.heartbeat_interval_secs,
            "registered with aggregator"
        );
        Ok(Session {
            node_id: reply.node_id,
            node_token: reply.node_token,
            heartbeat_interval: interval(reply.heartbeat_interval_secs),
        })
    }

    async fn heartbeat(&self, session: &Session) -> HeartbeatOutcome {
        let beat = Heartbeat {
            node_id: session.node_id.clone(),
            current_requests: self.capacity.in_flight(),
        };
        let sent = self
            .client
            .post(format!("{}/api/nodes/heartbeat", self.aggregator))
            .bearer_auth(&session.node_token)
            .json(&beat)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => return HeartbeatOutcome::Failed(chain(&e)),
        };
        let status = response.status();
        if status == StatusCode::NOT_FOUND || status == StatusCode::UNAUTHORIZED {
            return HeartbeatOutcome::Forgotten(status);
        }
        if !status.is_success() {
            return HeartbeatOutcome::Failed(format!("{status}: {}", reason(response).await));
        }
        let next = response
            .json::<HeartbeatReply>()
            .await
            .ok()
            .map(|reply| interval(reply.heartbeat_interval_secs));
        HeartbeatOutcome::Accepted(next)
    }

    /// Leaves the registry (best effort, bounded by a short timeout).
    pub async fn deregister(&self, session: &Session) {
        let sent = self
            .client
            .delete(format!("{}/api/nodes/{}", self.aggregator, session.node_id))
            .bearer_auth(&session.node_token)
            .timeout(DEREGISTER_TIMEOUT)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                tracing::info!(node_id = %session.node_id, "left the aggregator's registry");
            }
            Ok(response) => {
                let status = response.status();
                let reason = reason(response).await;
                tracing::warn!(node_id = %session.node_id, %status, %reason, "aggregator refused deregistration");
            }
            Err(error) => {
                let error = chain(&error);
                tracing::warn!(node_id = %session.node_id, %error, "could not deregister");
            }
        }
    }
}

/// The aggregator's reason for an error answer, whichever error shape it used.
async fn reason(response: reqwest::Response) -> String {
    match response.bytes().await {
        Ok(body) => match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(parsed) => parsed.message(),
            Err(_) => String::from_utf8_lossy(&body).chars().take(200).collect(),
        },
        Err(e) => e.to_string(),
    }
}

/// An error with its causes (reqwest's own message rarely says what went wrong).
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Heartbeat period from the aggregator, at least one second.
fn interval(secs: u64) -> Duration {
    Duration::from_secs(secs.max(1))
}

/// Delay before retry number `failures + 1`: 0.5 s doubling up to 15 s, with jitter.
fn backoff(failures: u32) -> Duration {
    let doubled = BACKOFF_START.saturating_mul(1u32 << failures.min(16));
    jitter(doubled.min(BACKOFF_CAP))
}

/// Somewhere between half and all of `delay`, so restarted nodes do not retry in lockstep.
fn jitter(delay: Duration) -> Duration {
    delay.mul_f64(rand::rng().random_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        for failures in 0..40 {
            let d = backoff(failures);
            let ceiling = BACKOFF_START
                .saturating_mul(1u32 << failures.min(16))
                .min(BACKOFF_CAP);
            assert!(d <= ceiling && d >= ceiling / 2, "{failures}: {d:?}");
        }
        assert!(backoff(30) <= BACKOFF_CAP);
        assert_eq!(interval(0), Duration::from_secs(1));
    }
}
