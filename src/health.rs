//! What `/healthz` and `/readyz` report: readiness, leadership, the address served, and
//! the tables relctl cannot use. Set by the controller, read by the HTTP face; a handle
//! of its own so that neither imports the other.

use std::sync::Arc;

use tokio::sync::watch;

use crate::store::setup::TableProblems;

/// What `/healthz` and `/readyz` report, shared with whoever serves them.
#[derive(Debug, Default)]
pub struct Health {
    ready: watch::Sender<bool>,
    leader: watch::Sender<bool>,
    pub(crate) addr: std::sync::OnceLock<std::net::SocketAddr>,
    pub(crate) ops_addr: std::sync::OnceLock<std::net::SocketAddr>,
    /// Tables relctl cannot use now, and why.
    pub tables: Arc<TableProblems>,
}

impl Health {
    /// Records what keeps relctl from using `table` (none: usable); returns the old list.
    pub fn set_problems(&self, table: &str, problems: Vec<String>) -> Vec<String> {
        self.tables.set(table, problems)
    }

    /// Where `/metrics`, `/healthz`, `/readyz` and the status page are served.
    pub fn addr(&self) -> Option<std::net::SocketAddr> {
        self.addr.get().copied()
    }

    /// Where `/metrics`, `/healthz` and `/readyz` alone are served, if `http.ops_listen`.
    pub fn ops_addr(&self) -> Option<std::net::SocketAddr> {
        self.ops_addr.get().copied()
    }

    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Resolves once the controller has opened its streams and started its resync.
    pub async fn wait_ready(&self) {
        let mut ready = self.ready.subscribe();
        let _ = ready.wait_for(|ready| *ready).await;
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.send_replace(ready);
    }

    /// Whether this replica holds the lease and acts.
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// Resolves once this replica leads (streams open, resync started).
    pub async fn wait_leader(&self) {
        let mut leader = self.leader.subscribe();
        let _ = leader.wait_for(|leader| *leader).await;
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.send_replace(leader);
    }
}
