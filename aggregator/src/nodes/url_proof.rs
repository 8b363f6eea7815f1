//! Giving a URL back to its real node. Keys are bound to URLs first come, first served, so a
//! stranger could register a node's URL with their own key before the real node does, and
//! keep it from ever joining. When a signed registration finds its URL held by another key,
//! the aggregator asks the URL itself: `GET {url}/health` names the key of the node serving
//! there (`public_key`). If that is the registering key, the URL is theirs: whoever held it
//! is retired and the registration goes on. The registration's signature proves the key is
//! the registrant's; the answer from the URL proves the URL serves that key, so a squatter
//! can neither keep a URL nor take one (the real node's `/health` never names their key).

use std::sync::OnceLock;
use std::time::Duration;

use hero_protocol::NodeHealth;

use super::store::{self, Identity};
use super::url_policy::{ReadError, read_capped};
use crate::http::ApiError;
use crate::http::error::ApiResult;
use crate::state::AppState;

/// How long the URL has to answer.
const PROOF_TIMEOUT: Duration = Duration::from_secs(5);
/// Most bytes of `/health` read.
const MAX_HEALTH_BYTES: usize = 16 * 1024;

/// The client for proofs: one per address policy, shared (built on first use).
fn client(allow_private: bool) -> Result<reqwest::Client, String> {
    static PUBLIC: OnceLock<reqwest::Client> = OnceLock::new();
    static PRIVATE: OnceLock<reqwest::Client> = OnceLock::new();
    let cell = if allow_private { &PRIVATE } else { &PUBLIC };
    if let Some(client) = cell.get() {
        return Ok(client.clone());
    }
    let client = super::url_policy::node_client(allow_private)
        .map_err(|e| format!("cannot build an HTTP client: {e:#}"))?;
    Ok(cell.get_or_init(|| client).clone())
}

/// A short, fixed account of why `{url}/health` could not be read.
fn unreachable(url: &str, error: &reqwest::Error) -> String {
    let why = if error.is_timeout() {
        "did not answer within 5 s"
    } else if error.is_connect() {
        "could not be connected to"
    } else {
        "broke off"
    };
    format!("{url}/health {why}")
}

/// Whether the node serving `url` presents `key` at `/health`; the reason when not.
pub async fn presents_key(url: &str, key: &str, allow_private: bool) -> Result<(), String> {
    let response = client(allow_private)?
        .get(format!("{url}/health"))
        .timeout(PROOF_TIMEOUT)
        .send()
        .await
        .map_err(|e| unreachable(url, &e))?;
    if !response.status().is_success() {
        return Err(format!("{url}/health answered {}", response.status()));
    }
    let body = read_capped(response, MAX_HEALTH_BYTES)
        .await
        .map_err(|e| match e {
            ReadError::TooLarge => format!("{url}/health is larger than {MAX_HEALTH_BYTES} bytes"),
            ReadError::Broken(e) => unreachable(url, &e),
        })?;
    let health: NodeHealth = serde_json::from_slice(&body)
        .map_err(|_| format!("{url}/health is not a node's health (JSON of GET /health)"))?;
    match health.public_key.as_deref() {
        Some(presented) if presented == key => Ok(()),
        Some(_) => Err(format!("{url}/health presents another key")),
        None => Err(format!(
            "{url}/health presents no public_key (an older hero-node: upgrade it)"
        )),
    }
}

/// Retires `holder`, which held a URL proven to be another key's: it leaves the network
/// and its URL is freed (stored as `reclaimed:{id}`, which no node can register). Refused
/// (409) when the holder changed its URL or key while the URL was asked.
pub async fn retire(state: &AppState, holder: &Identity) -> ApiResult<()> {
    let now = state.clock.now_ms();
    let released = store::release_url(
        &state.db,
        &holder.id,
        &holder.url,
        holder.public_key.as_deref(),
        now,
    )
    .await?;
    if !released {
        return Err(ApiError::Conflict(
            "the node holding this URL changed while the URL was asked: register again".into(),
        ));
    }
    if let Some(node) = state.registry.get(&holder.id) {
        node.left.store(true, std::sync::atomic::Ordering::Relaxed);
        state.registry.changed();
    }
    metrics::counter!(crate::http::metrics::URLS_RECLAIMED).increment(1);
    tracing::warn!(
        target: "security",
        node_id = %holder.id,
        node_url = %holder.url,
        "a node URL was reclaimed by the key its /health presents; the node that held it left"
    );
    Ok(())
}
