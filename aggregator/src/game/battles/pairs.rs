//! Fair play: how many battles a player started today (UTC) against the characters of another
//! player, counted in the battle's own transaction so a refused battle counts nothing.

use std::collections::{BTreeMap, HashMap};

use sqlx::Row;

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
        return Err(refused(limit, now_ms));
    }
    Ok(())
}

/// The refusal of one battle too many against the same player today.
pub fn refused(limit: i64, now_ms: i64) -> ApiError {
    let day = now_ms.div_euclid(DAY_MS);
    let wait_ms = (day + 1) * DAY_MS - now_ms;
    ApiError::TooManyRequests {
        message: format!(
            "you have fought this player {limit} times today (the daily limit per opponent); \
             pick another opponent or come back tomorrow (UTC)"
        ),
        retry_after_secs: u64::try_from((wait_ms + 999) / 1000).unwrap_or(86_400),
    }
}

/// (attacker, defender) players.
pub type Pair = (String, String);

/// How many battles each attacker of `attackers` started today, per defender.
pub async fn today(
    tx: &mut Tx,
    attackers: &[&str],
    now_ms: i64,
) -> Result<HashMap<Pair, i64>, sqlx::Error> {
    if attackers.is_empty() {
        return Ok(HashMap::new());
    }
    let mut params = crate::db::Params::of(tx);
    let day = params.take();
    let list: Vec<String> = attackers.iter().map(|_| params.take()).collect();
    let sql = format!(
        "SELECT attacker_id, defender_id, battles FROM battle_pairs \
         WHERE day = {day} AND attacker_id IN ({})",
        list.join(", ")
    );
    let mut select = crate::db::one_off(&sql).bind(now_ms.div_euclid(DAY_MS));
    for attacker in attackers {
        select = select.bind(*attacker);
    }
    let mut counts = HashMap::new();
    for row in select.fetch_all(&mut **tx).await? {
        counts.insert(
            (row.try_get("attacker_id")?, row.try_get("defender_id")?),
            row.try_get("battles")?,
        );
    }
    Ok(counts)
}

/// Adds `battles` to each pair's count of today, in one statement (each pair once, in order).
pub async fn add(tx: &mut Tx, added: &BTreeMap<Pair, i64>, now_ms: i64) -> Result<(), sqlx::Error> {
    if added.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO battle_pairs (attacker_id, defender_id, day, battles) VALUES {} \
         ON CONFLICT (attacker_id, defender_id, day) \
         DO UPDATE SET battles = battle_pairs.battles + excluded.battles",
        crate::db::values_placeholders(tx, added.len(), 4)
    );
    let day = now_ms.div_euclid(DAY_MS);
    let mut insert = crate::db::one_off(&sql);
    for ((attacker, defender), battles) in added {
        insert = insert
            .bind(attacker.as_str())
            .bind(defender.as_str())
            .bind(day)
            .bind(*battles);
    }
    insert.execute(&mut **tx).await?;
    Ok(())
}
