//! The daily `cleanup` task: deletes what is past its retention — settled battles with their
//! votes, results and player sides, idempotency keys, expired refresh tokens and sessions with none
//! left, sign-in nonces past their life and per-day battle counts of past days. Ledger rows, ladder ranks, scheduled battles and bets are kept: they are the money's
//! and the season's history.

use crate::db::Tx;

const DAY_MS: i64 = 86_400_000;

/// How long what `cleanup` deletes is kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Days settled battles (and ended sessions) are kept; 0 keeps them for ever.
    pub retention_days: u32,
    pub idempotency_retention_ms: i64,
}

impl Retention {
    pub fn from_args(args: &super::SchedulerArgs) -> Retention {
        Retention {
            retention_days: args.retention_days,
            idempotency_retention_ms: args.idempotency_retention,
        }
    }
}

pub struct Cleanup(pub Retention);

#[async_trait::async_trait]
impl super::Task for Cleanup {
    fn name(&self) -> &'static str {
        "cleanup"
    }

    async fn run(&self, tx: &mut Tx, _slot_ms: i64, now_ms: i64) -> anyhow::Result<String> {
        let keys = sqlx::query("DELETE FROM idempotency_keys WHERE created_at_ms < $1")
            .bind(now_ms - self.0.idempotency_retention_ms)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        let tokens = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at_ms < $1")
            .bind(now_ms)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        // A spent nonce is kept while it could still be presented; once expired it is refused
        // by its own expiry.
        let nonces = sqlx::query("DELETE FROM siwe_nonces WHERE expires_at_ms < $1")
            .bind(now_ms)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        let pairs = sqlx::query("DELETE FROM battle_pairs WHERE day < $1")
            .bind(now_ms.div_euclid(DAY_MS) - 1)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        let small = format!(
            "{keys} idempotency keys, {tokens} expired refresh tokens, {nonces} sign-in nonces, \
             {pairs} daily battle counts"
        );
        if self.0.retention_days == 0 {
            return Ok(format!(
                "deleted {small}; battles and sessions kept (retention 0)"
            ));
        }
        let cutoff = now_ms - i64::from(self.0.retention_days) * DAY_MS;
        let sessions = sqlx::query(
            "DELETE FROM sessions WHERE created_at_ms < $1 \
             AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.session_id = sessions.id)",
        )
        .bind(cutoff)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        let old = "SELECT id FROM battles WHERE settled_at_ms < $1 \
                   AND status IN ('COMPLETED', 'ERROR')";
        let votes = sqlx::query(&format!(
            "DELETE FROM battle_votes WHERE battle_id IN ({old})"
        ))
        .bind(cutoff)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        sqlx::query(&format!(
            "DELETE FROM battle_results WHERE battle_id IN ({old})"
        ))
        .bind(cutoff)
        .execute(&mut **tx)
        .await?;
        sqlx::query(&format!(
            "DELETE FROM game_battles WHERE battle_id IN ({old})"
        ))
        .bind(cutoff)
        .execute(&mut **tx)
        .await?;
        let battles = sqlx::query(
            "DELETE FROM battles WHERE settled_at_ms < $1 AND status IN ('COMPLETED', 'ERROR')",
        )
        .bind(cutoff)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        Ok(format!(
            "deleted {battles} battles, {votes} votes, {sessions} sessions, {small}"
        ))
    }
}
