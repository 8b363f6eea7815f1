//! Battle rows and their votes.

use hero_protocol::{BattleResult, Fighter};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::effects::{Settled, VerdictEffects};
use super::results::{self, Prepared, ResultHash, ResultRows};
use super::status::{SettledBy, Status};
use crate::consensus::{Verdict, Vote};
use crate::db::{Db, Dialect, Lock, Tx};

/// A battle claimed by a worker.
#[derive(Debug, Clone)]
pub struct BattleJob {
    pub id: String,
    pub fighters: Vec<Fighter>,
    pub seed: u64,
    pub prompt: String,
    pub attempts: i64,
    /// Who created it: `admin:<name>`, `ladder`, or a player's id.
    pub created_by: Option<String>,
}

impl BattleJob {
    /// Made through the admin endpoint: no player, season or bet hangs on it.
    pub fn by_admin(&self) -> bool {
        self.created_by.as_deref().is_some_and(is_admin_creator)
    }
}

/// Whether a battle's `created_by` names an admin.
pub fn is_admin_creator(created_by: &str) -> bool {
    created_by.starts_with("admin:")
}

pub struct NewBattle<'a> {
    pub fighters: &'a [Fighter],
    pub seed: u64,
    pub prompt: &'a str,
    pub created_by: Option<&'a str>,
}

/// Largest seed handed out or accepted: JSON numbers stay exact in every client.
pub const MAX_SEED: u64 = (1 << 53) - 1;

/// A random battle seed no larger than [`MAX_SEED`].
pub fn random_seed() -> u64 {
    rand::random::<u64>() & MAX_SEED
}

/// The prompt as stored: empty when it is the one the fighters give anyway (most battles),
/// which [`job_from_row`] makes again; a custom prompt as given.
fn stored_prompt<'p>(prompt: &'p str, fighters: &[Fighter]) -> &'p str {
    if prompt == hero_engine::request_prompt(fighters) {
        ""
    } else {
        prompt
    }
}

/// Inserts a PENDING battle inside a larger transaction; returns its id.
pub async fn insert(
    tx: &mut Tx,
    battle: &NewBattle<'_>,
    now_ms: i64,
) -> Result<String, sqlx::Error> {
    let id = crate::db::time_ordered_id();
    let fighters_json =
        serde_json::to_string(battle.fighters).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "INSERT INTO battles (id, status, fighter1_id, fighter2_id, fighters_json, seed, prompt, \
             created_by, created_at_ms, updated_at_ms) \
         VALUES ($1, 'PENDING', $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(&id)
    .bind(
        battle
            .fighters
            .first()
            .map(|f| f.id.clone())
            .unwrap_or_default(),
    )
    .bind(
        battle
            .fighters
            .get(1)
            .map(|f| f.id.clone())
            .unwrap_or_default(),
    )
    .bind(fighters_json)
    .bind(i64::try_from(battle.seed).unwrap_or(i64::MAX))
    .bind(stored_prompt(battle.prompt, battle.fighters))
    .bind(battle.created_by.map(str::to_owned))
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// A claim on a battle: who holds it, and until when.
#[derive(Debug, Clone, Copy)]
pub struct Lease<'a> {
    pub owner: &'a str,
    pub until_ms: i64,
}

/// Inserts battles with one statement inside a larger transaction; returns their ids in
/// order. The first `claimed.1` are inserted RUNNING with the lease `claimed.0` (their first
/// attempt, as a claim would have made them), the rest PENDING.
pub async fn insert_many(
    conn: &mut sqlx::AnyConnection,
    battles: &[NewBattle<'_>],
    now_ms: i64,
    claimed: Option<(Lease<'_>, usize)>,
) -> Result<Vec<String>, sqlx::Error> {
    if battles.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows = Vec::with_capacity(battles.len());
    for (i, battle) in battles.iter().enumerate() {
        let lease = claimed
            .filter(|(_, count)| i < *count)
            .map(|(lease, _)| lease);
        rows.push(BattleRow::new(battle, lease)?);
    }
    let ids = rows.iter().map(|row| row.id.clone()).collect();
    if crate::db::is_postgres(conn) {
        // One shape for any number of rows: prepared once per connection (see `db::json_rows`).
        sqlx::query(
            "INSERT INTO battles (id, status, fighter1_id, fighter2_id, fighters_json, seed, \
                 prompt, created_by, created_at_ms, updated_at_ms, lease_owner, lease_until_ms, \
                 attempts) \
             SELECT r.id, r.status, r.fighter1_id, r.fighter2_id, r.fighters_json, r.seed, \
                 r.prompt, r.created_by, $2, $2, r.lease_owner, r.lease_until_ms, r.attempts \
             FROM json_to_recordset(CAST($1 AS JSON)) AS r (id TEXT, status TEXT, \
                 fighter1_id TEXT, fighter2_id TEXT, fighters_json TEXT, seed BIGINT, prompt TEXT, \
                 created_by TEXT, lease_owner TEXT, lease_until_ms BIGINT, attempts BIGINT)",
        )
        .bind(crate::db::json_rows(&rows)?)
        .bind(now_ms)
        .execute(conn)
        .await?;
        return Ok(ids);
    }
    const COLUMNS: usize = 13;
    let mut sql = String::from(
        "INSERT INTO battles (id, status, fighter1_id, fighter2_id, fighters_json, seed, prompt, \
             created_by, created_at_ms, updated_at_ms, lease_owner, lease_until_ms, attempts) \
         VALUES ",
    );
    sql.push_str(&crate::db::values_placeholders(conn, rows.len(), COLUMNS));
    let mut query = crate::db::one_off(&sql);
    for row in rows {
        query = query
            .bind(row.id)
            .bind(row.status)
            .bind(row.fighter1_id)
            .bind(row.fighter2_id)
            .bind(row.fighters_json)
            .bind(row.seed)
            .bind(row.prompt.to_owned())
            .bind(row.created_by.map(str::to_owned))
            .bind(now_ms)
            .bind(now_ms)
            .bind(row.lease_owner.map(str::to_owned))
            .bind(row.lease_until_ms)
            .bind(row.attempts);
    }
    query.execute(conn).await?;
    Ok(ids)
}

/// A new battle's row as `insert_many` writes it.
#[derive(Serialize)]
struct BattleRow<'a> {
    id: String,
    status: &'static str,
    fighter1_id: String,
    fighter2_id: String,
    fighters_json: String,
    seed: i64,
    prompt: &'a str,
    created_by: Option<&'a str>,
    lease_owner: Option<&'a str>,
    lease_until_ms: Option<i64>,
    attempts: i64,
}

impl<'a> BattleRow<'a> {
    fn new(battle: &NewBattle<'a>, lease: Option<Lease<'a>>) -> Result<Self, sqlx::Error> {
        let fighter = |i: usize| {
            battle
                .fighters
                .get(i)
                .map(|f| f.id.clone())
                .unwrap_or_default()
        };
        Ok(BattleRow {
            id: crate::db::time_ordered_id(),
            status: match lease {
                Some(_) => Status::Running.as_str(),
                None => Status::Pending.as_str(),
            },
            fighter1_id: fighter(0),
            fighter2_id: fighter(1),
            fighters_json: serde_json::to_string(battle.fighters)
                .map_err(|e| sqlx::Error::Encode(Box::new(e)))?,
            seed: i64::try_from(battle.seed).unwrap_or(i64::MAX),
            prompt: stored_prompt(battle.prompt, battle.fighters),
            created_by: battle.created_by,
            lease_owner: lease.map(|l| l.owner),
            lease_until_ms: lease.map(|l| l.until_ms),
            attempts: i64::from(lease.is_some()),
        })
    }
}

fn job_from_row(row: &AnyRow) -> Result<BattleJob, sqlx::Error> {
    let fighters_json: String = row.try_get("fighters_json")?;
    let fighters: Vec<Fighter> =
        serde_json::from_str(&fighters_json).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    let mut prompt: String = row.try_get("prompt")?;
    if prompt.is_empty() {
        prompt = hero_engine::request_prompt(&fighters);
    }
    Ok(BattleJob {
        id: row.try_get("id")?,
        fighters,
        seed: u64::try_from(row.try_get::<i64, _>("seed")?).unwrap_or(0),
        prompt,
        attempts: row.try_get("attempts")?,
        created_by: row.try_get("created_by")?,
    })
}

/// Claims up to `limit` battles for `owner`: first those whose lease ran out (the longest
/// expired first), then PENDING ones, oldest first. Each is one index range read of at most
/// `limit` rows, however many battles wait: one statement with `OR` made SQLite read and sort
/// every pending and running battle on every claim.
pub async fn claim(
    db: &Db,
    owner: &str,
    lease_ms: i64,
    now_ms: i64,
    limit: i64,
) -> Result<Vec<BattleJob>, sqlx::Error> {
    // SQLite has no statistics to tell it that few battles are running: name the index.
    let leases = match db.dialect {
        Dialect::Sqlite => "battles INDEXED BY battles_leases",
        Dialect::Postgres => "battles",
    };
    let expired = format!(
        "SELECT id FROM {leases} WHERE status = 'RUNNING' AND lease_until_ms < $3 \
         ORDER BY lease_until_ms"
    );
    let mut jobs = claim_from(db, &expired, owner, lease_ms, now_ms, limit).await?;
    let left = limit - i64::try_from(jobs.len()).unwrap_or(limit);
    if left > 0 {
        jobs.extend(claim_pending(db, owner, lease_ms, now_ms, left).await?);
    }
    Ok(jobs)
}

/// Claims up to `limit` PENDING battles for `owner`, oldest first.
pub async fn claim_pending(
    db: &Db,
    owner: &str,
    lease_ms: i64,
    now_ms: i64,
    limit: i64,
) -> Result<Vec<BattleJob>, sqlx::Error> {
    let pending = "SELECT id FROM battles WHERE status = 'PENDING' ORDER BY created_at_ms";
    claim_from(db, pending, owner, lease_ms, now_ms, limit).await
}

/// Claims the first `limit` battles `candidates` lists (a SELECT of ids, in order, that may
/// use `$3`, the time).
async fn claim_from(
    db: &Db,
    candidates: &str,
    owner: &str,
    lease_ms: i64,
    now_ms: i64,
    limit: i64,
) -> Result<Vec<BattleJob>, sqlx::Error> {
    let lock = db.dialect.lock(Lock::Claim);
    let sql = format!(
        "UPDATE battles SET status = 'RUNNING', lease_owner = $1, lease_until_ms = $2, \
             attempts = attempts + 1, updated_at_ms = $3 \
         WHERE id IN ({candidates} LIMIT $4{lock}) \
         RETURNING id, fighters_json, seed, prompt, attempts, created_by"
    );
    let rows = sqlx::query(&sql)
        .bind(owner)
        .bind(now_ms + lease_ms)
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&db.writer)
        .await?;
    rows.iter().map(job_from_row).collect()
}

fn vote_agrees(vote: &Vote, winner: Option<&str>) -> Option<i64> {
    match (vote.valid_winner(), winner) {
        (Some(v), Some(w)) => Some(i64::from(v == w)),
        _ => None,
    }
}

/// One vote row: the battle, the vote, the final winner it is compared with, and the key of
/// its stored result.
struct VoteRow<'a> {
    battle_id: &'a str,
    vote: &'a Vote,
    winner: Option<&'a str>,
    result: Option<ResultHash>,
}

impl<'a> VoteRow<'a> {
    /// The row of `vote`, its result added to `results`.
    fn new(
        battle_id: &'a str,
        vote: &'a Vote,
        winner: Option<&'a str>,
        results: &mut ResultRows<'a>,
    ) -> VoteRow<'a> {
        VoteRow {
            battle_id,
            vote,
            winner,
            result: stored_result(battle_id, vote, results),
        }
    }

    fn columns(&self) -> VoteColumns<'a> {
        let v = self.vote;
        VoteColumns {
            battle_id: self.battle_id,
            node_id: &v.node_id,
            role: v.role.as_str(),
            voted_winner_id: v.winner.as_deref(),
            result_hash: self.result,
            response_time_ms: i64::try_from(v.latency_ms).unwrap_or(i64::MAX),
            is_valid: i64::from(v.valid),
            agrees: vote_agrees(v, self.winner),
            error: v.error.as_deref(),
        }
    }
}

/// Largest rejected result kept with an invalid vote; a hostile node cannot bloat the table.
const MAX_INVALID_RESULT_BYTES: usize = 16 * 1024;

/// The result kept with a vote: the full result of a valid vote, a rejected one only if small.
fn stored_result<'a>(
    battle_id: &'a str,
    vote: &Vote,
    results: &mut ResultRows<'a>,
) -> Option<ResultHash> {
    let result = vote.result.as_ref()?;
    if vote.valid {
        return results.add(battle_id, result, vote.result_hash.as_ref());
    }
    let json = serde_json::to_vec(result).ok()?;
    (json.len() <= MAX_INVALID_RESULT_BYTES).then(|| results.add_json(battle_id, &json))
}

/// Rows per `INSERT`: well under SQLite's and PostgreSQL's bound-parameter limits.
const VOTE_ROWS_PER_STATEMENT: usize = 500;

async fn insert_vote_rows(
    tx: &mut Tx,
    rows: &[VoteRow<'_>],
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let columns: Vec<VoteColumns<'_>> = rows.iter().map(VoteRow::columns).collect();
    if crate::db::is_postgres(tx) {
        // One shape for any number of rows (see `db::json_rows`).
        sqlx::query(
            "INSERT INTO battle_votes (battle_id, node_id, role, voted_winner_id, result_hash, \
                 response_time_ms, is_valid, agrees, error, created_at_ms) \
             SELECT r.battle_id, r.node_id, r.role, r.voted_winner_id, \
                 decode(r.result_hash, 'hex'), r.response_time_ms, r.is_valid, r.agrees, \
                 r.error, $2 \
             FROM json_to_recordset(CAST($1 AS JSON)) AS r (battle_id TEXT, node_id TEXT, \
                 role TEXT, voted_winner_id TEXT, result_hash TEXT, response_time_ms BIGINT, \
                 is_valid BIGINT, agrees BIGINT, error TEXT) \
             ON CONFLICT (battle_id, node_id) DO NOTHING",
        )
        .bind(crate::db::json_rows(&columns)?)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
        return Ok(());
    }
    // `QueryBuilder` on `Any` writes `?` placeholders, which PostgreSQL refuses: number them.
    const COLUMNS: usize = 10;
    for chunk in columns.chunks(VOTE_ROWS_PER_STATEMENT) {
        let mut sql = String::from(
            "INSERT INTO battle_votes (battle_id, node_id, role, voted_winner_id, result_hash, \
                 response_time_ms, is_valid, agrees, error, created_at_ms) VALUES ",
        );
        sql.push_str(&crate::db::values_placeholders(tx, chunk.len(), COLUMNS));
        sql.push_str(" ON CONFLICT (battle_id, node_id) DO NOTHING");
        let mut query = crate::db::one_off(&sql);
        for c in chunk {
            query = query
                .bind(c.battle_id.to_owned())
                .bind(c.node_id.to_owned())
                .bind(c.role)
                .bind(c.voted_winner_id.map(str::to_owned))
                .bind(c.result_hash.map(|h| h.to_vec()))
                .bind(c.response_time_ms)
                .bind(c.is_valid)
                .bind(c.agrees)
                .bind(c.error.map(str::to_owned))
                .bind(now_ms);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// The columns of one `battle_votes` row, as `insert_vote_rows` writes them.
#[derive(Serialize)]
struct VoteColumns<'a> {
    battle_id: &'a str,
    node_id: &'a str,
    role: &'static str,
    voted_winner_id: Option<&'a str>,
    #[serde(serialize_with = "crate::db::hex_bytes")]
    result_hash: Option<ResultHash>,
    response_time_ms: i64,
    is_valid: i64,
    agrees: Option<i64>,
    error: Option<&'a str>,
}

/// One battle's verdict and votes, ready to be written.
pub struct Settlement<'a> {
    pub job: &'a BattleJob,
    pub verdict: &'a Verdict,
    pub votes: &'a [Vote],
    /// The verdict's result made ready before the transaction ([`Prepared::of`]); `None`: made
    /// in the transaction.
    pub published: Option<&'a Prepared>,
}

/// Adds `s`'s published result (if its verdict has one) to `results`; its key.
fn publish<'a>(results: &mut ResultRows<'a>, s: &Settlement<'a>) -> Option<ResultHash> {
    let result = s.verdict.result()?;
    match s.published {
        Some(prepared) => Some(results.add_prepared(&s.job.id, prepared)),
        None => results.add(&s.job.id, result, None),
    }
}

/// Writes the votes and the verdict in one transaction, only if `owner` still holds the
/// battle, together with the verdict's registered effects. Returns false when someone else
/// settled it first.
pub async fn settle(
    db: &Db,
    settlement: &Settlement<'_>,
    owner: &str,
    effects: &VerdictEffects,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let written = settle_many(db, std::slice::from_ref(settlement), owner, effects, now_ms).await?;
    Ok(written.first().copied().unwrap_or(false))
}

/// Writes many battles' verdicts and votes in one transaction (group commit); for each,
/// whether it was still this owner's to settle. Any error fails the whole batch.
pub async fn settle_many(
    db: &Db,
    settlements: &[Settlement<'_>],
    owner: &str,
    effects: &VerdictEffects,
    now_ms: i64,
) -> Result<Vec<bool>, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let mut ids = std::collections::HashSet::new();
    if settlements.len() > 1 && settlements.iter().all(|s| ids.insert(s.job.id.as_str())) {
        let written = settle_distinct(&mut tx, settlements, owner, effects, now_ms).await?;
        tx.commit().await?;
        return Ok(written);
    }
    let mut written = Vec::with_capacity(settlements.len());
    let mut rows: Vec<VoteRow<'_>> = Vec::new();
    let mut results = ResultRows::default();
    for s in settlements {
        let mark = results.mark();
        let published = publish(&mut results, s);
        let ok = write_verdict(&mut tx, s, published, owner, effects, now_ms).await?;
        if ok {
            rows.extend(
                s.votes
                    .iter()
                    .map(|vote| VoteRow::new(&s.job.id, vote, s.verdict.winner(), &mut results)),
            );
        } else {
            results.truncate(mark);
        }
        written.push(ok);
    }
    results.insert(&mut tx).await?;
    insert_vote_rows(&mut tx, &rows, now_ms).await?;
    tx.commit().await?;
    Ok(written)
}

/// `settle_many` for battles that are all different: one multi-row guarded `UPDATE` for every
/// verdict, then the effects of those that were ours (each effect over the batch at once), the
/// results and the votes.
async fn settle_distinct(
    tx: &mut Tx,
    settlements: &[Settlement<'_>],
    owner: &str,
    effects: &VerdictEffects,
    now_ms: i64,
) -> Result<Vec<bool>, sqlx::Error> {
    let mut results = ResultRows::default();
    let published: Vec<Option<ResultHash>> = settlements
        .iter()
        .map(|s| publish(&mut results, s))
        .collect();
    let updated = update_verdicts(tx, settlements, &published, owner, now_ms).await?;
    let mut written = Vec::with_capacity(settlements.len());
    let mut rows: Vec<VoteRow<'_>> = Vec::new();
    let mut ours = Vec::with_capacity(settlements.len());
    for s in settlements {
        let ok = updated.contains(s.job.id.as_str());
        if ok {
            ours.push(settled(s, now_ms));
            rows.extend(
                s.votes
                    .iter()
                    .map(|vote| VoteRow::new(&s.job.id, vote, s.verdict.winner(), &mut results)),
            );
        } else {
            results.drop_battle(&s.job.id);
        }
        written.push(ok);
    }
    effects.apply_many(tx, &ours).await?;
    results.insert(tx).await?;
    insert_vote_rows(tx, &rows, now_ms).await?;
    Ok(written)
}

/// The guarded status change of many battles in one statement; returns the ids that were
/// still RUNNING under `owner` (the others were settled elsewhere).
async fn update_verdicts(
    tx: &mut Tx,
    settlements: &[Settlement<'_>],
    published: &[Option<ResultHash>],
    owner: &str,
    now_ms: i64,
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    let rows: Vec<VerdictRow<'_>> = settlements
        .iter()
        .zip(published)
        .map(|(s, hash)| VerdictRow::new(s, *hash))
        .collect();
    let sqlite_sql: String;
    let query = if crate::db::is_postgres(tx) {
        // One shape for any number of rows (see `db::json_rows`).
        sqlx::query(
            "UPDATE battles SET status = v.status, winner_id = v.winner, \
                 settled_by = v.settled_by, fallback_engine = v.engine, \
                 result_hash = decode(v.hash, 'hex'), error = v.error, lease_owner = NULL, \
                 lease_until_ms = NULL, settled_at_ms = $2, updated_at_ms = $2 \
             FROM json_to_recordset(CAST($1 AS JSON)) AS v (vid TEXT, status TEXT, \
                 winner TEXT, settled_by TEXT, engine TEXT, hash TEXT, error TEXT) \
             WHERE battles.id = v.vid AND battles.status = 'RUNNING' \
                 AND battles.lease_owner = $3 RETURNING id",
        )
        .bind(crate::db::json_rows(&rows)?)
        .bind(now_ms)
        .bind(owner.to_owned())
    } else {
        let mut params = crate::db::Params::of(tx);
        let mut values = Vec::with_capacity(rows.len());
        for _ in &rows {
            let mut text = || format!("CAST({} AS TEXT)", params.take());
            let row = [text(), text(), text(), text(), text()].join(", ");
            let hash = format!("CAST({} AS BLOB)", params.take());
            let error = format!("CAST({} AS TEXT)", params.take());
            values.push(format!("({row}, {hash}, {error})"));
        }
        // A CTE names the VALUES columns; `vid` keeps `id` in RETURNING unambiguous.
        sqlite_sql = format!(
            "WITH v (vid, status, winner, settled_by, engine, hash, error) AS (VALUES {}) \
             UPDATE battles SET status = v.status, winner_id = v.winner, \
                 settled_by = v.settled_by, fallback_engine = v.engine, result_hash = v.hash, \
                 error = v.error, lease_owner = NULL, lease_until_ms = NULL, \
                 settled_at_ms = {settled_at}, updated_at_ms = {updated_at} \
             FROM v WHERE battles.id = v.vid AND battles.status = 'RUNNING' \
                 AND battles.lease_owner = {owner} RETURNING id",
            values.join(", "),
            // Each placeholder once: on SQLite every `?` is a parameter of its own.
            settled_at = params.take(),
            updated_at = params.take(),
            owner = params.take(),
        );
        let mut query = crate::db::one_off(&sqlite_sql);
        for row in &rows {
            query = query
                .bind(row.vid.to_owned())
                .bind(row.status)
                .bind(row.winner.map(str::to_owned))
                .bind(row.settled_by)
                .bind(row.engine.map(str::to_owned))
                .bind(row.hash.map(|h| h.to_vec()))
                .bind(row.error.map(str::to_owned));
        }
        query.bind(now_ms).bind(now_ms).bind(owner.to_owned())
    };
    let ids: Vec<String> = query
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|row| row.try_get("id"))
        .collect::<Result<_, _>>()?;
    Ok(ids.into_iter().collect())
}

/// What a verdict's status change writes (one row of `update_verdicts`).
#[derive(Serialize)]
struct VerdictRow<'a> {
    vid: &'a str,
    status: &'static str,
    winner: Option<&'a str>,
    settled_by: Option<&'static str>,
    engine: Option<&'a str>,
    #[serde(serialize_with = "crate::db::hex_bytes")]
    hash: Option<ResultHash>,
    error: Option<&'a str>,
}

impl<'a> VerdictRow<'a> {
    fn new(s: &Settlement<'a>, hash: Option<ResultHash>) -> Self {
        let settled_by = SettledBy::of(s.verdict);
        let (engine, error) = match s.verdict {
            Verdict::Quorum { .. } => (None, None),
            Verdict::Fallback { engine, reason, .. } => {
                (Some(engine.as_str()), Some(reason.as_str()))
            }
            Verdict::Error(e) => (None, Some(e.as_str())),
        };
        VerdictRow {
            vid: &s.job.id,
            status: match settled_by {
                Some(_) => Status::Completed.as_str(),
                None => Status::Error.as_str(),
            },
            winner: s.verdict.winner(),
            settled_by: settled_by.map(SettledBy::as_str),
            engine,
            hash,
            error,
        }
    }
}

fn settled<'a>(s: &'a Settlement<'_>, now_ms: i64) -> Settled<'a> {
    Settled {
        battle_id: &s.job.id,
        created_by: s.job.created_by.as_deref(),
        verdict: s.verdict,
        now_ms,
    }
}

/// The guarded status change and its effects; false when the battle is not ours.
async fn write_verdict(
    tx: &mut Tx,
    settlement: &Settlement<'_>,
    published: Option<ResultHash>,
    owner: &str,
    effects: &VerdictEffects,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let c = VerdictRow::new(settlement, published);
    let job = settlement.job;
    let updated = sqlx::query(
        "UPDATE battles SET status = $1, winner_id = $2, settled_by = $3, fallback_engine = $4, \
             result_hash = $5, error = $6, lease_owner = NULL, lease_until_ms = NULL, \
             settled_at_ms = $7, updated_at_ms = $7 \
         WHERE id = $8 AND status = 'RUNNING' AND lease_owner = $9",
    )
    .bind(c.status)
    .bind(c.winner)
    .bind(c.settled_by)
    .bind(c.engine)
    .bind(c.hash.map(|h| h.to_vec()))
    .bind(c.error)
    .bind(now_ms)
    .bind(&job.id)
    .bind(owner)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Ok(false);
    }
    effects.apply(tx, &settled(settlement, now_ms)).await?;
    Ok(true)
}

/// Votes of one battle that arrived after its verdict.
#[derive(Debug, Clone)]
pub struct LateVotes {
    pub battle_id: String,
    pub winner: Option<String>,
    pub votes: Vec<Vote>,
    /// The key of the verdict's result, stored with the verdict: a late vote that agrees
    /// needs no result row of its own.
    pub published: Option<ResultHash>,
}

/// Records the late votes of many battles in one transaction.
pub async fn record_late_votes(
    db: &Db,
    batch: &[LateVotes],
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let mut results = ResultRows::default();
    let mut rows: Vec<VoteRow<'_>> = Vec::new();
    for late in batch {
        if let Some(hash) = late.published {
            results.stored(&late.battle_id, hash);
        }
        for vote in &late.votes {
            rows.push(VoteRow::new(
                &late.battle_id,
                vote,
                late.winner.as_deref(),
                &mut results,
            ));
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin_write().await?;
    results.insert(&mut tx).await?;
    insert_vote_rows(&mut tx, &rows, now_ms).await?;
    tx.commit().await
}

/// A stored vote as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct VoteView {
    pub node_id: String,
    pub node_name: Option<String>,
    pub role: String,
    pub voted_winner_id: Option<String>,
    #[sqlx(try_from = "crate::db::Flag")]
    pub is_valid: bool,
    /// Whether a valid vote named the final winner (null for invalid votes).
    #[sqlx(try_from = "crate::db::MaybeFlag")]
    pub agrees: Option<bool>,
    pub response_time_ms: i64,
    pub error: Option<String>,
}

/// A battle as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BattleView {
    pub id: String,
    pub status: String,
    pub fighters: Vec<Fighter>,
    pub seed: u64,
    pub winner_id: Option<String>,
    pub settled_by: Option<String>,
    pub fallback_engine: Option<String>,
    pub battle_log: Vec<hero_protocol::BattleLogEntry>,
    pub battle_description: Option<String>,
    pub error: Option<String>,
    pub attempts: i64,
    pub created_by: Option<String>,
    pub created_at_ms: i64,
    pub settled_at_ms: Option<i64>,
    pub votes: Vec<VoteView>,
}

/// Who created a battle, as the public sees it: a player's id, `ladder`, or `admin` (the
/// admin's name stays in the database, for the audit).
fn public_creator(created_by: String) -> String {
    if created_by.starts_with("admin:") {
        "admin".to_owned()
    } else {
        created_by
    }
}

pub async fn get(db: &Db, id: &str) -> Result<Option<BattleView>, sqlx::Error> {
    let Some(row) = sqlx::query(
        "SELECT b.id, b.status, b.fighters_json, b.seed, b.winner_id, b.settled_by, \
             b.fallback_engine, b.result_json, r.body AS result_body, b.error, b.attempts, \
             b.created_by, b.created_at_ms, b.settled_at_ms \
         FROM battles b \
         LEFT JOIN battle_results r ON r.battle_id = b.id AND r.hash = b.result_hash \
         WHERE b.id = $1",
    )
    .bind(id)
    .fetch_optional(&db.pool)
    .await?
    else {
        return Ok(None);
    };
    let decode = |e: serde_json::Error| sqlx::Error::Decode(Box::new(e));
    let fighters: Vec<Fighter> =
        serde_json::from_str(&row.try_get::<String, _>("fighters_json")?).map_err(decode)?;
    // Rows written before results were stored apart keep their JSON inline.
    let result: Option<BattleResult> = match row.try_get::<Option<Vec<u8>>, _>("result_body")? {
        Some(body) => Some(results::decode(&body)?),
        None => row
            .try_get::<Option<String>, _>("result_json")?
            .map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(decode)?,
    };
    let votes: Vec<VoteView> = sqlx::query_as(
        "SELECT v.node_id, n.name AS node_name, v.role, v.voted_winner_id, v.is_valid, v.agrees, \
             v.response_time_ms, v.error \
         FROM battle_votes v LEFT JOIN nodes n ON n.id = v.node_id \
         WHERE v.battle_id = $1 ORDER BY v.created_at_ms, v.node_id",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?;
    let (battle_log, battle_description) = match result {
        Some(r) => (r.battle_log, Some(r.battle_description)),
        None => (Vec::new(), None),
    };
    Ok(Some(BattleView {
        id: row.try_get("id")?,
        status: row.try_get("status")?,
        fighters,
        seed: u64::try_from(row.try_get::<i64, _>("seed")?).unwrap_or(0),
        winner_id: row.try_get("winner_id")?,
        settled_by: row.try_get("settled_by")?,
        fallback_engine: row.try_get("fallback_engine")?,
        battle_log,
        battle_description,
        error: row.try_get("error")?,
        attempts: row.try_get("attempts")?,
        created_by: row
            .try_get::<Option<String>, _>("created_by")?
            .map(public_creator),
        created_at_ms: row.try_get("created_at_ms")?,
        settled_at_ms: row.try_get("settled_at_ms")?,
        votes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::VoteRole;
    use hero_protocol::{BattleLogEntry, BattleResult};

    fn vote(valid: bool, text_len: usize) -> Vote {
        Vote {
            node_id: "n".into(),
            role: VoteRole::Selected,
            winner: Some("c1".into()),
            result: Some(BattleResult {
                winner: "c1".into(),
                battle_log: vec![BattleLogEntry {
                    text: "x".repeat(text_len),
                    ..BattleLogEntry::default()
                }],
                battle_description: "d".into(),
            }),
            latency_ms: 1,
            valid,
            error: None,
            result_hash: None,
            reputation: 1.0,
            busy_retry_after_ms: None,
            answered_at: std::time::Instant::now(),
            after_verdict: false,
            elapsed: std::time::Duration::ZERO,
            superseded: false,
            cut_short: false,
        }
    }

    #[test]
    fn large_rejected_results_are_not_kept() {
        let mut results = ResultRows::default();
        assert!(stored_result("b", &vote(false, 100), &mut results).is_some());
        assert!(stored_result("b", &vote(false, MAX_INVALID_RESULT_BYTES), &mut results).is_none());
        assert!(stored_result("b", &vote(true, MAX_INVALID_RESULT_BYTES), &mut results).is_some());
    }

    #[test]
    fn only_custom_prompts_are_stored() {
        let fighters: Vec<Fighter> = serde_json::from_value(serde_json::json!([
            {"id": "c1", "name": "Aria", "strength": 60, "agility": 40, "luck": 30, "rarity": 3,
             "skill_description": "Storm blade"},
            {"id": "c2", "name": "Borin", "strength": 45, "agility": 55, "luck": 35, "rarity": 2,
             "skill_description": "Shield bash"}
        ]))
        .unwrap();
        let default = hero_engine::request_prompt(&fighters);
        assert_eq!(stored_prompt(&default, &fighters), "");
        assert_eq!(stored_prompt("a duel at dawn", &fighters), "a duel at dawn");
    }
}
