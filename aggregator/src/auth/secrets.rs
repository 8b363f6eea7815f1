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
