//! The board, `/`: projects as rows, environments as columns in promotion order, each
//! cell what runs there (short id and description, its age), a status badge, and how
//! many services it is behind the environment before it; then delivery figures.

use std::fmt::Write;

use super::{
    page::{age, badge, escape, frame, percent, release_link, said, scroll},
    view::{Card, Layout},
};
use crate::model::{EnvKey, Timestamp, state::EnvState};

/// Seconds between the board's reloads.
pub const REFRESH: u32 = 10;

pub fn render(
    layout: &Layout,
    cards: &[Card],
    states: &[(EnvKey, EnvState)],
    now: Timestamp,
) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>relctl</h1><p><small>as of {} UTC; refreshes every {REFRESH} s; \
         <a href=\"/api/v1/environments\">as JSON</a></small></p>",
        now.to_wire()
    );
    for project in &layout.projects {
        let _ = write!(
            body,
            "<h2 id=\"p-{}\">{}</h2>{}<table class=\"board\" data-project=\"{}\">\
             <caption class=\"visually-hidden\">{} environments, in promotion order</caption><tr>",
            escape(&project.id),
            escape(&project.name),
            scroll(&format!("{} environments", project.name)),
            escape(&project.id),
            escape(&project.name)
        );
        for env in &project.environments {
            let _ = write!(
                body,
                "<th scope=\"col\"><a href=\"/environments/{}/{}\">{}</a>{}</th>",
                percent(&project.id),
                percent(&env.id),
                escape(&env.name),
                if env.protected {
                    " <small>(protected)</small>"
                } else {
                    ""
                }
            );
        }
        body.push_str("</tr><tr>");
        for env in &project.environments {
            let card = cards
                .iter()
                .find(|c| c.project == project.id && c.environment == env.id);
            body.push_str(
                &card
                    .map(|c| cell(c, now))
                    .unwrap_or_else(|| "<td>–</td>".into()),
            );
        }
        body.push_str("</tr></table></div>");
    }
    body.push_str(&delivery(states, now));
    frame("relctl board", Some(REFRESH), &body)
}

/// One environment's cell.
pub(super) fn cell(card: &Card, now: Timestamp) -> String {
    let mut html = format!(
        "<td data-env=\"{}/{}\">",
        escape(&card.project),
        escape(&card.environment)
    );
    match &card.running {
        Some(running) => {
            let _ = write!(
                html,
                "<div class=\"running\">{}</div>",
                release_link(&running.release_id)
            );
            if let Some(description) = &running.description {
                let _ = write!(
                    html,
                    "<div>{}</div>",
                    said(&crate::model::shown::summary(description, 80))
                );
            }
            let _ = write!(
                html,
                "<div><small>{}</small></div>",
                age(&running.since, now)
            );
        }
        None => html.push_str("<div class=\"running\">nothing yet</div>"),
    }
    let _ = write!(html, "<div>{}</div>", badge(&card.badge));
    if card.desired_release.as_ref() != card.running.as_ref().map(|r| &r.release_id)
        && let Some(desired) = &card.desired_release
    {
        let _ = write!(
            html,
            "<div><small>wanted: {}</small></div>",
            release_link(desired)
        );
    }
    if card.badge != "converged"
        && let Some(message) = &card.message
    {
        let _ = write!(
            html,
            "<div><small>{}</small></div>",
            said(&crate::model::shown::summary(message, 160))
        );
    }
    if let Some(error) = &card.last_error {
        let _ = write!(
            html,
            "<div class=\"error\"><small>last attempt failed: {}</small></div>",
            said(error)
        );
    }
    if let Some(error) = &card.resync_error {
        let _ = write!(
            html,
            "<div class=\"error\"><small>resync failed: {}</small></div>",
            said(error)
        );
    }
    if !card.drift.is_empty() {
        let _ = write!(
            html,
            "<div class=\"drift\">drift: {}</div>",
            escape(&card.drift.join(", "))
        );
    }
    if let Some(found) = &card.drift_by_plan {
        let _ = write!(
            html,
            "<div class=\"drift\">drift by plan: {}</div>",
            said(found)
        );
    }
    if !card.rolled_back.is_empty() {
        let _ = write!(
            html,
            "<div><small class=\"rolled-back\">rolled back here: {}</small></div>",
            escape(&card.rolled_back.join(", "))
        );
    }
    if let Some(behind) = &card.behind {
        let n = behind.services.len();
        let _ = write!(
            html,
            "<div class=\"behind\" title=\"{}\">{n} service{} behind {}</div>",
            escape(&behind.services.join(", ")),
            if n == 1 { "" } else { "s" },
            escape(&behind.environment)
        );
    }
    html.push_str("</td>");
    html
}

/// The delivery figures of every environment, last 30 days.
fn delivery(states: &[(EnvKey, EnvState)], now: Timestamp) -> String {
    let mut html = scroll("delivery, last 30 days");
    html.insert_str(0, "<h2>Delivery, last 30 days</h2>");
    html.push_str(
        "<table id=\"delivery\"><tr><th scope=\"col\">project</th>\
         <th scope=\"col\">environment</th><th scope=\"col\">deployments</th><th scope=\"col\">per day</th>\
         <th scope=\"col\">lead time</th><th scope=\"col\">change failure rate</th><th scope=\"col\">time to restore</th></tr>",
    );
    for (key, state) in states {
        let f = crate::model::dora::figures(
            &state.deliveries,
            now,
            std::time::Duration::from_secs(30 * 86_400),
        );
        let _ = write!(
            html,
            "<tr data-env=\"{}/{}\"><td>{}</td><td>{}</td>{}</tr>",
            escape(&key.project),
            escape(&key.environment),
            escape(&key.project),
            escape(&key.environment),
            figures(&f)
        );
    }
    html.push_str("</table></div>");
    html
}

/// A row's delivery cells.
pub(super) fn figures(f: &crate::model::dora::Figures) -> String {
    let seconds = |s: Option<u64>| {
        s.map_or("-".to_owned(), |s| {
            humantime::format_duration(std::time::Duration::from_secs(s)).to_string()
        })
    };
    format!(
        "<td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td>",
        f.deployments,
        f.per_day,
        seconds(f.lead_time_seconds),
        f.change_failure_rate
            .map_or("-".to_owned(), |r| format!("{:.0}%", r * 100.0)),
        seconds(f.time_to_restore_seconds),
    )
}
