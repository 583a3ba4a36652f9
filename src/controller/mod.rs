//! The daemon. Every replica serves HTTP and competes for the leader lease; the holder
//! runs a term (`leader.rs`): a watcher per releases table, the resync loop, and the
//! dispatcher that hands queued environments to `reconcile` under bounded concurrency.
//! A standby takes over within one lease period after the leader dies. One
//! cancellation token stops it all: no new work is taken, in-flight reconciles finish
//! (bounded by `controller.drain_timeout`), and the lease is released for a standby.

mod leader;
mod pages;
pub mod tables;

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use aws_config::SdkConfig;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    actuator::command::Runs,
    adapters::{Adapters, Clients},
    config::Config,
    context::Context,
    metrics::Metrics,
    model::EnvKey,
    store::{StateStore, StoreError, lease::Leases},
    watcher::WatchError,
};

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    Watch(#[from] WatchError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("failed to listen on {addr} (http.listen or http.ops_listen): {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

pub use crate::health::Health;

/// What every term of this replica shares.
pub struct Shared {
    pub config: Arc<Config>,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub streams: aws_sdk_dynamodbstreams::Client,
    /// Unfenced: reads, and the base that each term fences.
    pub state: StateStore,
    pub leases: Leases,
    pub adapters: HashMap<EnvKey, Adapters>,
    /// The command (Terraform) runs this process follows, and their records.
    pub runs: Arc<Runs>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// The unique ids of the principals `approvers` and `break_glass` list.
    pub principals: Arc<crate::aws::principals::Resolver>,
    /// The current term's context, for the HTTP handlers; None on a standby.
    pub current: RwLock<Option<Arc<Context>>>,
}

impl Shared {
    fn set_current(&self, ctx: Option<Arc<Context>>) {
        if let Ok(mut current) = self.current.write() {
            *current = ctx;
        }
    }

    pub fn current(&self) -> Option<Arc<Context>> {
        self.current.read().ok().and_then(|c| c.clone())
    }

    /// Brings the gauges that mirror the current term up to date (before a scrape).
    fn refresh_gauges(&self) {
        let metrics = &self.metrics;
        match self.current() {
            Some(ctx) => {
                metrics.queue_depth.set(ctx.queue.len() as i64);
                metrics.in_flight.set(ctx.queue.in_flight() as i64);
                let drifted = ctx.drifted.lock().map(|d| d.len()).unwrap_or_default();
                metrics.drifted.set(drifted as i64);
            }
            None => {
                metrics.queue_depth.set(0);
                metrics.in_flight.set(0);
            }
        }
    }
}

/// This replica's name in the lease: host and a random suffix (two on one host differ).
fn owner() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "relctl".into());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}", &suffix[..8])
}

/// Runs until `shutdown` is cancelled. HTTP is served from the start: `/readyz` says
/// 503, with why, until the state table can be used (a missing one is waited for, not
/// a crash loop), and again from the moment shutdown begins until the drain is over.
/// A releases table that cannot be used stops only its own projects (see [`tables`]).
/// Fails only when the HTTP address cannot be bound.
pub async fn run(
    config: Arc<Config>,
    sdk: &SdkConfig,
    shutdown: CancellationToken,
    health: Arc<Health>,
) -> Result<(), ControllerError> {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    let clients = Clients::new(sdk, &config.aws.endpoints, &metrics);
    let (dynamodb, streams) = (clients.dynamodb(), clients.dynamodbstreams());
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .map_err(|source| ControllerError::Listen {
            addr: config.http.listen,
            source,
        })?;
    let ops = match config.http.ops_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| ControllerError::Listen { addr, source })?,
        ),
        None => None,
    };
    let me = owner();
    let state = StateStore::new(dynamodb.clone(), config.tables.state.clone());
    let runs = Arc::new(Runs::new(
        me.clone(),
        state.clone(),
        config.lease.duration,
        config.controller.runner.clone(),
    ));
    let principals = Arc::new(crate::aws::principals::Resolver::new(clients.iam()));
    let shared = Arc::new(Shared {
        principals,
        adapters: crate::adapters::build(&config, sdk, &metrics, &runs).await,
        runs,
        state,
        leases: Leases::new(dynamodb.clone(), config.tables.state.clone()),
        config: config.clone(),
        dynamodb,
        streams,
        metrics,
        health: health.clone(),
        current: RwLock::new(None),
    });
    if let Ok(addr) = listener.local_addr() {
        let _ = health.addr.set(addr);
        info!(%addr, "serving /metrics, /healthz, /readyz and the status page");
    }
    if let Some(addr) = ops.as_ref().and_then(|l| l.local_addr().ok()) {
        let _ = health.ops_addr.set(addr);
        info!(%addr, "serving /metrics, /healthz and /readyz (http.ops_listen)");
    }
    let gauges = shared.clone();
    let site = crate::http::Site {
        health: health.clone(),
        registry: Arc::new(registry),
        refresh: Arc::new(move || gauges.refresh_gauges()),
        status: Arc::new(pages::Environments {
            config: config.clone(),
            state: shared.state.clone(),
            releases: crate::store::ReleaseStore::new(shared.dynamodb.clone()),
            cached: Default::default(),
            described: Default::default(),
            reads: tokio::sync::Semaphore::new(pages::RELEASE_READS),
        }),
        layout: Arc::new(crate::http::view::Layout::of(&config)),
    };
    // HTTP outlives the drain: health and readiness answer until the very end.
    let http_stop = CancellationToken::new();
    let http = tokio::spawn(crate::http::serve(
        listener,
        ops,
        site,
        (&config.http).into(),
        http_stop.clone(),
    ));
    if wait_for_state_table(&shared, &shutdown).await {
        health.set_ready(true);
        let unready = health.clone();
        let signal = shutdown.clone();
        tokio::spawn(async move {
            signal.cancelled().await;
            unready.set_ready(false);
        });
        info!(
            owner = %me,
            environments = config.keys().count(),
            concurrency = config.controller.concurrency,
            "controller started"
        );
        compete(&shared, &me, &shutdown).await?;
    }
    health.set_ready(false);
    http_stop.cancel();
    let _ = http.await;
    info!("controller stopped");
    Ok(())
}

/// Waits until the state table can be used, reporting why not meanwhile; false if
/// shutdown came first.
async fn wait_for_state_table(shared: &Shared, shutdown: &CancellationToken) -> bool {
    let table = &shared.config.tables.state;
    loop {
        let problems = tables::check_state_table(&shared.dynamodb, table).await;
        let usable = problems.is_empty();
        tables::report(shared, table, problems);
        if usable {
            return true;
        }
        tokio::select! {
            () = tokio::time::sleep(tables::RECHECK) => {}
            () = shutdown.cancelled() => return false,
        }
    }
}

/// Standby until the lease is free, lead until it is lost or shutdown, repeat.
async fn compete(
    shared: &Arc<Shared>,
    me: &str,
    shutdown: &CancellationToken,
) -> Result<(), ControllerError> {
    let lease = &shared.config.lease;
    let mut standby_logged = false;
    while !shutdown.is_cancelled() {
        let fence = match shared.leases.acquire(me, lease.duration).await {
            Ok(Some(fence)) => fence,
            Ok(None) => {
                if !standby_logged {
                    info!("standby: another replica holds the lease");
                    standby_logged = true;
                }
                wait(lease.renew_every, shutdown).await;
                continue;
            }
            Err(error) => {
                warn!(%error, "failed to take the lease");
                wait(lease.renew_every, shutdown).await;
                continue;
            }
        };
        standby_logged = false;
        if leader::lead(shared, fence.clone(), shutdown).await? == leader::Ended::Shutdown {
            if let Err(error) = shared.leases.release(&fence).await {
                warn!(%error, "failed to release the lease; a standby takes over when it expires");
            }
            break;
        }
    }
    Ok(())
}

async fn wait(period: Duration, shutdown: &CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(period) => {}
        () = shutdown.cancelled() => {}
    }
}
