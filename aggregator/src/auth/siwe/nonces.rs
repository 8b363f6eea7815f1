//! Sign-in nonces in the database, so whichever replica gets the signed message can check the
//! nonce another replica issued. Issued for 5 minutes; spent once, by one conditional update.

use rand::Rng;
use rand::distr::Alphanumeric;

use super::NONCE_TTL_MS;
use crate::db::{Db, Tx};

/// A new nonce (16 letters and digits) and when it expires.
pub async fn issue(db: &Db, now_ms: i64) -> Result<(String, i64), sqlx::Error> {
    let nonce: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(16)
        .map(char::from)
        .collect();
    let expires = now_ms + NONCE_TTL_MS;
    sqlx::query("INSERT INTO siwe_nonces (nonce, issued_at_ms, expires_at_ms) VALUES ($1, $2, $3)")
        .bind(&nonce)
        .bind(now_ms)
        .bind(expires)
        .execute(&db.writer)
        .await?;
    Ok((nonce, expires))
}

/// Spends `nonce`: true for exactly one caller, and only while it is unused and unexpired.
pub async fn spend(tx: &mut Tx, nonce: &str, now_ms: i64) -> Result<bool, sqlx::Error> {
    let spent = sqlx::query(
        "UPDATE siwe_nonces SET used_at_ms = $2 \
         WHERE nonce = $1 AND used_at_ms IS NULL AND expires_at_ms > $2",
    )
    .bind(nonce)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(spent.rows_affected() == 1)
}
