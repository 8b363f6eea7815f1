//! One call to one node: send the battle request, read a bounded answer, validate it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hero_protocol::signing::{ASSIGNMENT_HEADER, NODE_ID_HEADER, SIGNATURE_HEADER, vote_message};
use hero_protocol::{BattleResult, ErrorBody, Fighter};

use super::sanitize::{MAX_ERROR_CHARS, clean_result, clean_text, stored_winner};
use super::vote::{Vote, VoteRole};
use crate::http::metrics::{NODE_REQUEST_DURATION, NODE_REQUESTS};
use crate::nodes::Assignment;
use crate::nodes::url_policy::{ReadError, read_capped};

/// Largest answer read from a node.
const MAX_RESULT_BYTES: usize = 1024 * 1024;

/// Everything a call needs, shared by all calls of one battle.
pub struct CallContext {
    pub client: reqwest::Client,
    pub battle_id: String,
    pub body: Vec<u8>,
    pub fighters: Arc<Vec<Fighter>>,
}

/// Longest a busy node may ask to be left alone.
const MAX_BUSY_MS: i64 = 60_000;
/// A 503 counts as "busy" only when it comes this fast: a node at capacity knows at once. A
/// slow 503 held a seat for nothing and counts as a failure.
const BUSY_ANSWER_MS: u64 = 1_000;

enum Failure {
    /// 503 at capacity: come back after this many milliseconds. Not a failure of the node.
    Busy(i64),
    Timeout,
    Unreachable(String),
    Http(String),
    Malformed(String),
    /// The node registered a key, but the result's signature is missing or wrong.
    Unsigned(String),
    Invalid(String, Box<BattleResult>),
}

impl Failure {
    fn label(&self) -> &'static str {
        match self {
            Failure::Busy(_) => "busy",
            Failure::Timeout => "timeout",
            Failure::Unreachable(_) => "unreachable",
            Failure::Http(_) => "http_error",
            Failure::Malformed(_) => "malformed",
            Failure::Unsigned(_) => "unsigned",
            Failure::Invalid(..) => "invalid",
        }
    }
}

async fn read_limited(response: reqwest::Response) -> Result<Vec<u8>, Failure> {
    read_capped(response, MAX_RESULT_BYTES)
        .await
        .map_err(|e| match e {
            ReadError::TooLarge => Failure::Malformed("answer larger than 1 MiB".into()),
            ReadError::Broken(e) => Failure::Unreachable(format!("reading the answer failed: {e}")),
        })
}

async fn exchange(
    ctx: &CallContext,
    assignment: &Assignment,
    timeout: Duration,
) -> Result<BattleResult, Failure> {
    let node = &assignment.node;
    // A fresh nonce per call: a signed result answers this assignment and no other.
    let nonce = hex::encode(rand::random::<[u8; 16]>());
    let mut request = ctx
        .client
        .post(format!("{}/generate_battle", node.url))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(NODE_ID_HEADER, node.id.as_str())
        .header(ASSIGNMENT_HEADER, nonce.as_str())
        .body(ctx.body.clone());
    if let Some(key) = &node.api_key {
        request = request.bearer_auth(key);
    }
    let work = async {
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                Failure::Timeout
            } else {
                Failure::Unreachable(format!("cannot reach node: {}", e.without_url()))
            }
        })?;
        let status = response.status();
        if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            let retry_after_ms = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<i64>().ok())
                .map_or(1_000, |secs| secs.saturating_mul(1000))
                .clamp(100, MAX_BUSY_MS);
            return Err(Failure::Busy(retry_after_ms));
        }
        let signature = response
            .headers()
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_limited(response).await?;
        if !status.is_success() {
            let reason = serde_json::from_slice::<ErrorBody>(&body)
                .map(|b| b.message())
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).chars().take(200).collect());
            return Err(Failure::Http(format!("node answered {status}: {reason}")));
        }
        if node.public_key.is_some() {
            let message = vote_message(&ctx.battle_id, &node.id, &nonce, &body);
            match (&signature, node.verifying_key()) {
                (None, _) => return Err(Failure::Unsigned("result is not signed".into())),
                (Some(sig), Some(key)) if key.verifies(&message, sig) => {}
                (Some(_), _) => {
                    return Err(Failure::Unsigned("result signature does not verify".into()));
                }
            }
        }
        let mut result: BattleResult = serde_json::from_slice(&body)
            .map_err(|e| Failure::Malformed(format!("not a battle result: {e}")))?;
        clean_result(&mut result);
        match hero_engine::validate(&ctx.fighters, &result) {
            Ok(()) => Ok(result),
            Err(e) => Err(Failure::Invalid(
                format!("result failed validation: {e}"),
                Box::new(result),
            )),
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(outcome) => outcome,
        Err(_) => Err(Failure::Timeout),
    }
}

/// How long one call may take.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub timeout: Duration,
    /// Less than a whole node timeout, because the round's deadline comes first: a timeout
    /// is then not held against the node.
    pub cut_short: bool,
}

impl Budget {
    /// A whole node timeout.
    pub fn full(timeout: Duration) -> Budget {
        Budget {
            timeout,
            cut_short: false,
        }
    }
}

/// Calls one node and turns whatever happens into a vote. Never fails.
pub async fn call_node(
    ctx: Arc<CallContext>,
    assignment: Assignment,
    role: VoteRole,
    budget: Budget,
) -> Vote {
    let started = Instant::now();
    let timeout = budget.timeout;
    let outcome = exchange(&ctx, &assignment, timeout).await;
    let latency = started.elapsed();
    let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
    let outcome = match outcome {
        Err(Failure::Busy(_)) if latency_ms > BUSY_ANSWER_MS => Err(Failure::Http(format!(
            "node answered 503 after {latency_ms} ms: a busy node answers at once"
        ))),
        other => other,
    };
    let cut_short = budget.cut_short && matches!(outcome, Err(Failure::Timeout));
    let label = match &outcome {
        Ok(_) => "ok",
        Err(_) if cut_short => "cut_short",
        Err(f) => f.label(),
    };
    metrics::counter!(NODE_REQUESTS, "result" => label).increment(1);
    metrics::histogram!(NODE_REQUEST_DURATION).record(latency.as_secs_f64());
    let node_id = assignment.node.id.clone();
    let reputation = assignment.node.snapshot_counters().reputation;
    match outcome {
        Ok(result) => Vote {
            node_id,
            role,
            winner: Some(result.winner.clone()),
            result_hash: result_hash(&result),
            result: Some(result),
            latency_ms,
            valid: true,
            error: None,
            reputation,
            busy_retry_after_ms: None,
            answered_at: Instant::now(),
            after_verdict: false,
            elapsed: latency,
            superseded: false,
            cut_short: false,
        },
        Err(failure) => {
            let busy = match failure {
                Failure::Busy(ms) => Some(ms),
                _ => None,
            };
            let (error, rejected) = match failure {
                Failure::Busy(ms) => (format!("busy: at capacity, retry after {ms} ms"), None),
                Failure::Timeout if cut_short => (
                    format!(
                        "cut short: the round's deadline left this call {} ms",
                        timeout.as_millis()
                    ),
                    None,
                ),
                Failure::Timeout => (format!("timed out after {} ms", timeout.as_millis()), None),
                Failure::Unreachable(m)
                | Failure::Http(m)
                | Failure::Malformed(m)
                | Failure::Unsigned(m) => (m, None),
                Failure::Invalid(m, result) => (m, Some(*result)),
            };
            // Node-controlled text: bounded and free of control characters before it goes
            // anywhere near the database.
            let error = clean_text(&error, MAX_ERROR_CHARS);
            tracing::debug!(node.id = %node_id, %error, "vote rejected");
            Vote {
                node_id,
                role,
                winner: rejected
                    .as_ref()
                    .map(|r| stored_winner(&r.winner, &ctx.fighters)),
                result: rejected,
                result_hash: None,
                latency_ms,
                valid: false,
                error: Some(error),
                reputation,
                busy_retry_after_ms: busy,
                answered_at: Instant::now(),
                after_verdict: false,
                elapsed: latency,
                superseded: false,
                cut_short,
            }
        }
    }
}

/// SHA-256 of a result's JSON: equal for byte-identical results.
fn result_hash(result: &BattleResult) -> Option<[u8; 32]> {
    let json = serde_json::to_vec(result).ok()?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &json);
    digest.as_ref().try_into().ok()
}
