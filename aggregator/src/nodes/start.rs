//! `nodes::start`: loads the registry, prepares the local operators, closes an open network
//! that has operators now, and registers the upkeep (flushes and syncs) with the supervisor.

use std::sync::Arc;

use anyhow::Context;

use super::{NodeRegistry, NodesPolicy, maintenance, operators, store};
use crate::clock::SharedClock;
use crate::db::Db;
use crate::supervisor::{Stage, Supervisor};

/// The started nodes domain.
pub struct Nodes {
    pub registry: Arc<NodeRegistry>,
    /// Enrollment tokens of the local operators, one per local node.
    pub local_tokens: Vec<String>,
}

pub async fn start(
    db: &Db,
    clock: &SharedClock,
    policy: &NodesPolicy,
    supervisor: &mut Supervisor,
) -> anyhow::Result<Nodes> {
    let now = clock.now_ms();
    let registry = Arc::new(NodeRegistry::new());
    let retention_ms = policy.schedule.retention_ms;
    store::each_recent(db, now.saturating_sub(retention_ms), |node| {
        registry.upsert(node);
    })
    .await
    .context("loading nodes")?;
    // Local nodes register under local operators of their own (loopback URLs allowed for
    // them alone); their nodes from an earlier run are gone.
    let mut local_tokens = Vec::with_capacity(policy.local_nodes);
    for i in 1..=policy.local_nodes {
        let name = operators::local_name(i);
        let token = operators::ensure_local(db, &name, now)
            .await
            .context("creating the local operators")?;
        store::leave_all_of(db, &name, now).await?;
        local_tokens.push(token);
    }
    if operators::any(db).await? {
        // Operators exist (perhaps created by the CLI while this was down): nodes of the
        // open network must register again with an operator's token.
        for id in store::leave_open_nodes(db, now).await? {
            if let Some(node) = registry.get(&id) {
                node.left.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    } else {
        tracing::warn!(
            "no operator accounts: this is an OPEN network. Any node may register (with \
             --enrollment-token when set), counted as run by its host address, with weight 1. \
             Suitable for trusted networks only; create operators with \
             `hero-aggregator operators create` or POST /api/v1/admin/operators"
        );
    }
    // The last flush runs after battles drained and HTTP stopped, so it holds their counters.
    supervisor.spawn(
        Stage::Background,
        maintenance::run(
            db.clone(),
            Arc::clone(&registry),
            Arc::clone(clock),
            policy.schedule,
            supervisor.stop_token(Stage::Background),
        ),
    );
    Ok(Nodes {
        registry,
        local_tokens,
    })
}
