//! Fair play: how many battles a player started today (UTC) against the characters of another
//! player, counted in the battle's own transaction so a refused battle counts nothing.

use crate::db::Tx;
use crate::http::ApiError;

const DAY_MS: i64 = 86_400_000;

/// Counts one more battle of `attacker` against `defender` today, refusing it (429, retry at
/// the next UTC midnight) past `limit` (0: no limit).
pub async fn count(
    tx: &mut Tx,
    attacker: &str,
    defender: &str,
    limit: i64,
    now_ms: i64,
) -> Result<(), ApiError> {
    if limit == 0 {
        return Ok(());
    }
    let day = now_ms.div_euclid(DAY_MS);
    let battles: i64 = sqlx::query_scalar(
        "INSERT INTO battle_pairs (attacker_id, defender_id, day, battles) VALUES ($1, $2, $3, 1) \
         ON CONFLICT (attacker_id, defender_id, day) \
         DO UPDATE SET battles = battle_pairs.battles + 1 RETURNING battles",
    )
    .bind(attacker)
    .bind(defender)
    .bind(day)
    .fetch_one(&mut **tx)
    .await?;
    if battles > limit {
        let wait_ms = (day + 1) * DAY_MS - now_ms;
        return Err(ApiError::TooManyRequests {
            message: format!(
                "you have fought this player {limit} times today (the daily limit per opponent); \
                 pick another opponent or come back tomorrow (UTC)"
            ),
            retry_after_secs: u64::try_from((wait_ms + 999) / 1000).unwrap_or(86_400),
        });
    }
    Ok(())
}
