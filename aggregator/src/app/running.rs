//! `Running`: a started aggregator, until shutdown.

use std::net::SocketAddr;

use tokio_util::sync::CancellationToken;

use crate::state::AppState;
use crate::supervisor::Supervisor;

/// A started aggregator.
pub struct Running {
    pub(super) addr: SocketAddr,
    pub(super) state: AppState,
    pub(super) supervisor: Supervisor,
}

impl Running {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The line a user (and the tests) wait for, and the walkthrough of a local network.
    pub fn announce(&self, database_url: &str) {
        println!(
            "hero-aggregator ready: listening=http://{} database={} quorum={}",
            self.addr,
            crate::db::redact(database_url),
            self.state.consensus.k
        );
        if self.state.nodes.local_nodes > 0 {
            crate::local::print_walkthrough(
                self.addr,
                self.state.admin.token.as_deref().unwrap_or_default(),
            );
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }

    /// Waits for `shutdown`, then stops every task in the supervisor's order.
    pub async fn until(self, shutdown: CancellationToken) {
        shutdown.cancelled().await;
        tracing::info!("shutting down: local nodes, battles, HTTP, background, recorders");
        self.supervisor.shutdown().await;
    }
}
