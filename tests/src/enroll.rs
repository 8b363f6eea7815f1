//! Registering with the aggregator as a node does: the body signed with the node's Ed25519
//! key and a timestamp, under an operator's enrollment token.

use hero_protocol::signing::{
    SIGNATURE_HEADER, TIMESTAMP_HEADER, VoteSigner, registration_message,
};
use serde_json::Value;

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(0))
        .unwrap_or(0)
}

/// Posts a registration: `body` gets `public_key` when `signer` is given, and is signed with
/// it at `timestamp_ms` (now when `None`). Returns the status and the JSON answer.
pub async fn register_at(
    aggregator: &str,
    token: Option<&str>,
    mut body: Value,
    signer: Option<&VoteSigner>,
    timestamp_ms: Option<i64>,
) -> (u16, Value) {
    if let Some(signer) = signer {
        body["public_key"] = signer.public_key_hex().into();
    }
    let bytes = serde_json::to_vec(&body).expect("json");
    let mut request = reqwest::Client::new()
        .post(format!("{aggregator}/api/nodes/register"))
        .header("content-type", "application/json");
    if let Some(signer) = signer {
        let ts = timestamp_ms.unwrap_or_else(now_ms);
        request = request.header(TIMESTAMP_HEADER, ts.to_string()).header(
            SIGNATURE_HEADER,
            signer.sign(&registration_message(ts, &bytes)),
        );
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.body(bytes).send().await.expect("register");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `register_at` signed now.
pub async fn register(
    aggregator: &str,
    token: Option<&str>,
    body: Value,
    signer: Option<&VoteSigner>,
) -> (u16, Value) {
    register_at(aggregator, token, body, signer, None).await
}

/// Creates an operator through the admin API; returns its enrollment token.
pub async fn create_operator(
    aggregator: &str,
    name: &str,
    max_nodes: i64,
    max_weight: i64,
) -> String {
    let response = reqwest::Client::new()
        .post(format!("{aggregator}/api/v1/admin/operators"))
        .bearer_auth(crate::process::ADMIN_TOKEN)
        .json(&serde_json::json!({"name": name, "max_nodes": max_nodes, "max_weight": max_weight}))
        .send()
        .await
        .expect("create operator");
    assert_eq!(response.status(), 201, "create operator {name}");
    let body: Value = response.json().await.expect("json");
    body["enrollment_token"]
        .as_str()
        .expect("enrollment_token")
        .to_string()
}
