//! Background upkeep of the registry: batched flushes of heartbeats and counters to the
//! database, and syncing nodes other replicas registered.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::store::{self, NodeFlush};
use super::{NodeEntry, NodeRegistry};
use crate::clock::SharedClock;
use crate::db::Db;

/// Writes every dirty node in one transaction; returns how many were written.
pub async fn flush_once(
    db: &Db,
    registry: &NodeRegistry,
    clock: &SharedClock,
) -> anyhow::Result<usize> {
    let dirty: Vec<_> = registry
        .all()
        .into_iter()
        .filter(|n| n.dirty.swap(false, Ordering::AcqRel))
        .collect();
    let flushed = |n: &NodeEntry| match n.flushed.lock() {
        Ok(f) => f.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    let rows: Vec<NodeFlush> = dirty
        .iter()
        .map(|n| {
            let current = n.snapshot_counters();
            let base = flushed(n);
            NodeFlush {
                id: n.id.clone(),
                last_heartbeat_ms: n.last_heartbeat_ms.load(Ordering::Relaxed),
                added: current.minus(&base),
                current,
                probation: n.on_probation(),
            }
        })
        .collect();
    if let Err(e) = store::flush(db, &rows, clock.now_ms()).await {
        // Try again next time.
        for n in &dirty {
            n.dirty.store(true, Ordering::Release);
        }
        return Err(e.into());
    }
    for (n, row) in dirty.iter().zip(&rows) {
        if let Ok(mut f) = n.flushed.lock() {
            *f = row.current.clone();
        }
    }
    Ok(rows.len())
}

/// Loads nodes the registry does not know yet (heard from within `retention_ms`), newer
/// heartbeats and leaves written by other replicas; then forgets nodes silent for longer.
pub async fn sync_once(
    db: &Db,
    registry: &NodeRegistry,
    now_ms: i64,
    retention_ms: i64,
) -> anyhow::Result<usize> {
    let mut added = 0;
    let cutoff = now_ms.saturating_sub(retention_ms);
    store::each_recent(db, cutoff, |row| {
        match registry.get(&row.id) {
            Some(known) if known.token_hash == row.token_hash => {
                let hb = row.last_heartbeat_ms.load(Ordering::Relaxed);
                known.last_heartbeat_ms.fetch_max(hb, Ordering::Relaxed);
                let mut changed = false;
                if row.left.load(Ordering::Relaxed) && !known.left.swap(true, Ordering::Relaxed) {
                    changed = true;
                }
                // Maintenance and probation set by an admin through another replica.
                let maintenance = row.maintenance.load(Ordering::Relaxed);
                if known.maintenance.swap(maintenance, Ordering::Relaxed) != maintenance {
                    changed = true;
                }
                if !row.on_probation() && known.probation.swap(false, Ordering::Relaxed) {
                    changed = true;
                }
                if changed {
                    registry.changed();
                }
            }
            _ => {
                registry.upsert(row);
                added += 1;
            }
        }
    })
    .await?;
    let forgotten = registry.forget_gone(cutoff);
    if forgotten > 0 {
        tracing::info!(
            forgotten,
            "nodes silent past the retention period left memory"
        );
    }
    Ok(added)
}

/// When the upkeep runs, and what it judges nodes by.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub flush_every: std::time::Duration,
    pub sync_every: std::time::Duration,
    pub offline_after_ms: i64,
    /// Silent nodes leave memory after this long.
    pub retention_ms: i64,
}

/// Runs flush and sync on their intervals until shutdown, then flushes one last time.
pub async fn run(
    db: Db,
    registry: Arc<NodeRegistry>,
    clock: SharedClock,
    schedule: Schedule,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let Schedule {
        flush_every,
        sync_every,
        offline_after_ms,
        retention_ms,
    } = schedule;
    let mut flush_tick = tokio::time::interval(flush_every);
    let mut sync_tick = tokio::time::interval(sync_every);
    flush_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    sync_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = flush_tick.tick() => {
                if let Err(e) = flush_once(&db, &registry, &clock).await {
                    tracing::warn!(error = format!("{e:#}"), "node flush failed; will retry");
                }
                let online = registry.online_count(clock.now_ms(), offline_after_ms);
                metrics::gauge!(crate::http::metrics::NODES_ONLINE).set(online as f64);
            }
            _ = sync_tick.tick() => {
                if let Err(e) = sync_once(&db, &registry, clock.now_ms(), retention_ms).await {
                    tracing::warn!(error = format!("{e:#}"), "node sync failed; will retry");
                }
            }
        }
    }
    if let Err(e) = flush_once(&db, &registry, &clock).await {
        tracing::warn!(error = format!("{e:#}"), "final node flush failed");
    }
}
