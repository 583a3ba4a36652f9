//! Deployment outcomes told to the people and systems around relctl: an SNS topic, an
//! EventBridge bus (detail-type `relctl Deployment State Change`, as ECS and CodeDeploy
//! emit theirs) and HTTPS webhooks (optionally HMAC-signed), per environment and for
//! all. Delivery is asynchronous — a reconcile only hands the event over, never waits —
//! retried with backoff, bounded in how many are in flight, and counted by sink and
//! outcome (`relctl_notifications_total`).

pub mod sinks;

use std::{sync::Arc, time::Duration};

use backon::{ExponentialBuilder, Retryable};
use serde::Serialize;
use tokio::sync::Semaphore;
use tracing::warn;

use crate::metrics::{Metrics, NotifyLabels};
pub use sinks::Sink;

/// Deliveries in flight at once; beyond that an event is dropped (and counted) rather
/// than held: a notification must never hold up a deployment or grow memory.
const IN_FLIGHT: usize = 256;
/// Attempts per event and sink.
const ATTEMPTS: usize = 5;

/// What happened to a deployment, as every sink is told it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Event {
    pub project: String,
    pub environment: String,
    pub release_id: String,
    pub description: Option<String>,
    /// `succeeded`, `failed`, `superseded`, `blocked`, `awaiting_approval`, `frozen`,
    /// `rollback_started` or `drift_found`.
    pub status: &'static str,
    pub message: String,
    /// Who requested the deployment.
    pub who: Option<String>,
    /// When it happened (UTC, RFC 013's form).
    pub when: String,
    pub links: Links,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Links {
    /// The status page, where `notify.page_url` says where it is.
    pub page: Option<String>,
}

/// Hands events to their sinks.
pub struct Notifier {
    metrics: Arc<Metrics>,
    in_flight: Arc<Semaphore>,
    retry: ExponentialBuilder,
}

impl Notifier {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self::with_retry(metrics, Duration::from_secs(1), Duration::from_secs(60))
    }

    /// With its own backoff bounds (tests).
    pub fn with_retry(metrics: Arc<Metrics>, min: Duration, max: Duration) -> Self {
        Self {
            metrics,
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
            retry: ExponentialBuilder::default()
                .with_min_delay(min)
                .with_max_delay(max)
                .with_max_times(ATTEMPTS - 1)
                .with_jitter(),
        }
    }

    /// Sends `event` to each of `sinks` in the background; returns at once.
    pub fn send(&self, sinks: &[Arc<Sink>], event: Event) {
        let event = Arc::new(event);
        for sink in sinks {
            let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
                self.count(sink.kind(), "dropped");
                warn!(
                    sink = sink.kind(),
                    "too many notifications in flight; one dropped"
                );
                continue;
            };
            let (sink, event, metrics, retry) = (
                sink.clone(),
                event.clone(),
                self.metrics.clone(),
                self.retry,
            );
            tokio::spawn(async move {
                let delivered = (|| sink.deliver(&event))
                    .retry(retry)
                    .notify(|error, after| {
                        metrics
                            .notifications
                            .get_or_create(&NotifyLabels {
                                sink: sink.kind(),
                                outcome: "retried",
                            })
                            .inc();
                        warn!(sink = sink.kind(), %error, ?after, "notification failed; retrying");
                    })
                    .await;
                let outcome = match delivered {
                    Ok(()) => "delivered",
                    Err(error) => {
                        warn!(sink = sink.kind(), %error, "notification not delivered");
                        "failed"
                    }
                };
                metrics
                    .notifications
                    .get_or_create(&NotifyLabels {
                        sink: sink.kind(),
                        outcome,
                    })
                    .inc();
                drop(permit);
            });
        }
    }

    fn count(&self, sink: &'static str, outcome: &'static str) {
        self.metrics
            .notifications
            .get_or_create(&NotifyLabels { sink, outcome })
            .inc();
    }
}
