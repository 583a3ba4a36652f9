//! Bounds on free text written to records: an AWS error, a pipeline's summary or a
//! command's output can be any length, and a DynamoDB item holds 400 KB in all.

/// Unicode's bidirectional formatting characters: embeddings, overrides, isolates and
/// marks. Shown to a person they reorder the text around them.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Bytes of a message kept in a record.
pub const MESSAGE_BYTES: usize = 2048;

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
        Activity::Waiting { message, .. } | Activity::Finished { message, .. } => bound(message),
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
    fn one_long_line_of_multibyte_characters_is_cut_at_a_character() {
        let long = "é".repeat(5000);
        let cut = message(&long);
        assert!(cut.len() <= MESSAGE_BYTES);
        assert!(cut.starts_with("éé"));
    }
}
