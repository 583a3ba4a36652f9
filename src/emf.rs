//! CloudWatch Embedded Metric Format: with `log.emf = true`, one JSON line per reconcile
//! on stdout that CloudWatch Logs turns into metrics (namespace `relctl`, dimensions
//! project and environment), for teams without Prometheus.

use serde_json::json;

use crate::model::EnvKey;

/// The EMF document for one reconcile.
pub fn reconcile_line(key: &EnvKey, result: &str, seconds: f64, now_ms: i64) -> String {
    json!({
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": "relctl",
                "Dimensions": [["project", "environment"], ["project", "environment", "result"]],
                "Metrics": [
                    { "Name": "Reconciles", "Unit": "Count" },
                    { "Name": "ReconcileDuration", "Unit": "Milliseconds" },
                ],
            }],
        },
        "project": key.project,
        "environment": key.environment,
        "result": result,
        "Reconciles": 1,
        "ReconcileDuration": seconds * 1000.0,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_declares_its_metrics_and_carries_their_values() {
        let line = reconcile_line(
            &EnvKey::new("bugfarm", "stage"),
            "done",
            0.25,
            1_714_557_600_000,
        );
        let doc: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "relctl");
        assert_eq!(doc["ReconcileDuration"], 250.0);
        assert_eq!(doc["project"], "bugfarm");
        assert!(!line.contains('\n'));
    }
}
