//! Energy spent by many battles in one transaction: the players' energy is read once, each
//! spend is decided in memory in order (regeneration first, as [`Ledger::apply`] does), and
//! the spends that went through are written with one UPDATE and one ledger INSERT. Every row
//! and every refusal is the one the spends would give one after another, each in a
//! transaction of its own.

use std::collections::HashMap;

use sqlx::Row;

use super::{Change, Ledger, LedgerError, Resource, energy, record_all};
use crate::db::{Lock, Tx};

/// A player's energy as the spends so far left it.
struct Purse {
    stored: (i64, i64),
    energy: i64,
    since: i64,
    max: i64,
    /// Whether a spend went through (the balance is written).
    spent: bool,
}

/// A ledger row to write: the player, the change, the balance after it, and for a spend the
/// spender's number (its reference is known only once its battle is).
struct Entry {
    player: String,
    delta: i64,
    balance: i64,
    spend: Option<usize>,
}

/// The energy of some players, spent in memory and then written at once.
pub struct EnergySpends {
    ledger: Ledger,
    now_ms: i64,
    purses: HashMap<String, Purse>,
    entries: Vec<Entry>,
}

impl Ledger {
    /// Reads the energy of `players` (locked in id order on PostgreSQL) to spend it in memory.
    pub async fn energy_spends(
        &self,
        tx: &mut Tx,
        players: &[&str],
        now_ms: i64,
    ) -> Result<EnergySpends, sqlx::Error> {
        let mut spends = EnergySpends {
            ledger: *self,
            now_ms,
            purses: HashMap::with_capacity(players.len()),
            entries: Vec::new(),
        };
        if players.is_empty() {
            return Ok(spends);
        }
        let mut params = crate::db::Params::of(tx);
        let list: Vec<String> = players.iter().map(|_| params.take()).collect();
        let sql = format!(
            "SELECT id, energy, max_energy, energy_updated_at_ms FROM players WHERE id IN ({}) \
             ORDER BY id{}",
            list.join(", "),
            self.dialect.lock(Lock::Update)
        );
        let mut select = crate::db::one_off(&sql);
        for player in players {
            select = select.bind(*player);
        }
        for row in select.fetch_all(&mut **tx).await? {
            let (energy, since): (i64, i64) =
                (row.try_get("energy")?, row.try_get("energy_updated_at_ms")?);
            spends.purses.insert(
                row.try_get("id")?,
                Purse {
                    stored: (energy, since),
                    energy,
                    since,
                    max: row.try_get("max_energy")?,
                    spent: false,
                },
            );
        }
        Ok(spends)
    }
}

impl EnergySpends {
    /// Spends `cost` of `player`'s energy for spender number `spend`; the balance after it, or
    /// why not (nothing is then spent).
    pub fn spend(&mut self, player: &str, cost: i64, spend: usize) -> Result<i64, LedgerError> {
        let Some(purse) = self.purses.get_mut(player) else {
            return Err(LedgerError::NoPlayer);
        };
        let (energy, since) = energy::regenerate(
            purse.energy,
            purse.max,
            purse.since,
            self.now_ms,
            self.ledger.energy_regen_ms,
        );
        if energy < cost {
            return Err(LedgerError::Insufficient {
                resource: Resource::Energy.as_str(),
                have: energy,
                need: cost,
            });
        }
        if energy > purse.energy {
            self.entries.push(Entry {
                player: player.to_owned(),
                delta: energy - purse.energy,
                balance: energy,
                spend: None,
            });
        }
        purse.energy = energy - cost;
        purse.since = since;
        purse.spent = true;
        self.entries.push(Entry {
            player: player.to_owned(),
            delta: -cost,
            balance: purse.energy,
            spend: Some(spend),
        });
        Ok(purse.energy)
    }

    /// Writes what was spent: the balances, and the ledger rows in order (`energy_regen`, and
    /// `reason` with `reference(spend)` for each spend).
    pub async fn write(
        self,
        tx: &mut Tx,
        reason: &str,
        reference: impl Fn(usize) -> Option<String>,
    ) -> Result<(), sqlx::Error> {
        let spent: Vec<(&String, &Purse)> = self
            .purses
            .iter()
            .filter(|(_, p)| p.spent && (p.energy, p.since) != p.stored)
            .collect();
        if !spent.is_empty() {
            let mut params = crate::db::Params::of(tx);
            let columns = [("pid", "TEXT"), ("energy", "BIGINT"), ("since", "BIGINT")];
            let cte = crate::db::values_cte(&mut params, &columns, spent.len());
            let sql = format!(
                "{cte} UPDATE players SET energy = v.energy, energy_updated_at_ms = v.since \
                 FROM v WHERE players.id = v.pid"
            );
            let mut update = crate::db::one_off(&sql);
            for (player, purse) in &spent {
                update = update
                    .bind(player.as_str())
                    .bind(purse.energy)
                    .bind(purse.since);
            }
            update.execute(&mut **tx).await?;
        }
        if self.entries.is_empty() {
            return Ok(());
        }
        let references: Vec<Option<String>> = self
            .entries
            .iter()
            .map(|e| e.spend.and_then(&reference))
            .collect();
        let changes: Vec<(Change<'_>, i64)> = self
            .entries
            .iter()
            .zip(&references)
            .map(|(e, r)| {
                let change = Change {
                    player: &e.player,
                    resource: Resource::Energy,
                    delta: e.delta,
                    reason: if e.spend.is_some() {
                        reason
                    } else {
                        "energy_regen"
                    },
                    reference: r.as_deref(),
                };
                (change, e.balance)
            })
            .collect();
        record_all(tx, &changes, self.now_ms).await
    }
}
