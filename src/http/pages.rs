//! An environment's page (`/environments/{project}/{environment}`: what runs and what
//! is going on, its history with rollbacks marked, drift, its delivery figures) and a
//! release's (`/releases/{id}`: its images, where it runs, its deployments, and how it
//! differs from what each environment runs).

use std::fmt::Write;

use super::{
    board::{REFRESH, cell, figures},
    page::{age, badge, escape, frame, percent, release_link, said},
    view::{EnvView, ReleaseView},
};
use crate::model::Timestamp;

fn back() -> &'static str {
    "<p><a href=\"/\">← the board</a></p>"
}

pub fn environment(view: &EnvView, now: Timestamp) -> String {
    let card = &view.card;
    let mut body = String::from(back());
    let _ = write!(
        body,
        "<h1>{} / {}</h1><p><small><a href=\"/api/v1/environments/{}/{}\">as JSON</a></small></p>\
         <table class=\"board\"><tr><th scope=\"col\">now</th></tr><tr>{}</tr></table>",
        escape(&card.project),
        escape(&card.name),
        percent(&card.project),
        percent(&card.environment),
        cell(card, now)
    );
    body.push_str(
        "<h2>History</h2><div class=\"scroll\" tabindex=\"0\" role=\"region\" aria-label=\"history\"><table id=\"history\"><tr><th scope=\"col\">when</th>\
         <th scope=\"col\">release</th><th scope=\"col\">who</th><th scope=\"col\">outcome</th><th scope=\"col\">message</th></tr>",
    );
    for h in &view.history {
        let outcome = if h.kind == "deployment" {
            h.status.clone()
        } else {
            format!("{} ({})", h.status, h.kind.replace('_', " "))
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            age(&h.at, now),
            release_link(&h.release_id),
            if h.rolled_back {
                " <small class=\"rolled-back\">rolled back here</small>"
            } else {
                ""
            },
            escape(
                h.requested_by
                    .as_deref()
                    .map_or("–", crate::model::shown::who)
            ),
            badge(&outcome),
            said(&crate::model::shown::summary(&h.message, 300)),
        );
    }
    if view.history.is_empty() {
        body.push_str("<tr><td colspan=\"5\">nothing deployed here yet</td></tr>");
    }
    body.push_str(
        "</table></div><h2>Delivery, last 30 days</h2><table id=\"delivery\"><tr><th scope=\"col\">deployments</th>\
         <th scope=\"col\">per day</th><th scope=\"col\">lead time</th><th scope=\"col\">change failure rate</th>\
         <th scope=\"col\">time to restore</th></tr><tr>",
    );
    body.push_str(&figures(&view.delivery));
    body.push_str("</tr></table>");
    frame(
        &format!("{} / {} — relctl", card.project, card.name),
        Some(REFRESH),
        &body,
    )
}

pub fn release(view: &ReleaseView, now: Timestamp) -> String {
    let mut body = String::from(back());
    let _ = write!(
        body,
        "<h1>Release <span class=\"id\">{}</span></h1><p>{}</p><p><small>project {}{}; \
         <a href=\"/api/v1/releases/{}\">as JSON</a></small></p>",
        escape(&view.release_id),
        view.description.as_deref().map_or_else(String::new, said),
        escape(&view.project_id),
        view.date_created
            .as_deref()
            .map(|d| format!(", created {}", age(d, now)))
            .unwrap_or_default(),
        percent(&view.release_id)
    );
    let _ = write!(
        body,
        "<p>runs in: {}</p>",
        if view.running_in.is_empty() {
            "no environment".to_owned()
        } else {
            escape(&view.running_in.join(", "))
        }
    );
    body.push_str(
        "<h2>Images</h2><div class=\"scroll\" tabindex=\"0\" role=\"region\" aria-label=\"images\"><table id=\"images\"><tr><th scope=\"col\">service</th><th scope=\"col\">image</th>",
    );
    for env in view.differs.keys() {
        let _ = write!(body, "<th scope=\"col\">in {}</th>", escape(env));
    }
    body.push_str("</tr>");
    for (service, image) in &view.images {
        let _ = write!(
            body,
            "<tr><td>{}</td><td class=\"id\">{}</td>",
            escape(service),
            image.as_deref().map_or_else(|| "(none)".to_owned(), escape)
        );
        for services in view.differs.values() {
            body.push_str(if services.contains(service) {
                "<td class=\"behind\">differs</td>"
            } else {
                "<td class=\"converged\">same</td>"
            });
        }
        body.push_str("</tr>");
    }
    body.push_str(
        "</table></div><h2>Deployments</h2><div class=\"scroll\" tabindex=\"0\" role=\"region\" aria-label=\"deployments\"><table id=\"deployments\"><tr><th scope=\"col\">environment</th>\
         <th scope=\"col\">requested</th><th scope=\"col\">who</th><th scope=\"col\">outcome</th><th scope=\"col\">message</th></tr>",
    );
    for d in &view.deployments {
        let _ = write!(
            body,
            "<tr><td><a href=\"/environments/{}/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            percent(&view.project_id),
            percent(&d.environment),
            escape(&d.environment),
            age(&d.date_created, now),
            escape(
                d.requested_by
                    .as_deref()
                    .map_or("–", crate::model::shown::who)
            ),
            badge(&d.status),
            said(&crate::model::shown::summary(
                d.status_message.as_deref().unwrap_or_default(),
                300
            )),
        );
    }
    if view.deployments.is_empty() {
        body.push_str("<tr><td colspan=\"5\">never deployed</td></tr>");
    }
    body.push_str("</table></div>");
    frame(
        &format!("release {} — relctl", view.release_id),
        None,
        &body,
    )
}
