//! Bounds on free text written to records: an AWS error, a pipeline's summary or a
//! command's output can be any length, and a DynamoDB item holds 400 KB in all.

/// Unicode's bidirectional formatting characters: embeddings, overrides, isolates and
/// marks. Shown to a person they reorder the text around them.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Bytes of a message kept in a record.
pub const MESSAGE_BYTES: usize = 2048;

/// The budget of one environment's state item, well under DynamoDB's 400 KB: what is
/// left after the bounded fields (images under [`limits::IMAGES_BYTES`], messages under
/// [`MESSAGE_BYTES`]) is history, and the oldest entries are dropped to keep to it.
///
/// [`limits::IMAGES_BYTES`]: super::limits::IMAGES_BYTES
pub const STATE_BYTES: usize = 300 * 1024;

/// `text` if it fits in [`MESSAGE_BYTES`]; otherwise its start, cut at a line boundary
/// where there is one in the second half (else at a character boundary), with a note
/// saying how much was cut. The whole text belongs in the log.
pub fn message(text: &str) -> String {
    if text.len() <= MESSAGE_BYTES {
        return text.to_owned();
    }
    let note_room = 80;
    let mut end = MESSAGE_BYTES - note_room;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if let Some(line) = text[..end].rfind('\n').filter(|&i| i >= end / 2) {
        end = line;
    }
    format!(
        "{}\n… [cut: {} more bytes; the whole message is in the controller's log]",
        &text[..end],
        text.len() - end
    )
}

/// Every free-text field of `state` cut to [`MESSAGE_BYTES`], so no message can push
/// the item past DynamoDB's size limit (and its write fail for ever).
pub fn bound_state(state: &mut super::state::EnvState) {
    use super::state::Activity;
    let bound = |text: &mut String| {
        if text.len() > MESSAGE_BYTES {
            *text = message(text);
        }
    };
    match &mut state.activity {
        Activity::Idle => {}
        Activity::Waiting { message, .. }
        | Activity::Finished { message, .. }
        | Activity::Baking { message, .. } => bound(message),
        Activity::Pinning {
            message, attempts, ..
        }
        | Activity::Applying {
            message, attempts, ..
        } => {
            bound(message);
            if let Some(error) = &mut attempts.last_error {
                bound(error);
            }
        }
    }
    for entry in &mut state.history {
        bound(&mut entry.message);
    }
    if let Some(error) = &mut state.resync_error {
        bound(error);
    }
    for line in &mut state.drift {
        bound(line);
    }
    if let Some(plan) = &mut state.plan_drift {
        for text in [&mut plan.found, &mut plan.error].into_iter().flatten() {
            bound(text);
        }
    }
    // The whole item within its budget: the oldest history goes first.
    while !state.history.is_empty()
        && serde_json::to_vec(state).map_or(0, |v| v.len()) > STATE_BYTES
    {
        state.history.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_messages_are_kept_and_long_ones_cut_at_a_line_with_a_note() {
        assert_eq!(message("fine"), "fine");
        let long: String = (0..400).map(|i| format!("line {i}\n")).collect();
        let cut = message(&long);
        assert!(cut.len() <= MESSAGE_BYTES, "{}", cut.len());
        let (kept, note) = cut.rsplit_once('\n').unwrap();
        assert!(
            kept.ends_with(|c: char| c.is_ascii_digit()),
            "whole lines: {kept:?}"
        );
        assert!(note.starts_with("… [cut: "), "{note}");
        assert!(long.starts_with(kept));
    }

    #[test]
    fn a_state_over_its_budget_loses_its_oldest_history_first() {
        use crate::model::state::{EnvState, HistoryEntry, HistoryKind};
        use crate::model::{Status, Timestamp};
        let at = Timestamp::parse("2024-05-01T10:00:00.000000").unwrap();
        let entry = |i: usize| HistoryEntry {
            kind: HistoryKind::Deployment,
            release_id: format!("r{i}"),
            requested_by: Some("n".repeat(1024)),
            break_glass: None,
            date_created: at,
            status: Status::Failed,
            message: "m".repeat(MESSAGE_BYTES),
            at,
        };
        let mut state = EnvState {
            history: (0..200).map(entry).collect(),
            ..EnvState::default()
        };
        bound_state(&mut state);
        assert!(serde_json::to_vec(&state).unwrap().len() <= STATE_BYTES);
        assert!(state.history.len() > 50, "{}", state.history.len());
        assert_eq!(state.history[0].release_id, "r0", "the newest is kept");
    }

    #[test]
    fn one_long_line_of_multibyte_characters_is_cut_at_a_character() {
        let long = "é".repeat(5000);
        let cut = message(&long);
        assert!(cut.len() <= MESSAGE_BYTES);
        assert!(cut.starts_with("éé"));
    }
}
