//! Serving connections so that no client can hold the controller's HTTP face down:
//! a connection limit below the descriptor limit (one past it is closed at once, never
//! queued), a timeout on reading a request's headers, and a cap on how long any one
//! connection lives. Idle or slow clients are shed; the health check and the
//! controller's own AWS calls keep their descriptors. A separate listener for `/metrics`
//! and health (`http.ops_listen`) keeps them answering even while the page's port is
//! flooded.

use std::{sync::Arc, time::Duration};

use hyper::server::conn::http1;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{debug, warn};

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
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of descriptors, say: let some close before trying again.
                warn!(%error, "failed to accept an HTTP connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            debug!(
                limit = limits.max_connections,
                "closed an HTTP connection over the limit"
            );
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let _permit = permit;
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            // Past its lifetime a connection is dropped, whatever it is doing.
            let _ = tokio::time::timeout(limits.connection_timeout, async {
                tokio::select! {
                    _ = connection.as_mut() => {}
                    () = shutdown.cancelled() => {
                        connection.as_mut().graceful_shutdown();
                        let _ = connection.as_mut().await;
                    }
                }
            })
            .await;
        });
    }
    connections.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), connections.wait()).await;
}
