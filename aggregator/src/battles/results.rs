//! Battle results as stored: each distinct result of a battle once, in `battle_results`,
//! keyed by the battle and the hash of its JSON and compressed with zstd. The battle (its
//! published result) and each vote name their result by that hash, so three agreeing votes
//! and the verdict they settled share one row.

use std::collections::HashSet;

use base64::Engine as _;
use hero_protocol::BattleResult;

use crate::db::Tx;

/// Bytes of SHA-256 kept as a result's key: results are told apart within one battle only.
pub const HASH_BYTES: usize = 16;

pub type ResultHash = [u8; HASH_BYTES];

/// zstd level: small results compress about threefold at level 3, in microseconds.
const LEVEL: i32 = 3;

/// Largest result a stored body may expand to (node answers are capped far below this).
const MAX_RESULT_BYTES: usize = 4 * 1024 * 1024;

/// The key of a result's JSON.
pub fn hash_of(json: &[u8]) -> ResultHash {
    let digest = ring::digest::digest(&ring::digest::SHA256, json);
    let mut hash = [0; HASH_BYTES];
    hash.copy_from_slice(&digest.as_ref()[..HASH_BYTES]);
    hash
}

/// The key of a full SHA-256 (votes carry one: their consensus hash).
pub fn truncate(sha256: &[u8; 32]) -> ResultHash {
    let mut hash = [0; HASH_BYTES];
    hash.copy_from_slice(&sha256[..HASH_BYTES]);
    hash
}

/// JSON as stored: zstd-compressed, or as is when compressing does not make it smaller (JSON
/// starts with `{`, a zstd frame never does, so the reader can tell).
pub fn compress(json: &[u8]) -> Vec<u8> {
    thread_local! {
        // A compression context costs more to make than a result costs to compress: one per
        // thread, used again.
        static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
            std::cell::RefCell::new(zstd::bulk::Compressor::new(LEVEL).ok());
    }
    let packed = COMPRESSOR.with(|c| match c.borrow_mut().as_mut() {
        Some(compressor) => compressor.compress(json),
        None => zstd::bulk::compress(json, LEVEL),
    });
    match packed {
        Ok(packed) if packed.len() < json.len() => packed,
        _ => json.to_vec(),
    }
}

/// The JSON of a stored body.
pub fn decompress(body: &[u8]) -> std::io::Result<Vec<u8>> {
    if body.first() == Some(&b'{') {
        Ok(body.to_vec())
    } else {
        thread_local! {
            static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
                std::cell::RefCell::new(zstd::bulk::Decompressor::new().ok());
        }
        DECOMPRESSOR.with(|d| match d.borrow_mut().as_mut() {
            Some(decompressor) => decompressor.decompress(body, MAX_RESULT_BYTES),
            None => zstd::bulk::decompress(body, MAX_RESULT_BYTES),
        })
    }
}

/// Decodes a stored body into a result.
pub fn decode(body: &[u8]) -> Result<BattleResult, sqlx::Error> {
    let json = decompress(body).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    serde_json::from_slice(&json).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// A result made ready to store before the writing transaction begins: its key and its
/// stored body. Serialising and compressing take a few hundred microseconds a result; done by
/// the battle's own task, in parallel, they stay out of the single writer's transaction.
pub struct Prepared {
    pub hash: ResultHash,
    body: Vec<u8>,
}

impl Prepared {
    pub fn of(result: &BattleResult) -> Option<Prepared> {
        let json = serde_json::to_vec(result).ok()?;
        Some(Prepared {
            hash: hash_of(&json),
            body: compress(&json),
        })
    }
}

/// The distinct results of a batch of battles, to be written once each.
#[derive(Default)]
pub struct ResultRows<'a> {
    rows: Vec<(&'a str, ResultHash, Vec<u8>)>,
    seen: HashSet<(&'a str, ResultHash)>,
}

impl<'a> ResultRows<'a> {
    /// Adds `result` of `battle_id` unless it is already there; returns its key. `known` is
    /// its SHA-256 when the caller has it (a valid vote's), which saves hashing it again; the
    /// JSON is then made only for a result not seen before.
    pub fn add(
        &mut self,
        battle_id: &'a str,
        result: &BattleResult,
        known: Option<&[u8; 32]>,
    ) -> Option<ResultHash> {
        match known {
            Some(sha) => {
                let hash = truncate(sha);
                if !self.seen.contains(&(battle_id, hash)) {
                    let json = serde_json::to_vec(result).ok()?;
                    self.push(battle_id, hash, &json);
                }
                Some(hash)
            }
            None => Some(self.add_json(battle_id, &serde_json::to_vec(result).ok()?)),
        }
    }

    /// Adds a prepared result unless it is already there; returns its key.
    pub fn add_prepared(&mut self, battle_id: &'a str, prepared: &Prepared) -> ResultHash {
        if self.seen.insert((battle_id, prepared.hash)) {
            self.rows
                .push((battle_id, prepared.hash, prepared.body.clone()));
        }
        prepared.hash
    }

    /// Notes that `battle_id`'s result `hash` is stored already (a verdict's, written with
    /// it): votes with that result need no row.
    pub fn stored(&mut self, battle_id: &'a str, hash: ResultHash) {
        self.seen.insert((battle_id, hash));
    }

    /// Adds a result's JSON unless it is already there; returns its key.
    pub fn add_json(&mut self, battle_id: &'a str, json: &[u8]) -> ResultHash {
        let hash = hash_of(json);
        if !self.seen.contains(&(battle_id, hash)) {
            self.push(battle_id, hash, json);
        }
        hash
    }

    fn push(&mut self, battle_id: &'a str, hash: ResultHash, json: &[u8]) {
        self.seen.insert((battle_id, hash));
        self.rows.push((battle_id, hash, compress(json)));
    }

    /// Where the rows end now: [`ResultRows::truncate`] goes back to it.
    pub fn mark(&self) -> usize {
        self.rows.len()
    }

    /// Drops the rows added since `mark` (a verdict that was not ours to write), and only
    /// those: an earlier settlement of the same battle in the batch keeps its rows.
    pub fn truncate(&mut self, mark: usize) {
        for (battle_id, hash, _) in self.rows.drain(mark.min(self.rows.len())..) {
            self.seen.remove(&(battle_id, hash));
        }
    }

    /// Drops the rows of `battle_id` (a verdict that was not ours to write).
    pub fn drop_battle(&mut self, battle_id: &str) {
        let seen = &mut self.seen;
        self.rows.retain(|(id, hash, _)| {
            let keep = *id != battle_id;
            if !keep {
                seen.remove(&(*id, *hash));
            }
            keep
        });
    }

    /// Inserts the rows (a result already stored, by an earlier attempt or a late vote, is
    /// left as it is).
    pub async fn insert(&self, tx: &mut Tx) -> Result<(), sqlx::Error> {
        if self.rows.is_empty() {
            return Ok(());
        }
        if crate::db::is_postgres(tx) {
            // One shape for any number of rows (see `db::json_rows`); bodies as base64.
            let rows: Vec<ResultColumns<'_>> = self
                .rows
                .iter()
                .map(|(battle_id, hash, body)| ResultColumns {
                    battle_id,
                    hash: hex::encode(hash),
                    body: base64::engine::general_purpose::STANDARD.encode(body),
                })
                .collect();
            sqlx::query(
                "INSERT INTO battle_results (battle_id, hash, body) \
                 SELECT r.battle_id, decode(r.hash, 'hex'), decode(r.body, 'base64') \
                 FROM json_to_recordset(CAST($1 AS JSON)) AS r (battle_id TEXT, hash TEXT, \
                     body TEXT) \
                 ON CONFLICT (battle_id, hash) DO NOTHING",
            )
            .bind(crate::db::json_rows(&rows)?)
            .execute(&mut **tx)
            .await?;
            return Ok(());
        }
        const COLUMNS: usize = 3;
        const ROWS_PER_STATEMENT: usize = 500;
        for chunk in self.rows.chunks(ROWS_PER_STATEMENT) {
            let mut sql =
                String::from("INSERT INTO battle_results (battle_id, hash, body) VALUES ");
            sql.push_str(&crate::db::values_placeholders(tx, chunk.len(), COLUMNS));
            sql.push_str(" ON CONFLICT (battle_id, hash) DO NOTHING");
            let mut query = crate::db::one_off(&sql);
            for (battle_id, hash, body) in chunk {
                query = query
                    .bind((*battle_id).to_owned())
                    .bind(hash.to_vec())
                    .bind(body.clone());
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }
}

/// One `battle_results` row as PostgreSQL's batch statement reads it.
#[derive(serde::Serialize)]
struct ResultColumns<'a> {
    battle_id: &'a str,
    hash: String,
    body: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use hero_protocol::BattleLogEntry;

    fn result(text: &str) -> BattleResult {
        BattleResult {
            winner: "c1".into(),
            battle_log: (1..=6)
                .map(|round| BattleLogEntry {
                    round,
                    text: format!("{text} strikes in round {round}"),
                    ..BattleLogEntry::default()
                })
                .collect(),
            battle_description: format!("{text} wins"),
        }
    }

    #[test]
    fn bodies_round_trip_and_shrink() {
        let json = serde_json::to_vec(&result("Aria")).unwrap();
        let body = compress(&json);
        assert!(body.len() < json.len(), "{} of {}", body.len(), json.len());
        assert_eq!(decompress(&body).unwrap(), json);
        assert_eq!(decode(&body).unwrap(), result("Aria"));
        // Tiny JSON is kept as is and still read back.
        assert_eq!(compress(b"{}"), b"{}");
        assert_eq!(decompress(b"{}").unwrap(), b"{}");
        assert!(decompress(b"\x28\xb5\x2f\xfdgarbage").is_err());
    }

    #[test]
    fn identical_results_of_a_battle_are_kept_once() {
        let mut rows = ResultRows::default();
        let a = result("Aria");
        let sha: [u8; 32] =
            ring::digest::digest(&ring::digest::SHA256, &serde_json::to_vec(&a).unwrap())
                .as_ref()
                .try_into()
                .unwrap();
        let first = rows.add("b1", &a, Some(&sha));
        // The same result hashed here or passed in has the same key.
        assert_eq!(rows.add("b1", &a, None), first);
        assert_eq!(rows.add("b1", &a.clone(), Some(&sha)), first);
        let other = rows.add("b1", &result("Borin"), None);
        assert_ne!(other, first);
        // Another battle's identical result is its own row.
        assert_eq!(rows.add("b2", &a, None), first);
        assert_eq!(rows.rows.len(), 3);
        // A second settlement of b1 that fails takes back only what it added.
        let mark = rows.mark();
        assert_eq!(rows.add("b1", &a, Some(&sha)), first);
        let third = rows.add("b1", &result("Cato"), None);
        assert_ne!(third, first);
        rows.truncate(mark);
        assert_eq!(rows.rows.len(), 3, "the first settlement's rows stay");
        assert_eq!(rows.add("b1", &result("Cato"), None), third);
        assert_eq!(rows.rows.len(), 4);
        rows.truncate(3);
        assert_eq!(rows.rows.len(), 3);
    }
}
