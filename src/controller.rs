//! The daemon: a watcher per releases table, the resync loop, and the runner that hands
//! queued environments to `reconcile` under bounded concurrency. One cancellation token
//! stops it all: no new work is taken, in-flight reconciles finish (bounded by
//! `controller.drain_timeout`), checkpoints are already saved after every batch.

use std::sync::Arc;

use aws_config::SdkConfig;
use tokio::sync::{Semaphore, watch};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{Instrument, error, field::Empty, info, info_span, warn};

use crate::{
    adapters::Clients,
    config::Config,
    metrics::{Metrics, ReconcileLabels},
    model::EnvKey,
    queue::Priority,
    reconciler::{self, Action, Context, resync},
    store::{ReleaseStore, StateStore, StoreError, setup},
    watcher::{self, WatchError, Watcher},
};

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    Watch(#[from] WatchError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("state table {0} does not exist; run `relctl setup` (or apply deploy/terraform)")]
    NoStateTable(String),
    #[error("failed to listen on {addr} (http.listen): {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// What `/healthz` and `/readyz` report, shared with whoever serves them.
#[derive(Debug, Default)]
pub struct Health {
    ready: watch::Sender<bool>,
    addr: std::sync::OnceLock<std::net::SocketAddr>,
}

impl Health {
    /// Where `/metrics`, `/healthz`, `/readyz` and the status page are served.
    pub fn addr(&self) -> Option<std::net::SocketAddr> {
        self.addr.get().copied()
    }

    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Resolves once the controller has opened its streams and started its resync.
    pub async fn wait_ready(&self) {
        let mut ready = self.ready.subscribe();
        let _ = ready.wait_for(|ready| *ready).await;
    }

    fn set_ready(&self, ready: bool) {
        self.ready.send_replace(ready);
    }
}

/// Runs until `shutdown` is cancelled. Fails fast, before doing anything, when a table
/// is missing or has no stream.
pub async fn run(
    config: Arc<Config>,
    sdk: &SdkConfig,
    shutdown: CancellationToken,
    health: Arc<Health>,
) -> Result<(), ControllerError> {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    let clients = Clients {
        sdk,
        endpoints: &config.aws.endpoints,
        metrics: &metrics,
    };
    let (dynamodb, streams) = (clients.dynamodb(), clients.dynamodbstreams());
    if setup::describe(&dynamodb, &config.tables.state)
        .await?
        .is_none()
    {
        return Err(ControllerError::NoStateTable(config.tables.state.clone()));
    }
    let ctx = Arc::new(Context::new(
        config.clone(),
        ReleaseStore::new(dynamodb.clone()),
        StateStore::new(dynamodb.clone(), config.tables.state.clone()),
        crate::adapters::build(&config, sdk, &metrics).await,
        metrics.clone(),
    ));
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .map_err(|source| ControllerError::Listen {
            addr: config.http.listen,
            source,
        })?;
    let tracker = TaskTracker::new();
    let background = shutdown.child_token();
    for table in config.releases_tables() {
        let arn = watcher::stream_arn(&dynamodb, &table).await?;
        let watcher = Watcher::new(ctx.clone(), streams.clone(), table, arn).await?;
        tracker.spawn(watcher.run(background.clone()));
    }
    tracker.spawn(resync::run(ctx.clone(), background.clone()));
    if let Ok(addr) = listener.local_addr() {
        let _ = health.addr.set(addr);
        info!(%addr, "serving /metrics, /healthz, /readyz and the status page");
    }
    let site = crate::http::Site {
        ctx: ctx.clone(),
        registry: Arc::new(registry),
        health: health.clone(),
    };
    tracker.spawn(crate::http::serve(listener, site, background.clone()));
    metrics.leader.set(1);
    health.set_ready(true);
    info!(
        environments = config.keys().count(),
        concurrency = config.controller.concurrency,
        "controller started"
    );
    dispatch(&ctx, &tracker, &shutdown).await;

    health.set_ready(false);
    info!("shutting down: finishing in-flight reconciles");
    ctx.queue.close();
    background.cancel();
    tracker.close();
    if tokio::time::timeout(config.controller.drain_timeout, tracker.wait())
        .await
        .is_err()
    {
        warn!(
            in_flight = ctx.queue.in_flight(),
            "drain timeout passed; abandoning in-flight reconciles (they resume on restart)"
        );
    }
    info!("controller stopped");
    Ok(())
}

/// Hands due environments to reconciles, never more than `concurrency` at once.
async fn dispatch(ctx: &Arc<Context>, tracker: &TaskTracker, shutdown: &CancellationToken) {
    let slots = Arc::new(Semaphore::new(ctx.config.controller.concurrency));
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            _ = shutdown.cancelled() => return,
        };
        let key = tokio::select! {
            key = ctx.queue.next() => match key {
                Some(key) => key,
                None => return,
            },
            _ = shutdown.cancelled() => return,
        };
        let ctx = ctx.clone();
        tracker.spawn(async move {
            run_one(&ctx, &key).await;
            ctx.queue.done(&key);
            drop(permit);
        });
    }
}

async fn run_one(ctx: &Context, key: &EnvKey) {
    let span = info_span!(
        "reconcile",
        project = %key.project,
        environment = %key.environment,
        release_id = Empty,
    );
    let started = tokio::time::Instant::now();
    let result = reconciler::reconcile(ctx, key)
        .instrument(span.clone())
        .await;
    let labels = ReconcileLabels {
        project: key.project.clone(),
        environment: key.environment.clone(),
        result: match &result {
            Ok(Action::Done) => "done",
            Ok(Action::RequeueAfter(_)) => "requeue",
            Err(_) => "error",
        },
    };
    ctx.metrics.reconciles.get_or_create(&labels).inc();
    ctx.metrics
        .reconcile_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    let next = match result {
        Ok(Action::Done) => {
            ctx.backoffs.succeeded(key);
            None
        }
        Ok(Action::RequeueAfter(delay)) => Some(delay),
        Err(err) => {
            error!(parent: &span, error = %err, "reconcile failed");
            reconciler::error_policy(ctx, key, &err)
                .instrument(span)
                .await
        }
    };
    if let Some(delay) = next {
        ctx.queue.schedule(key.clone(), delay, Priority::Fresh);
    }
}
