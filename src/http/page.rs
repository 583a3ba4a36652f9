//! What every page shares: plain server-rendered HTML, no script (the board and the
//! environment pages refresh themselves with a meta refresh), one small stylesheet
//! that reads on a phone, and escaping: every value that came from a record is
//! escaped, its control and bidi characters shown as escapes.

use crate::model::Timestamp;

/// HTML-escaped, with control and bidi characters shown as escapes
/// ([`crate::model::shown`]).
pub(super) fn escape(text: &str) -> String {
    crate::model::shown::escape(text)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1rem auto;max-width:80rem;padding:0 1rem;color:#1a1a1a;line-height:1.4}\
a{color:#0b4f9c}h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}\
table{border-collapse:collapse;margin-bottom:1.5rem;width:100%}td,th{border:1px solid #bbb;padding:.4rem .6rem;text-align:left;vertical-align:top}\
th{background:#eee}.board td{min-width:9rem}.scroll{overflow-x:auto}\
.badge{display:inline-block;border-radius:.8rem;padding:0 .5rem;font-size:.85rem;font-weight:600;border:1px solid currentColor}\
.converged,.succeeded{color:#14591b}.failed,.rejected,.drift,.error{color:#9b1111}\
.applying,.pinning,.verifying,.baking,.soaking,.in_progress{color:#0b4f9c}\
.waiting,.awaiting_approval,.paused,.blocked,.pending{color:#7a4d00}.superseded,.cancelled,.none{color:#555}\
.id{font-family:ui-monospace,monospace}.behind{color:#7a4d00}small{color:#555}\
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}\
@media (max-width:40rem){body{margin:.5rem;padding:0 .25rem}td,th{padding:.3rem}}";

/// A whole page: `title`, and `body` (already escaped where it holds record values).
/// `refresh`: seconds between reloads, for pages that show what moves.
pub(super) fn frame(title: &str, refresh: Option<u32>, body: &str) -> String {
    let refresh = refresh
        .map(|s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">"))
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{refresh}\
         <title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>\n",
        escape(title)
    )
}

/// A time as people read it ("12 min ago"), the exact time on hover.
pub(super) fn age(at: &str, now: Timestamp) -> String {
    let shown = match Timestamp::parse(at) {
        Ok(t) => crate::model::shown::ago((now.as_utc() - t.as_utc()).num_milliseconds()),
        Err(_) => at.to_owned(),
    };
    format!(
        "<time datetime=\"{}\" title=\"{} UTC\">{}</time>",
        escape(at),
        escape(at),
        escape(&shown)
    )
}

/// A release id as a link to its page: its first 8 characters, the whole on hover.
pub(super) fn release_link(id: &str) -> String {
    let short: String = id.chars().take(8).collect();
    format!(
        "<a class=\"id\" href=\"/releases/{}\" title=\"{}\">{}</a>",
        percent(id),
        escape(id),
        escape(&short)
    )
}

/// A path segment, percent-encoded (ids are checked, but a record's id is anyone's).
pub(super) fn percent(segment: &str) -> String {
    let mut out = String::new();
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A box a wide table scrolls in, on a phone: reachable by keyboard, and named.
pub(super) fn scroll(label: &str) -> String {
    format!(
        "<div class=\"scroll\" tabindex=\"0\" role=\"region\" aria-label=\"{}\">",
        escape(label)
    )
}

/// A status badge.
pub(super) fn badge(status: &str) -> String {
    let class: String = status
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    format!(
        "<span class=\"badge {class}\">{}</span>",
        escape(&status.replace('_', " "))
    )
}

/// A message as the page shows it: escaped, without account ids.
pub(super) fn said(text: &str) -> String {
    escape(&crate::model::shown::without_account_ids(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::Config,
        model::{EnvKey, IntentRef, Status, state::EnvState},
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
        let layout = crate::http::view::Layout::of(&config);
        let mut described = std::collections::HashMap::new();
        let mut release = crate::model::Release {
            release_id: "r1".into(),
            project_id: "bugfarm".into(),
            project_name: None,
            date_created: None,
            last_date_deployed: None,
            description: Some("<img src=x onerror=alert(1)> fix".into()),
            requested_by: None,
            images: Default::default(),
            release_manifest: None,
            deployments: Vec::new(),
            malformed: None,
            rejected: Default::default(),
        };
        release
            .images
            .insert("app".into(), Some("r.example/app:1".into()));
        described.insert("r1".to_owned(), release.clone());
        let cards = crate::http::view::cards(&layout, &states, &described);
        let html = crate::http::board::render(&layout, &cards, &states, at);
        assert!(html.contains("data-env=\"bugfarm/stage\""));
        assert!(
            html.contains("data-env=\"bugfarm/prod\""),
            "configured but never deployed"
        );
        assert!(
            html.contains("<div class=\"running\"><a class=\"id\" href=\"/releases/r1\" title=\"r1\">r1</a></div>"),
            "{html}"
        );
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt; fix"),
            "{html}"
        );
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("resync failed: table t cannot be used: &lt;b&gt;"),
            "{html}"
        );
        let view = crate::http::view::environment(cards[0].clone(), &state, at);
        let page = crate::http::pages::environment(&view, at);
        assert!(page.contains("&lt;script&gt;"), "{page}");
        assert!(!page.contains("<script>"));
        let shown = crate::http::view::release(&layout, &release, &states);
        let page = crate::http::pages::release(&shown, at);
        assert!(page.contains("runs in: stage"), "{page}");
        assert!(!page.contains("<img"), "{page}");
    }
}
