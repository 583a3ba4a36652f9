//! Delivery metrics (DORA) from what relctl already records: each finished deployment
//! of an environment, kept compactly in its state ([`Delivery`], the newest
//! [`KEPT`]). Over a window: deployment frequency (successes per day), lead time (a
//! release's `date_created` to its success here, the median), change failure rate
//! (failures ÷ finished deployments) and time to restore (a failure to the next
//! success, the mean).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// Deliveries kept per environment (about 60 bytes each, written with every save of
/// the state item: kept small).
pub const KEPT: usize = 300;

/// One finished deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub at: Timestamp,
    pub succeeded: bool,
    /// Seconds from the release's `date_created` to this success, where it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_seconds: Option<u64>,
}

/// The four figures over a window, for one environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Finished deployments in the window: succeeded and failed.
    pub deployments: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub per_day: f64,
    pub lead_time_seconds: Option<u64>,
    /// Failed ÷ finished; none when nothing finished.
    pub change_failure_rate: Option<f64>,
    pub time_to_restore_seconds: Option<u64>,
}

/// The figures of `deliveries` (any order) in the `window` before `now`.
pub fn figures(deliveries: &[Delivery], now: Timestamp, window: Duration) -> Figures {
    let from = now.as_utc() - chrono::Duration::from_std(window).unwrap_or_default();
    let mut inside: Vec<&Delivery> = deliveries
        .iter()
        .filter(|d| d.at.as_utc() > from && d.at <= now)
        .collect();
    inside.sort_by_key(|d| d.at);
    let succeeded = inside.iter().filter(|d| d.succeeded).count();
    let failed = inside.len() - succeeded;
    let days = window.as_secs_f64() / 86_400.0;
    let mut leads: Vec<u64> = inside.iter().filter_map(|d| d.lead_seconds).collect();
    leads.sort_unstable();
    let lead_time_seconds = match leads.len() {
        0 => None,
        n if n % 2 == 1 => Some(leads[n / 2]),
        n => Some((leads[n / 2 - 1] + leads[n / 2]) / 2),
    };
    // Each failure (the first of a run of them) to the next success.
    let mut restores = Vec::new();
    let mut failing_since: Option<Timestamp> = None;
    for d in &inside {
        match (d.succeeded, failing_since) {
            (false, None) => failing_since = Some(d.at),
            (true, Some(since)) => {
                restores.push((d.at.as_utc() - since.as_utc()).num_seconds().max(0) as u64);
                failing_since = None;
            }
            _ => {}
        }
    }
    Figures {
        deployments: inside.len(),
        succeeded,
        failed,
        per_day: if days > 0.0 {
            succeeded as f64 / days
        } else {
            0.0
        },
        lead_time_seconds,
        change_failure_rate: (!inside.is_empty()).then(|| failed as f64 / inside.len() as f64),
        time_to_restore_seconds: (!restores.is_empty())
            .then(|| restores.iter().sum::<u64>() / restores.len() as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    fn delivery(when: &str, succeeded: bool, lead: Option<u64>) -> Delivery {
        Delivery {
            at: at(when),
            succeeded,
            lead_seconds: lead,
        }
    }

    #[test]
    fn the_figures_of_a_scripted_history_are_the_hand_computed_ones() {
        let history = [
            // Outside a 10-day window ending on the 11th: not counted.
            delivery("2026-10-31T09:00:00", false, None),
            delivery("2026-11-02T10:00:00", true, Some(3600)),
            delivery("2026-11-03T10:00:00", false, None),
            delivery("2026-11-03T12:00:00", false, None),
            delivery("2026-11-03T16:00:00", true, Some(7200)),
            delivery("2026-11-05T10:00:00", true, Some(1800)),
            delivery("2026-11-08T10:00:00", false, None),
            delivery("2026-11-08T10:30:00", true, Some(600)),
        ];
        let figures = figures(
            &history,
            at("2026-11-11T00:00:00"),
            Duration::from_secs(10 * 86_400),
        );
        // 7 finished in the window: 4 succeeded, 3 failed.
        assert_eq!(
            (figures.deployments, figures.succeeded, figures.failed),
            (7, 4, 3)
        );
        assert!((figures.per_day - 0.4).abs() < 1e-9, "{figures:?}");
        // Leads 600, 1800, 3600, 7200: the median is (1800 + 3600) / 2.
        assert_eq!(figures.lead_time_seconds, Some(2700));
        assert!((figures.change_failure_rate.unwrap() - 3.0 / 7.0).abs() < 1e-9);
        // Restores: 3rd 10:00 → 16:00 (6 h), 8th 10:00 → 10:30 (30 min): mean 3 h 15 min.
        assert_eq!(figures.time_to_restore_seconds, Some(11_700));
    }

    #[test]
    fn nothing_finished_says_nothing_rather_than_zero() {
        let figures = figures(&[], at("2026-11-11T00:00:00"), Duration::from_secs(86_400));
        assert_eq!(figures.deployments, 0);
        assert_eq!(figures.change_failure_rate, None);
        assert_eq!(figures.lead_time_seconds, None);
        assert_eq!(figures.time_to_restore_seconds, None);
    }
}
