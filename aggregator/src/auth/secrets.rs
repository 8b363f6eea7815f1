//! Secrets: what we store instead of them (a SHA-256 hash), comparing them in constant time,
//! and making new ones.

use ring::digest::{SHA256, digest};

/// SHA-256 of a secret, hex encoded: what we store instead of the secret.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(digest(&SHA256, secret.as_bytes()))
}

/// Compares two secrets without leaking where they differ: both sides are hashed first.
pub fn secrets_match(given: &str, expected: &str) -> bool {
    let a = digest(&SHA256, given.as_bytes());
    let b = digest(&SHA256, expected.as_bytes());
    a.as_ref()
        .iter()
        .zip(b.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// A fresh random secret (32 bytes, hex).
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// The HMAC key kept in `server_secrets` under `name`, created by whichever replica starts
/// first: every replica signs and checks with the same one.
pub async fn shared_key(
    db: &crate::db::Db,
    name: &str,
    now_ms: i64,
) -> Result<ring::hmac::Key, sqlx::Error> {
    sqlx::query(
        "INSERT INTO server_secrets (name, value, created_at_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(new_secret())
    .bind(now_ms)
    .execute(&db.writer)
    .await?;
    let secret: String = sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
        .bind(name)
        .fetch_one(&db.pool)
        .await?;
    Ok(ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        secret.as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare() {
        assert!(secrets_match("a", "a"));
        assert!(!secrets_match("a", "b"));
        assert_ne!(new_secret(), new_secret());
        assert_eq!(hash_secret("x").len(), 64);
    }
}
