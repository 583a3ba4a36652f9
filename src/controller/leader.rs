//! One leadership term: while this replica holds the lease, the watchers, the resync
//! loop and the dispatcher run against a state store fenced by the lease. The term ends
//! when the lease is lost (in-flight reconciles are dropped at their next await, and any
//! state write they would still make is refused by the fence; a child process an
//! actuator started is not stopped by this) or on shutdown (no new work; in-flight
//! reconciles finish within `controller.drain_timeout`, then are dropped).

use std::{sync::Arc, time::Duration};

use tokio::sync::Semaphore;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{Instrument, error, field::Empty, info, info_span, warn};

use super::{ControllerError, Shared, tables::Watchers};
use crate::{
    context::{Context, Trust},
    intake::resync,
    metrics::ReconcileLabels,
    model::EnvKey,
    queue::Priority,
    reconciler::{self, Action},
    store::{ReleaseStore, attestations::Attestations, lease::Fence},
};

/// How a term ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Lost,
    Shutdown,
}

pub async fn lead(
    shared: &Arc<Shared>,
    fence: Fence,
    shutdown: &CancellationToken,
) -> Result<Ended, ControllerError> {
    let config = shared.config.clone();
    let ctx = Arc::new(Context::new(
        config.clone(),
        ReleaseStore::new(shared.dynamodb.clone()),
        shared.state.clone().fenced(fence.clone()),
        Trust {
            attestations: Attestations::new(shared.dynamodb.clone(), &config.tables.approvals),
            principals: shared.principals.clone(),
        },
        shared.adapters.clone(),
        shared.metrics.clone(),
        shared.health.tables.clone(),
    ));
    let stop = shutdown.child_token();
    let abort = CancellationToken::new();
    let tracker = TaskTracker::new();
    Watchers {
        shared: shared.clone(),
        ctx: ctx.clone(),
        tracker: tracker.clone(),
        stop: stop.clone(),
    }
    .start(config.releases_tables())
    .await;
    tracker.spawn(resync::run(ctx.clone(), stop.clone()));
    shared.set_current(Some(ctx.clone()));
    shared.health.set_leader(true);
    shared.metrics.leader.set(1);
    info!(owner = %fence.owner, counter = fence.counter, "leading: watching streams and reconciling");

    let ended = tokio::select! {
        () = dispatch(&ctx, &tracker, &stop, &abort) => Ended::Shutdown,
        () = keep(shared, &fence) => Ended::Lost,
    };
    shared.health.set_leader(false);
    shared.metrics.leader.set(0);
    ctx.queue.close();
    stop.cancel();
    tracker.close();
    match ended {
        Ended::Lost => {
            warn!("lost the lease: stopped acting; another replica leads now");
            abort.cancel();
            // Runs this process follows stop now, gracefully: the new leader starts
            // its own only once their records say they are over.
            shared.runs.interrupt_all();
            let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
        }
        Ended::Shutdown => {
            info!("shutting down: finishing in-flight reconciles and runs");
            let started = tokio::time::Instant::now();
            let drain = config.controller.drain_timeout;
            if tokio::time::timeout(drain, tracker.wait()).await.is_err() {
                abort.cancel();
                warn!(
                    in_flight = ctx.queue.in_flight(),
                    "drain timeout passed; abandoning in-flight reconciles (they resume on restart)"
                );
            }
            // Runs get what is left of the drain, then are interrupted and recorded
            // `interrupted`, so the next leader runs them again.
            let left = drain.saturating_sub(started.elapsed());
            shared.runs.drain(left, grace(&config)).await;
        }
    }
    shared.set_current(None);
    Ok(ended)
}

/// Renews the lease every `lease.renew_every`; returns once it is lost, or once it
/// could not be renewed for a whole lease period (it may have passed to another).
async fn keep(shared: &Shared, fence: &Fence) {
    let lease = &shared.config.lease;
    let mut renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(lease.renew_every).await;
        match shared.leases.renew(fence, lease.duration).await {
            Ok(true) => renewed = tokio::time::Instant::now(),
            Ok(false) => return,
            Err(error) => {
                warn!(%error, "failed to renew the lease");
                if renewed.elapsed() >= lease.duration {
                    return;
                }
            }
        }
    }
}

/// Hands due environments to reconciles, never more than `concurrency` at once.
async fn dispatch(
    ctx: &Arc<Context>,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
    abort: &CancellationToken,
) {
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
        let (ctx, abort) = (ctx.clone(), abort.clone());
        tracker.spawn(async move {
            tokio::select! {
                () = run_one(&ctx, &key) => {}
                () = abort.cancelled() => {}
            }
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
    let seconds = started.elapsed().as_secs_f64();
    ctx.metrics
        .reconcile_duration
        .get_or_create(&labels)
        .observe(seconds);
    if ctx.config.log.emf {
        let now = chrono::Utc::now().timestamp_millis();
        println!(
            "{}",
            crate::emf::reconcile_line(key, labels.result, seconds, now)
        );
    }
    let next = match result {
        Ok(Action::Done) => {
            ctx.backoffs.succeeded(key);
            None
        }
        Ok(Action::RequeueAfter(delay)) => {
            ctx.backoffs.succeeded(key);
            Some(delay)
        }
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

/// The longest interrupt grace any command actuator is configured with.
fn grace(config: &crate::config::Config) -> Duration {
    config
        .projects
        .iter()
        .flat_map(|p| &p.environments)
        .filter_map(|e| match &e.actuator {
            crate::config::ActuatorConfig::Terraform {
                interrupt_grace, ..
            } => Some(*interrupt_grace),
            _ => None,
        })
        .max()
        .unwrap_or_default()
}
