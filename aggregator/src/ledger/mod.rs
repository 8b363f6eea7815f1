//! The Ledger: the one place a player's gold, prompt, prompt_power, exp_potion or energy
//! changes. Each change is a conditional UPDATE (a balance never goes below zero, and the
//! schema's CHECK refuses it too) plus a ledger row, inside the caller's transaction.

pub mod energy;
pub mod history;
mod spends;

pub use spends::EnergySpends;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use crate::db::{Dialect, Lock, Tx};
use crate::http::ApiError;

/// A player resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    Gold,
    Prompt,
    PromptPower,
    ExpPotion,
    Energy,
}

impl Resource {
    pub const ALL: [Resource; 5] = [
        Resource::Gold,
        Resource::Prompt,
        Resource::PromptPower,
        Resource::ExpPotion,
        Resource::Energy,
    ];

    /// Column of `players` (and value of `ledger.resource`).
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Gold => "gold",
            Resource::Prompt => "prompt",
            Resource::PromptPower => "prompt_power",
            Resource::ExpPotion => "exp_potion",
            Resource::Energy => "energy",
        }
    }

    pub fn parse(s: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// One change to one balance.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub player: &'a str,
    pub resource: Resource,
    /// Positive credits, negative debits.
    pub delta: i64,
    /// Why: `signup`, `summon`, `battle`, `battle_reward`, `quest_reward`, ...
    pub reason: &'a str,
    /// What it is about (a character, battle or quest id).
    pub reference: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("not enough {resource}: have {have}, need {need}")]
    Insufficient {
        resource: &'static str,
        have: i64,
        need: i64,
    },
    #[error("no such player")]
    NoPlayer,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Insufficient { .. } => ApiError::Conflict(e.to_string()),
            LedgerError::NoPlayer => ApiError::NotFound("no such player".into()),
            LedgerError::Db(e) => ApiError::Database(e),
        }
    }
}

/// How balances change: the dialect (for row locks) and the energy regeneration period.
#[derive(Debug, Clone, Copy)]
pub struct Ledger {
    pub dialect: Dialect,
    pub energy_regen_ms: i64,
}

impl Ledger {
    /// Applies `change` and records it; returns the balance after it.
    pub async fn apply(
        &self,
        tx: &mut Tx,
        change: Change<'_>,
        now_ms: i64,
    ) -> Result<i64, LedgerError> {
        if change.resource == Resource::Energy {
            self.regenerate(tx, change.player, now_ms).await?;
        }
        let column = change.resource.as_str();
        // `column` comes from a closed enum, never from input.
        let sql = format!(
            "UPDATE players SET {column} = {column} + $2 \
             WHERE id = $1 AND {column} + $2 >= 0 RETURNING {column}"
        );
        let balance: Option<i64> = sqlx::query_scalar(&sql)
            .bind(change.player)
            .bind(change.delta)
            .fetch_optional(&mut **tx)
            .await?;
        let Some(balance) = balance else {
            let have: Option<i64> =
                sqlx::query_scalar(&format!("SELECT {column} FROM players WHERE id = $1"))
                    .bind(change.player)
                    .fetch_optional(&mut **tx)
                    .await?;
            return Err(match have {
                Some(have) => LedgerError::Insufficient {
                    resource: column,
                    have,
                    need: -change.delta,
                },
                None => LedgerError::NoPlayer,
            });
        };
        record(tx, &change, balance, now_ms).await?;
        Ok(balance)
    }

    /// A credit (delta ≥ 0), which cannot run short; only database errors remain.
    pub async fn credit(
        &self,
        tx: &mut Tx,
        change: Change<'_>,
        now_ms: i64,
    ) -> Result<i64, sqlx::Error> {
        match self.apply(tx, change, now_ms).await {
            Ok(balance) => Ok(balance),
            Err(LedgerError::Db(e)) => Err(e),
            Err(other) => Err(sqlx::Error::Protocol(format!(
                "credit of {} to {} failed: {other}",
                change.resource.as_str(),
                change.player
            ))),
        }
    }

    /// Credits (each ≥ 0) of any players and resources, written as if one after another: one
    /// UPDATE of every balance they change and one multi-row ledger INSERT, each row with the
    /// balance the changes in order give. Every player is locked in id order first (on
    /// PostgreSQL); energy credits, which regenerate first, then go one by one through
    /// [`Ledger::apply`].
    pub async fn credit_many(
        &self,
        tx: &mut Tx,
        changes: &[Change<'_>],
        now_ms: i64,
    ) -> Result<(), sqlx::Error> {
        if let Some(debit) = changes.iter().find(|c| c.delta < 0) {
            return Err(sqlx::Error::Protocol(format!(
                "credit_many takes credits only, not {} {} of {}",
                debit.delta,
                debit.resource.as_str(),
                debit.player
            )));
        }
        let mut everyone: Vec<&str> = changes.iter().map(|c| c.player).collect();
        everyone.sort_unstable();
        everyone.dedup();
        crate::db::lock_in_order(tx, self.dialect, "players", &everyone).await?;
        let (together, energy): (Vec<&Change<'_>>, Vec<&Change<'_>>) =
            changes.iter().partition(|c| c.resource != Resource::Energy);
        for change in energy {
            self.credit(tx, *change, now_ms).await?;
        }
        if together.is_empty() {
            return Ok(());
        }
        // The resources named, and each player's total of each, players in id order.
        let mut resources: Vec<Resource> = Vec::new();
        for change in &together {
            if !resources.contains(&change.resource) {
                resources.push(change.resource);
            }
        }
        let slot = |r: Resource| resources.iter().position(|x| *x == r).unwrap_or(0);
        let mut totals: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
        for change in &together {
            totals
                .entry(change.player)
                .or_insert_with(|| vec![0; resources.len()])[slot(change.resource)] += change.delta;
        }
        let players: Vec<&str> = totals.keys().copied().collect();
        let deltas: Vec<String> = (0..resources.len()).map(|i| format!("d{i}")).collect();
        let mut columns = vec![("pid", "TEXT")];
        columns.extend(deltas.iter().map(|d| (d.as_str(), "BIGINT")));
        let mut params = crate::db::Params::of(tx);
        let cte = crate::db::values_cte(&mut params, &columns, players.len());
        // The columns come from a closed enum, never from input.
        let names: Vec<&str> = resources.iter().map(|r| r.as_str()).collect();
        let sets: Vec<String> = names
            .iter()
            .zip(&deltas)
            .map(|(c, d)| format!("{c} = players.{c} + v.{d}"))
            .collect();
        let sql = format!(
            "{cte} UPDATE players SET {} FROM v WHERE players.id = v.pid RETURNING id, {}",
            sets.join(", "),
            names.join(", ")
        );
        let mut update = crate::db::one_off(&sql);
        for (player, amounts) in &totals {
            update = update.bind(*player);
            for amount in amounts {
                update = update.bind(*amount);
            }
        }
        let mut balances: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for row in update.fetch_all(&mut **tx).await? {
            let id: String = row.try_get(0)?;
            let values = (1..=resources.len())
                .map(|i| row.try_get::<i64, _>(i))
                .collect::<Result<Vec<_>, _>>()?;
            balances.insert(id, values);
        }
        if let Some(missing) = players.iter().find(|p| !balances.contains_key(**p)) {
            return Err(sqlx::Error::Protocol(format!(
                "credit to {missing} failed: no such player"
            )));
        }
        // Walking back from the final balances gives each change's balance after it.
        let mut rows: Vec<(Change<'_>, i64)> = Vec::with_capacity(together.len());
        for change in together.iter().rev() {
            let running = &mut balances
                .get_mut(change.player)
                .ok_or_else(|| sqlx::Error::Protocol("a credited player vanished".into()))?
                [slot(change.resource)];
            rows.push((**change, *running));
            *running -= change.delta;
        }
        rows.reverse();
        record_all(tx, &rows, now_ms).await
    }

    /// Writes the energy regenerated since the last update into the balance (and the ledger),
    /// so every later change starts from the true value.
    async fn regenerate(&self, tx: &mut Tx, player: &str, now_ms: i64) -> Result<(), LedgerError> {
        // NO KEY UPDATE: foreign keys pointing at this player (another player's battle naming
        // them as defender) take KEY SHARE, which must not wait on this lock.
        let lock = self.dialect.lock(Lock::Update);
        let Some(row) = sqlx::query(&format!(
            "SELECT energy, max_energy, energy_updated_at_ms FROM players WHERE id = $1{lock}"
        ))
        .bind(player)
        .fetch_optional(&mut **tx)
        .await?
        else {
            return Err(LedgerError::NoPlayer);
        };
        let (energy, max, since): (i64, i64, i64) = (
            row.try_get("energy")?,
            row.try_get("max_energy")?,
            row.try_get("energy_updated_at_ms")?,
        );
        let (now_energy, now_since) =
            energy::regenerate(energy, max, since, now_ms, self.energy_regen_ms);
        if (now_energy, now_since) == (energy, since) {
            return Ok(());
        }
        sqlx::query(
            "UPDATE players SET energy = $2, energy_updated_at_ms = $3 \
             WHERE id = $1 AND energy = $4 AND energy_updated_at_ms = $5",
        )
        .bind(player)
        .bind(now_energy)
        .bind(now_since)
        .bind(energy)
        .bind(since)
        .execute(&mut **tx)
        .await?;
        if now_energy > energy {
            let change = Change {
                player,
                resource: Resource::Energy,
                delta: now_energy - energy,
                reason: "energy_regen",
                reference: None,
            };
            record(tx, &change, now_energy, now_ms).await?;
        }
        Ok(())
    }
}

async fn record(
    tx: &mut Tx,
    change: &Change<'_>,
    balance: i64,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    record_all(tx, &[(*change, balance)], now_ms).await
}

/// Ledger rows of `changes`, each with the balance after it, in one INSERT.
async fn record_all(
    tx: &mut Tx,
    changes: &[(Change<'_>, i64)],
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO ledger (id, player_id, resource, delta, balance_after, reason, reference, \
             created_at_ms) VALUES {}",
        crate::db::values_placeholders(tx, changes.len(), 8)
    );
    // Batches of every size would each stay prepared; one row is the common statement.
    let mut insert = if changes.len() == 1 {
        sqlx::query(&sql)
    } else {
        crate::db::one_off(&sql)
    };
    for (change, balance) in changes {
        insert = insert
            .bind(crate::db::time_ordered_id())
            .bind(change.player)
            .bind(change.resource.as_str())
            .bind(change.delta)
            .bind(*balance)
            .bind(change.reason)
            .bind(change.reference)
            .bind(now_ms);
    }
    insert.execute(&mut **tx).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_round_trip_through_their_names() {
        for r in Resource::ALL {
            assert_eq!(Resource::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        assert_eq!(Resource::parse("diamonds"), None);
    }
}
