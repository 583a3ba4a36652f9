//! Serving connections so that no client can hold the controller's HTTP face down:
//! a connection limit below the descriptor limit (one past it is closed at once, never
//! queued), an eighth of it for any one client address (so one client cannot take the
//! health check's place), a timeout on reading a request's headers, and a cap on how
//! long any one connection lives (then it is closed gracefully, after its answer). Idle or slow clients are shed; the health check and the
//! controller's own AWS calls keep their descriptors. A separate listener for `/metrics`
//! and health (`http.ops_listen`) keeps them answering even while the page's port is
//! flooded.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use hyper::server::conn::http1;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{debug, warn};

/// How long a request under way may still take once its connection is being closed.
const GRACE: Duration = Duration::from_secs(2);

/// One client address's share of the connections: counted while held.
struct Client {
    clients: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl Client {
    fn admit(
        clients: &Arc<Mutex<HashMap<IpAddr, usize>>>,
        ip: IpAddr,
        limit: usize,
    ) -> Option<Self> {
        let mut open = clients.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_default();
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(Self {
            clients: clients.clone(),
            ip,
        })
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let mut open = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// What one listener allows.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub connection_timeout: Duration,
}

impl From<&crate::config::Http> for Limits {
    fn from(http: &crate::config::Http) -> Self {
        Self {
            max_connections: http.max_connections,
            header_timeout: http.header_timeout,
            connection_timeout: http.connection_timeout,
        }
    }
}

/// Serves `app` on `listener` until `shutdown`, then lets open requests finish (for
/// at most a few seconds).
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let per_client = (limits.max_connections / 8).max(1);
    let clients: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors, say: let some close before trying again.
                warn!(%error, "failed to accept an HTTP connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(client) = Client::admit(&clients, peer.ip(), per_client) else {
            debug!(client = %peer.ip(), limit = per_client, "closed an HTTP connection over the per-client limit");
            continue;
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            debug!(
                limit = limits.max_connections,
                "closed an HTTP connection over the limit"
            );
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let _held = (permit, client);
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let lifetime = tokio::time::sleep(limits.connection_timeout);
            tokio::select! {
                _ = connection.as_mut() => return,
                () = lifetime => {}
                () = shutdown.cancelled() => {}
            }
            // Past its lifetime, or shutting down: closed after the answer in progress,
            // which gets a moment more; then dropped, whatever it is doing.
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(GRACE, connection.as_mut()).await;
        });
    }
    connections.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), connections.wait()).await;
}
