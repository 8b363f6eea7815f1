//! The settlement port: what else a verdict changes is not the battle's business. Effects are
//! registered at start-up (player rewards; the ladder's season points and bet payouts) and run
//! in the verdict's own transaction, in registration order, so a verdict and all its effects
//! commit together or not at all.

use std::sync::Arc;

use crate::consensus::Verdict;
use crate::db::Tx;

/// A battle that has just been settled, as an effect sees it.
#[derive(Debug, Clone, Copy)]
pub struct Settled<'a> {
    pub battle_id: &'a str,
    /// Who created the battle (`admin:<name>`, `ladder`, a player's id).
    pub created_by: Option<&'a str>,
    pub verdict: &'a Verdict,
    pub now_ms: i64,
}

impl Settled<'_> {
    /// A battle made through the admin endpoint: no player, season or bet hangs on it, so
    /// effects need not look.
    pub fn by_admin(&self) -> bool {
        self.created_by.is_some_and(super::store::is_admin_creator)
    }
}

/// One consequence of a verdict, applied inside the settling transaction.
///
/// An effect touches rows in the global lock order documented in `docs/architecture.md`
/// (characters, quest rows, players, ledger), so concurrent settlements never deadlock.
/// An error rolls back the verdict too: the battle stays leased and is retried.
#[async_trait::async_trait]
pub trait VerdictEffect: Send + Sync {
    /// Short name for logs.
    fn name(&self) -> &'static str;
    async fn apply(&self, tx: &mut Tx, settled: &Settled<'_>) -> Result<(), sqlx::Error>;

    /// The verdicts of a batch settled together, in order: what applying each in turn does.
    /// An effect that can write a batch in fewer statements overrides it.
    async fn apply_many(&self, tx: &mut Tx, settled: &[Settled<'_>]) -> Result<(), sqlx::Error> {
        for one in settled {
            self.apply(tx, one).await?;
        }
        Ok(())
    }
}

/// The effects of every verdict, in the order they run.
#[derive(Clone, Default)]
pub struct VerdictEffects(Arc<[Arc<dyn VerdictEffect>]>);

impl VerdictEffects {
    pub fn new(effects: Vec<Arc<dyn VerdictEffect>>) -> Self {
        Self(effects.into())
    }

    /// Runs every effect of one verdict.
    pub async fn apply(&self, tx: &mut Tx, settled: &Settled<'_>) -> Result<(), sqlx::Error> {
        for effect in self.0.iter() {
            effect.apply(tx, settled).await.inspect_err(|e| {
                tracing::warn!(effect = effect.name(), battle = settled.battle_id, error = %e,
                    "verdict effect failed; the verdict is rolled back")
            })?;
        }
        Ok(())
    }

    /// Runs every effect of a batch of verdicts: each effect over the whole batch, in
    /// registration order.
    pub async fn apply_many(
        &self,
        tx: &mut Tx,
        settled: &[Settled<'_>],
    ) -> Result<(), sqlx::Error> {
        if settled.is_empty() {
            return Ok(());
        }
        for effect in self.0.iter() {
            effect.apply_many(tx, settled).await.inspect_err(|e| {
                tracing::warn!(effect = effect.name(), battles = settled.len(), error = %e,
                    "verdict effect failed; the verdicts are rolled back")
            })?;
        }
        Ok(())
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|e| e.name()).collect()
    }
}
