//! Registration decisions: which operator a registration belongs to (from its token), whether
//! its signature holds, and which stored node (if any) it is entitled to update. Pure checks
//! here and small queries; the route writes the outcome.

use axum::http::HeaderMap;
use hero_protocol::NodeRegistration;
use hero_protocol::signing::{SIGNATURE_HEADER, TIMESTAMP_HEADER, registration_message, verify};

use super::operators::{self, Operator};
use super::store::Identity;
use crate::auth::secrets::secrets_match;
use crate::db::Db;
use crate::http::ApiError;
use crate::http::bearer::bearer;

/// How old (or how far in the future) a signed registration may be.
pub const MAX_SIGNATURE_AGE_MS: i64 = 60_000;

/// Who a registration is for, as its token says.
#[derive(Debug, Clone)]
pub enum Enrollment {
    /// An operator account's token.
    Operator(Operator),
    /// No operator accounts exist: anyone (with the shared `--enrollment-token`, when set)
    /// registers, as its host, with weight 1.
    Open,
}

/// Finds the operator of a registration from its bearer token.
pub async fn enrollment(
    db: &Db,
    headers: &HeaderMap,
    shared_token: Option<&str>,
) -> Result<Enrollment, ApiError> {
    let token = bearer(headers);
    if let Some(token) = token
        && let Some(op) = operators::by_token(db, token).await?
    {
        if op.revoked_at_ms.is_some() {
            return Err(ApiError::Unauthorized(format!(
                "the enrollment token of operator {} was revoked",
                op.name
            )));
        }
        return Ok(Enrollment::Operator(op));
    }
    if operators::any(db).await? {
        return Err(ApiError::Unauthorized(match token {
            Some(_) => "enrollment token is not valid".into(),
            None => "this aggregator needs your operator's enrollment token \
                     (Authorization: Bearer ...)"
                .into(),
        }));
    }
    match (shared_token, token) {
        (None, _) => Ok(Enrollment::Open),
        (Some(expected), Some(given)) if secrets_match(given, expected) => Ok(Enrollment::Open),
        (Some(_), Some(_)) => Err(ApiError::Unauthorized(
            "enrollment token is not valid".into(),
        )),
        (Some(_), None) => Err(ApiError::Unauthorized(
            "this aggregator needs an enrollment token (Authorization: Bearer ...)".into(),
        )),
    }
}

/// Checks the registration's signature: a node that registers a key signs the exact body
/// with it, with a timestamp no older than a minute. Returns the timestamp (None: unsigned).
pub fn check_signature(
    reg: &NodeRegistration,
    headers: &HeaderMap,
    body: &[u8],
    now_ms: i64,
    allow_unsigned: bool,
) -> Result<Option<i64>, ApiError> {
    let Some(key) = &reg.public_key else {
        if allow_unsigned {
            return Ok(None);
        }
        return Err(ApiError::Unprocessable(
            "registration must be signed: send public_key (Ed25519) with X-Hero-Timestamp and \
             X-Node-Signature headers (unsigned seed-style nodes need the aggregator's \
             --allow-unsigned-nodes)"
                .into(),
        ));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(timestamp), Some(signature)) = (header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER))
    else {
        return Err(ApiError::Unauthorized(
            "a registration with a public_key needs X-Hero-Timestamp and X-Node-Signature".into(),
        ));
    };
    let timestamp: i64 = timestamp
        .parse()
        .map_err(|_| ApiError::Unauthorized("X-Hero-Timestamp must be Unix milliseconds".into()))?;
    if now_ms.abs_diff(timestamp) > MAX_SIGNATURE_AGE_MS.unsigned_abs() {
        return Err(ApiError::Unauthorized(
            "registration signature is stale or from the future (more than 60 s off): check the \
             node's clock"
                .into(),
        ));
    }
    if !verify(key, &registration_message(timestamp, body), signature) {
        return Err(ApiError::Unauthorized(
            "registration signature does not verify with the public_key".into(),
        ));
    }
    Ok(Some(timestamp))
}

/// What a registration may do with the stored nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// A new node.
    New,
    /// Update this node (the same key, or the same unsigned node); `signed_at` is what the
    /// row holds now (the update only applies if it still does).
    Update { id: String, signed_at: Option<i64> },
}

/// Decides which node a registration is for, refusing takeovers: a URL or key held by one
/// identity cannot be taken by another; an unsigned registration never replaces a keyed node;
/// a node stays with its operator; a signed registration must be newer than the last one.
pub fn claim(
    operator: &str,
    public_key: Option<&str>,
    signed_at: Option<i64>,
    by_url: Option<&Identity>,
    by_key: Option<&Identity>,
) -> Result<Claim, ApiError> {
    let conflict = |m: &str| Err(ApiError::Conflict(m.to_string()));
    if let (Some(u), Some(k)) = (by_url, by_key)
        && u.id != k.id
    {
        return conflict("this URL belongs to another node than this key: refused");
    }
    let Some(existing) = by_key.or(by_url) else {
        return Ok(Claim::New);
    };
    match (&existing.public_key, public_key) {
        (Some(held), Some(given)) if held != given => {
            return conflict("this URL is held by another node's key: refused");
        }
        (Some(_), None) => {
            return conflict(
                "this URL is held by a signed node; an unsigned registration cannot replace it",
            );
        }
        _ => {}
    }
    // A node of the open network (run by `host ...`) may join an operator account: its key
    // on file proves it is the same node. Otherwise a node stays with its operator.
    let open_row = existing
        .operator
        .as_deref()
        .is_none_or(|o| o.starts_with("host "));
    let same_key = public_key.is_some() && existing.public_key.as_deref() == public_key;
    if existing.operator.as_deref() != Some(operator) && !(open_row && same_key) {
        return conflict("this node belongs to another operator: refused");
    }
    if let (Some(last), Some(now)) = (existing.signed_at_ms, signed_at)
        && now <= last
    {
        return Err(ApiError::Unauthorized(
            "registration is a replay (not newer than the node's last one)".into(),
        ));
    }
    Ok(Claim::Update {
        id: existing.id.clone(),
        signed_at: existing.signed_at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(id: &str, operator: &str, key: Option<&str>, signed_at: Option<i64>) -> Identity {
        Identity {
            id: id.into(),
            url: format!("http://{id}"),
            operator: Some(operator.into()),
            public_key: key.map(str::to_owned),
            signed_at_ms: signed_at,
            left: false,
        }
    }

    #[test]
    fn new_urls_and_keys_are_new_nodes() {
        assert_eq!(
            claim("a", Some("k"), Some(1), None, None).unwrap(),
            Claim::New
        );
    }

    #[test]
    fn the_key_on_file_may_update_its_node_and_move_its_url() {
        let held = identity("n1", "a", Some("k"), Some(10));
        let update = Claim::Update {
            id: "n1".into(),
            signed_at: Some(10),
        };
        assert_eq!(
            claim("a", Some("k"), Some(11), Some(&held), Some(&held)).unwrap(),
            update
        );
        assert_eq!(
            claim("a", Some("k"), Some(11), None, Some(&held)).unwrap(),
            update
        );
    }

    #[test]
    fn takeovers_are_refused() {
        let held = identity("n1", "a", Some("k"), Some(10));
        let status = |r: Result<Claim, ApiError>| match r {
            Err(ApiError::Conflict(_)) => 409,
            Err(ApiError::Unauthorized(_)) => 401,
            _ => 200,
        };
        // Another key for the URL, from the same operator or another.
        assert_eq!(
            status(claim("a", Some("x"), Some(11), Some(&held), None)),
            409
        );
        assert_eq!(
            status(claim("b", Some("x"), Some(11), Some(&held), None)),
            409
        );
        // No key at all.
        assert_eq!(status(claim("a", None, None, Some(&held), None)), 409);
        // The right key but through another operator's token.
        assert_eq!(
            status(claim("b", Some("k"), Some(11), Some(&held), Some(&held))),
            409
        );
        // A replayed (not newer) registration.
        assert_eq!(
            status(claim("a", Some("k"), Some(10), Some(&held), Some(&held))),
            401
        );
        // A key that holds one node cannot grab another node's URL.
        let other = identity("n2", "a", Some("j"), Some(5));
        assert_eq!(
            status(claim("a", Some("k"), Some(11), Some(&other), Some(&held))),
            409
        );
    }

    #[test]
    fn an_open_network_node_joins_an_operator_with_its_own_key_only() {
        let open = identity("n1", "host 10.0.0.1", Some("k"), Some(10));
        assert!(claim("acme", Some("k"), Some(11), Some(&open), Some(&open)).is_ok());
        assert!(claim("acme", Some("x"), Some(11), Some(&open), None).is_err());
        let owned = identity("n1", "beta", Some("k"), Some(10));
        assert!(claim("acme", Some("k"), Some(11), Some(&owned), Some(&owned)).is_err());
    }

    #[test]
    fn unsigned_nodes_update_only_within_their_operator() {
        let seed = identity("n1", "host 10.0.0.1", None, None);
        assert!(claim("host 10.0.0.1", None, None, Some(&seed), None).is_ok());
        assert!(claim("host 10.0.0.2", None, None, Some(&seed), None).is_err());
    }
}
