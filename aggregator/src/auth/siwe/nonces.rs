//! Sign-in nonces. Issuing one writes nothing: a nonce carries its expiry and a MAC under a key
//! kept in the database (so any replica checks a nonce another issued), and a flood of nonce
//! requests costs no storage. A nonce is spent by inserting it, once: a second spend conflicts.
//! Only messages whose signature verified ever reach that insert.

use rand::Rng;
use rand::distr::Alphanumeric;
use ring::hmac;

use super::NONCE_TTL_MS;
use crate::auth::secrets::{secrets_match, shared_key};
use crate::db::{Db, Tx};

/// Digits of the expiry at the front of a nonce (milliseconds, zero-padded).
const EXPIRY_DIGITS: usize = 13;
const RANDOM_CHARS: usize = 16;
/// Hex digits of the MAC at the end of a nonce (128 bits).
const MAC_DIGITS: usize = 32;
/// Length of every nonce this server issues.
pub const NONCE_LEN: usize = EXPIRY_DIGITS + RANDOM_CHARS + MAC_DIGITS;

/// The key nonces are authenticated with.
pub struct NonceKey(hmac::Key);

impl NonceKey {
    /// The key kept in `server_secrets`, created by whichever replica starts first.
    pub async fn load(db: &Db, now_ms: i64) -> Result<NonceKey, sqlx::Error> {
        shared_key(db, "siwe_nonce", now_ms).await.map(NonceKey)
    }

    fn mac(&self, payload: &str) -> String {
        let tag = hmac::sign(&self.0, payload.as_bytes());
        hex::encode(&tag.as_ref()[..MAC_DIGITS / 2])
    }

    /// A new nonce (letters and digits only, as EIP-4361 asks) and when it expires.
    pub fn issue(&self, now_ms: i64) -> (String, i64) {
        let expires = now_ms + NONCE_TTL_MS;
        let random: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(RANDOM_CHARS)
            .map(char::from)
            .collect();
        let payload = format!("{expires:0width$}{random}", width = EXPIRY_DIGITS);
        let mac = self.mac(&payload);
        (format!("{payload}{mac}"), expires)
    }

    /// When `nonce` expires, if this server issued it and it has not expired at `now_ms`.
    pub fn check(&self, nonce: &str, now_ms: i64) -> Option<i64> {
        if nonce.len() != NONCE_LEN || !nonce.is_ascii() {
            return None;
        }
        let (payload, mac) = nonce.split_at(EXPIRY_DIGITS + RANDOM_CHARS);
        if !secrets_match(mac, &self.mac(payload)) {
            return None;
        }
        let expires: i64 = payload[..EXPIRY_DIGITS].parse().ok()?;
        (expires > now_ms).then_some(expires)
    }
}

/// Spends `nonce` (expiring at `expires_ms`): true for exactly one caller.
pub async fn spend(
    tx: &mut Tx,
    nonce: &str,
    expires_ms: i64,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let spent = sqlx::query(
        "INSERT INTO siwe_nonces (nonce, issued_at_ms, expires_at_ms, used_at_ms) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (nonce) DO NOTHING",
    )
    .bind(nonce)
    .bind(expires_ms - NONCE_TTL_MS)
    .bind(expires_ms)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(spent.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> NonceKey {
        NonceKey(hmac::Key::new(hmac::HMAC_SHA256, b"test-key"))
    }

    #[test]
    fn issued_nonces_check_until_they_expire_and_forgeries_never() {
        let k = key();
        let (nonce, expires) = k.issue(1_000);
        assert_eq!(nonce.len(), NONCE_LEN);
        assert!(nonce.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(k.check(&nonce, 1_000), Some(expires));
        assert_eq!(k.check(&nonce, expires), None, "expired");
        // A later expiry written in, another key, garbage.
        let forged = format!("{:013}{}", expires + 3_600_000, &nonce[13..]);
        assert_eq!(k.check(&forged, 1_000), None);
        let other = NonceKey(hmac::Key::new(hmac::HMAC_SHA256, b"other"));
        assert_eq!(other.check(&nonce, 1_000), None);
        for garbage in ["", "abcdefgh", &format!("{}a", "é".repeat(NONCE_LEN / 2))] {
            assert_eq!(k.check(garbage, 1_000), None);
        }
    }
}
