//! Prometheus metrics: one registry, built once and passed down (controller-rs's
//! `metrics.rs`). Labels are bounded: projects and environments come from the
//! configuration, never from records; no ARNs, ids or messages.

use std::sync::atomic::AtomicU64;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EnvLabels {
    pub project: String,
    pub environment: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub project: String,
    pub environment: String,
    /// `done`, `requeue` or `error`.
    pub result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabels {
    pub table: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AwsLabels {
    pub service: String,
    pub operation: String,
    /// `ok`, `throttled`, `error` or `timeout`.
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActuatorLabels {
    pub kind: &'static str,
    /// `started`, `succeeded`, `failed` or `timed_out`.
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotifyLabels {
    /// `sns`, `eventbridge` or `webhook`.
    pub sink: &'static str,
    /// `delivered`, `retried`, `failed` (out of attempts) or `dropped`.
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// `entry` (a deployment's status in the releases table), `state` (the state item)
    /// or `checkpoint` (the stream checkpoints, saved at most every few seconds).
    pub target: &'static str,
    /// `ok`, `conflict` (the entry is no longer the intent, or finished) or `error`.
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: &'static str,
}

#[derive(Debug)]
pub struct Metrics {
    pub reconciles: Family<ReconcileLabels, Counter>,
    pub reconcile_duration: Family<ReconcileLabels, Histogram, fn() -> Histogram>,
    /// Environments given up on after failures their state did not count.
    pub given_up: Family<EnvLabels, Counter>,
    /// Full resync passes finished.
    pub resyncs: Counter,
    pub queue_depth: Gauge,
    pub in_flight: Gauge,
    pub stream_lag: Family<TableLabels, Gauge<f64, AtomicU64>>,
    pub stream_records: Family<TableLabels, Counter>,
    pub poison_records: Family<TableLabels, Counter>,
    /// Stream records whose intake failed and that wait to be tried again.
    pub retrying_records: Family<TableLabels, Gauge>,
    /// Stream records given up on after bounded attempts.
    pub parked_records: Family<TableLabels, Counter>,
    /// Deployment entries refused on their own (an unreadable field).
    pub rejected_entries: Family<TableLabels, Counter>,
    /// Problems that keep relctl from using a table (0 when it is usable).
    pub table_problems: Family<TableLabels, Gauge>,
    pub aws_calls: Family<AwsLabels, Counter>,
    pub aws_failed_attempts: Family<AwsLabels, Counter>,
    pub pins_written: Family<KindLabels, Counter>,
    pub actuator_runs: Family<ActuatorLabels, Counter>,
    /// Drift checks by plan (Terraform `drift_check`): outcome `clean`, `drifted` or
    /// `failed`.
    pub drift_checks: Family<ActuatorLabels, Counter>,
    /// Notifications by sink and outcome.
    pub notifications: Family<NotifyLabels, Counter>,
    /// Delivery metrics (DORA) per environment, over the last 30 days.
    pub dora_per_day: Family<EnvLabels, Gauge<f64, AtomicU64>>,
    pub dora_lead_time: Family<EnvLabels, Gauge<f64, AtomicU64>>,
    pub dora_failure_rate: Family<EnvLabels, Gauge<f64, AtomicU64>>,
    pub dora_restore_time: Family<EnvLabels, Gauge<f64, AtomicU64>>,
    pub writes: Family<WriteLabels, Counter>,
    pub drifted: Gauge,
    pub leader: Gauge,
    pub build_info: Family<BuildLabels, Gauge>,
}

fn duration_histogram() -> Histogram {
    Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0])
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            reconciles: Family::default(),
            reconcile_duration: Family::new_with_constructor(duration_histogram),
            given_up: Family::default(),
            resyncs: Counter::default(),
            queue_depth: Gauge::default(),
            in_flight: Gauge::default(),
            stream_lag: Family::default(),
            stream_records: Family::default(),
            poison_records: Family::default(),
            rejected_entries: Family::default(),
            retrying_records: Family::default(),
            parked_records: Family::default(),
            table_problems: Family::default(),
            aws_calls: Family::default(),
            aws_failed_attempts: Family::default(),
            pins_written: Family::default(),
            actuator_runs: Family::default(),
            drift_checks: Family::default(),
            notifications: Family::default(),
            dora_per_day: Family::default(),
            dora_lead_time: Family::default(),
            dora_failure_rate: Family::default(),
            dora_restore_time: Family::default(),
            writes: Family::default(),
            drifted: Gauge::default(),
            leader: Gauge::default(),
            build_info: Family::default(),
        }
    }
}

impl Metrics {
    /// Sets `key`'s delivery-metric gauges (absent figures are not set).
    pub fn dora(&self, key: &crate::model::EnvKey, figures: &crate::model::dora::Figures) {
        let labels = EnvLabels {
            project: key.project.clone(),
            environment: key.environment.clone(),
        };
        self.dora_per_day
            .get_or_create(&labels)
            .set(figures.per_day);
        if let Some(lead) = figures.lead_time_seconds {
            self.dora_lead_time.get_or_create(&labels).set(lead as f64);
        }
        if let Some(rate) = figures.change_failure_rate {
            self.dora_failure_rate.get_or_create(&labels).set(rate);
        }
        if let Some(restore) = figures.time_to_restore_seconds {
            self.dora_restore_time
                .get_or_create(&labels)
                .set(restore as f64);
        }
    }

    /// Creates the metrics and registers them, names prefixed `relctl_`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let r = registry.sub_registry_with_prefix("relctl");
        r.register(
            "reconciles",
            "Reconciles by result",
            metrics.reconciles.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "Time one reconcile took",
            metrics.reconcile_duration.clone(),
        );
        r.register(
            "given_up",
            "Times relctl gave up on an environment after max_attempts failures in a row that its state did not count (it could not be written, or no deployment was under way)",
            metrics.given_up.clone(),
        );
        r.register(
            "resyncs",
            "Full resync passes finished",
            metrics.resyncs.clone(),
        );
        r.register(
            "queue_depth",
            "Environments waiting in the queue",
            metrics.queue_depth.clone(),
        );
        r.register(
            "reconciles_in_flight",
            "Reconciles running now",
            metrics.in_flight.clone(),
        );
        r.register(
            "outcome_writes",
            "Writes by target (entry, state, checkpoint) and outcome (ok, conflict, error)",
            metrics.writes.clone(),
        );
        r.register(
            "stream_retrying_records",
            "Stream records whose intake failed, waiting to be tried again (alert when > 0 for long)",
            metrics.retrying_records.clone(),
        );
        r.register(
            "parked_records",
            "Stream records given up on after bounded attempts (the resync still covers them)",
            metrics.parked_records.clone(),
        );
        r.register(
            "rejected_entries",
            "Deployment entries refused on their own because a field could not be read",
            metrics.rejected_entries.clone(),
        );
        r.register(
            "table_problems",
            "Problems keeping relctl from using a table (run relctl setup); 0 when usable",
            metrics.table_problems.clone(),
        );
        r.register(
            "stream_lag_seconds",
            "Age of the newest stream record processed (0 when caught up)",
            metrics.stream_lag.clone(),
        );
        r.register(
            "stream_records",
            "Stream records processed",
            metrics.stream_records.clone(),
        );
        r.register(
            "poison_records",
            "Stream records that did not decode and were skipped",
            metrics.poison_records.clone(),
        );
        r.register(
            "aws_calls",
            "AWS API calls by outcome",
            metrics.aws_calls.clone(),
        );
        r.register(
            "aws_failed_attempts",
            "Failed AWS call attempts (each retried by the SDK, or the call's last)",
            metrics.aws_failed_attempts.clone(),
        );
        r.register(
            "pins_written",
            "Pins written, by pin kind",
            metrics.pins_written.clone(),
        );
        r.register(
            "actuator_runs",
            "Actuator runs by kind and outcome",
            metrics.actuator_runs.clone(),
        );
        r.register(
            "dora_deployments_per_day",
            "Successful deployments per day over the last 30 days",
            metrics.dora_per_day.clone(),
        );
        r.register(
            "dora_lead_time_seconds",
            "Median time from a release's date_created to its success here, last 30 days",
            metrics.dora_lead_time.clone(),
        );
        r.register(
            "dora_change_failure_rate",
            "Failed deployments / finished deployments, last 30 days",
            metrics.dora_failure_rate.clone(),
        );
        r.register(
            "dora_time_to_restore_seconds",
            "Mean time from a failure to the next success, last 30 days",
            metrics.dora_restore_time.clone(),
        );
        r.register(
            "notifications",
            "Notifications by sink and outcome (delivered, retried, failed, dropped)",
            metrics.notifications.clone(),
        );
        r.register(
            "drift_checks",
            "Drift checks by plan (Terraform drift_check), by outcome",
            metrics.drift_checks.clone(),
        );
        r.register(
            "drifted_environments",
            "Environments whose pins, or whose infrastructure by a drift check, differ from the deployed release",
            metrics.drifted.clone(),
        );
        r.register(
            "leader",
            "1 when this replica holds the lease",
            metrics.leader.clone(),
        );
        r.register(
            "build_info",
            "Build information",
            metrics.build_info.clone(),
        );
        metrics
            .build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        metrics
    }

    pub fn encode(registry: &Registry) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_start_with_relctl_and_counters_show_their_labels() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        metrics
            .reconciles
            .get_or_create(&ReconcileLabels {
                project: "bugfarm".into(),
                environment: "stage".into(),
                result: "done",
            })
            .inc();
        let text = Metrics::encode(&registry);
        assert!(
            text.contains(
                r#"relctl_reconciles_total{project="bugfarm",environment="stage",result="done"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains("relctl_build_info{version="), "{text}");
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            assert!(line.starts_with("relctl_"), "{line}");
        }
    }
}
