//! The status page: plain server-rendered HTML, no script, refreshing itself. Every
//! value that came from a record is escaped, its control and bidi characters shown as
//! escapes.

use std::fmt::Write;

use crate::model::{EnvKey, Timestamp, state::EnvState};

/// HTML-escaped, with control and bidi characters shown as escapes
/// ([`crate::model::shown`]).
fn escape(text: &str) -> String {
    crate::model::shown::escape(text)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn or_dash(value: Option<String>) -> String {
    value.map(|v| escape(&v)).unwrap_or_else(|| "–".into())
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#222}\
table{border-collapse:collapse;margin-bottom:2rem}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}\
th{background:#f3f3f3}.succeeded{color:#176117}.failed{color:#a11}.in_progress,.awaiting_approval{color:#8a5a00}\
.drift,.error{color:#a11;font-weight:bold}small{color:#666}";

/// A message as the page shows it: escaped, without account ids.
fn said(text: &str) -> String {
    escape(&crate::model::shown::without_account_ids(text))
}

/// The environment's message, and what last went wrong (a retried attempt, a resync).
fn message(state: &EnvState) -> String {
    let activity = &state.activity;
    let mut cell = activity.message().map_or_else(|| "–".into(), said);
    if let Some(error) = activity
        .last_error()
        .filter(|e| activity.message() != Some(*e))
    {
        let _ = write!(
            cell,
            "<br><span class=\"error\">last attempt failed: {}</span>",
            said(error)
        );
    }
    if let Some(error) = &state.resync_error {
        let _ = write!(
            cell,
            "<br><span class=\"error\">resync failed at {}: {}</span>",
            or_dash(state.resync_error_at.map(|t| t.to_wire())),
            said(error)
        );
    }
    cell
}

/// The page for `states`: every configured environment, in configuration order.
pub fn render(states: &[(EnvKey, EnvState)], now: Timestamp) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"5\"><title>relctl status</title>\
         <style>{STYLE}</style></head><body><h1>relctl</h1><p><small>as of {now} UTC; refreshes every 5 s</small></p>\
         <table id=\"environments\"><tr><th>project</th><th>environment</th><th>running release</th>\
         <th>desired release</th><th>phase</th><th>status</th><th>since</th><th>message</th></tr>"
    );
    for (key, state) in states {
        let status = state.activity.status().map_or("none", |s| s.as_str());
        let mut drift = if state.drift.is_empty() {
            String::new()
        } else {
            format!(
                " <span class=\"drift\">drift: {}</span>",
                escape(&state.drift.join(", "))
            )
        };
        if let Some(found) = state.plan_drift.as_ref().and_then(|p| p.found.as_deref()) {
            let _ = write!(
                drift,
                " <span class=\"drift\">drift by plan: {}</span>",
                escape(found)
            );
        }
        if !state.rolled_back.is_empty() {
            let releases: Vec<&str> = state
                .rolled_back
                .iter()
                .map(|r| r.release_id.as_str())
                .collect();
            let _ = write!(
                drift,
                " <small class=\"rolled-back\">rolled back here: {}</small>",
                escape(&releases.join(", "))
            );
        }
        let _ = write!(
            html,
            "<tr data-env=\"{}/{}\"><td>{}</td><td>{}</td><td class=\"running\">{}{drift}</td><td>{}</td>\
             <td>{}</td><td class=\"{status}\">{status}</td><td>{}</td><td>{}</td></tr>",
            escape(&key.project),
            escape(&key.environment),
            escape(&key.project),
            escape(&key.environment),
            or_dash(state.observed.as_ref().map(|o| o.release_id.clone())),
            or_dash(state.desired.as_ref().map(|d| d.release_id.clone())),
            or_dash(state.activity.phase().map(str::to_owned)),
            or_dash(state.activity.since().map(|s| s.to_wire())),
            message(state),
        );
    }
    html.push_str("</table><h2>Recent deployments</h2><table id=\"history\"><tr><th>project</th>\
        <th>environment</th><th>release</th><th>who</th><th>when</th><th>outcome</th><th>message</th></tr>");
    for (key, state) in states {
        for entry in state.history.iter().take(5) {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
                escape(&key.project),
                escape(&key.environment),
                escape(&entry.release_id),
                or_dash(
                    entry
                        .requested_by
                        .as_deref()
                        .map(|who| crate::model::shown::who(who).to_owned())
                ),
                entry.at,
                entry.status,
                if entry.kind.is_deployment() {
                    entry.status.as_str()
                } else {
                    entry.kind.as_str()
                },
                said(&entry.message),
            );
        }
    }
    html.push_str("</table><h2>Delivery, last 30 days</h2><table id=\"delivery\"><tr><th>project</th>\
        <th>environment</th><th>deployments</th><th>per day</th><th>lead time</th><th>change failure rate</th><th>time to restore</th></tr>");
    for (key, state) in states {
        let f = crate::model::dora::figures(
            &state.deliveries,
            now,
            std::time::Duration::from_secs(30 * 86_400),
        );
        let seconds = |s: Option<u64>| {
            s.map_or("-".to_owned(), |s| {
                humantime::format_duration(std::time::Duration::from_secs(s)).to_string()
            })
        };
        let _ = write!(
            html,
            "<tr data-env=\"{}/{}\"><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&key.project),
            escape(&key.environment),
            escape(&key.project),
            escape(&key.environment),
            f.deployments,
            f.per_day,
            seconds(f.lead_time_seconds),
            f.change_failure_rate
                .map_or("-".to_owned(), |r| format!("{:.0}%", r * 100.0)),
            seconds(f.time_to_restore_seconds),
        );
    }
    html.push_str("</table></body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::Config,
        model::{IntentRef, Status},
        store::state::{Activity, Current, HistoryEntry, Observed, Outcome},
    };

    #[test]
    fn the_page_shows_each_environment_and_escapes_record_values() {
        let config = Config::from_toml(
            "[[projects]]\nid = \"bugfarm\"\nname = \"B\"\nenvironments = [ { id = \"stage\", name = \"S\" }, { id = \"prod\", name = \"P\" } ]",
        )
        .unwrap();
        let at = Timestamp::parse("2024-05-01T10:00:00").unwrap();
        let state = EnvState {
            desired: Some(IntentRef {
                date_created: at,
                release_id: "r1".into(),
                index: 0,
                date_created_raw: None,
            }),
            observed: Some(Observed {
                release_id: "r1".into(),
                date_created: at,
                images: Default::default(),
                since: at,
            }),
            activity: Activity::Finished {
                current: Current {
                    intent: IntentRef {
                        date_created: at,
                        release_id: "r1".into(),
                        index: 0,
                        date_created_raw: None,
                    },
                    requested_by: None,
                    since: at,
                    break_glass: None,
                    started: None,
                },
                outcome: Outcome::Succeeded,
                message: "pinned".into(),
            },
            resync_error: Some("table t cannot be used: <b>".into()),
            history: vec![HistoryEntry {
                kind: Default::default(),
                release_id: "r1".into(),
                requested_by: Some("<script>alert(1)</script>".into()),
                break_glass: None,
                date_created: at,
                status: Status::Succeeded,
                message: "pinned".into(),
                at,
            }],
            ..Default::default()
        };
        let states: Vec<(EnvKey, EnvState)> = config
            .keys()
            .map(|key| {
                let s = if key.environment == "stage" {
                    state.clone()
                } else {
                    EnvState::default()
                };
                (key, s)
            })
            .collect();
        let html = render(&states, at);
        assert!(html.contains("data-env=\"bugfarm/stage\""));
        assert!(
            html.contains("data-env=\"bugfarm/prod\""),
            "configured but never deployed"
        );
        assert!(html.contains("<td class=\"running\">r1</td>"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(
            html.contains("resync failed at –: table t cannot be used: &lt;b&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>"));
    }
}
