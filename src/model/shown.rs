//! What people's screens and logs show of a value that came from a record: data, never
//! control. Anyone who may append a deployment writes every field of it, and a terminal
//! obeys what it is sent — `ESC ] 0 ;` retitles it, `ESC [ 2 J` clears it, CR and LF
//! forge lines, bidi overrides reorder what surrounds them. Every table, line and page
//! the CLI and the controller print goes through here; `--output json` does not (it is
//! exact, and JSON escapes control characters itself).

use std::borrow::Cow;

use super::text::is_bidi_control;

/// Characters that change how the text around them is shown rather than being shown:
/// C0 and C1 controls, DEL, bidi controls, line and paragraph separators, and the
/// invisible zero-width space and byte-order mark.
pub fn is_hazard(c: char) -> bool {
    c.is_control()
        || is_bidi_control(c)
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200B}' | '\u{FEFF}')
}

/// `text` with each hazard shown as its escape (`\u{1b}`), so what a person reads is
/// exactly the characters stored.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hazard) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_hazard(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Characters of an id shown in a table (a UUID is 36; longer ids are rare).
pub const ID: usize = 64;
/// Characters of a requester's name in a table.
pub const WHO: usize = 24;
/// Characters of a message or description in a table's last column.
pub const MESSAGE: usize = 200;

/// [`escape`]d and cut to `max` characters, with `…` where it was cut: a table cell.
pub fn cell(text: &str, max: usize) -> String {
    let escaped = escape(text);
    if escaped.chars().count() <= max {
        return escaped.into_owned();
    }
    let mut cut: String = escaped.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// One line for a table's last column: the first line of `text`, [`cell`]-cut to
/// `max`, with `…` when more lines follow (the whole text is in `-o json`).
pub fn summary(text: &str, max: usize) -> String {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let mut shown = cell(first, max);
    if lines.next().is_some() && !shown.ends_with('…') {
        shown.push_str(" …");
    }
    shown
}

/// Who, as a page shows them to anyone who can reach it: an ARN as its last part
/// (`arn:aws:sts::123456789012:assumed-role/Deployer/alice` is `alice`), else as written.
pub fn who(text: &str) -> &str {
    if !text.starts_with("arn:") {
        return text;
    }
    text.rsplit(['/', ':'])
        .find(|part| !part.is_empty())
        .unwrap_or(text)
}

/// An age as people say it: "3s ago", "4 min ago", "2 h ago", "5 days ago" (from
/// milliseconds; the CLI's tables and the board's pages both show ages so).
pub fn ago(ms: i64) -> String {
    let secs = (ms.max(0) as f64 / 1000.0).round() as i64;
    match secs {
        0..=59 => format!("{secs}s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=172_799 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    }
}

/// `text` with every AWS account id (a run of exactly twelve digits) replaced by
/// `…`: what a page shows of an error, to anyone who can reach it.
pub fn without_account_ids(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == 12 {
                runs.push(start..i);
            }
        } else {
            i += 1;
        }
    }
    if runs.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for run in runs {
        out.push_str(&text[last..run.start]);
        out.push('…');
        last = run.end;
    }
    out.push_str(&text[last..]);
    Cow::Owned(out)
}

/// A log field's value: as it is when it is one plain word, else quoted with `"` and
/// `\` escaped as well, so a value can never end its field or its line.
pub fn quoted(text: &str) -> Cow<'_, str> {
    let plain = !text.is_empty()
        && !text
            .chars()
            .any(|c| is_hazard(c) || c.is_whitespace() || matches!(c, '"' | '\\' | '='));
    if plain {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_hazard(c) => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out.push('"');
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_are_shown_escaped_and_plain_text_is_untouched() {
        assert!(matches!(escape("r-1 été ✓"), Cow::Borrowed(_)));
        assert_eq!(
            escape("a\u{1b}]0;pwned\u{7}b\r\nc\u{9b}d\u{202e}e\u{7f}"),
            "a\\u{1b}]0;pwned\\u{7}b\\u{d}\\u{a}c\\u{9b}d\\u{202e}e\\u{7f}"
        );
    }

    #[test]
    fn cells_are_cut_with_a_marker() {
        assert_eq!(cell("abcdef", 4), "abc…");
        assert_eq!(cell("abc", 4), "abc");
        assert_eq!(cell("\u{1b}", 4), "\\u{…");
    }

    #[test]
    fn a_summary_is_the_first_line_marked_when_more_follow() {
        assert_eq!(summary("one\ntwo", 10), "one …");
        assert_eq!(summary("one", 10), "one");
        assert_eq!(summary("\rforged\nrow", 40), "\\u{d}forged …");
    }

    #[test]
    fn a_page_shows_short_names_and_no_account_ids() {
        assert_eq!(
            who("arn:aws:sts::123456789012:assumed-role/Deployer/alice"),
            "alice"
        );
        assert_eq!(who("arn:aws:iam::123456789012:root"), "root");
        assert_eq!(who("Alice Smith"), "Alice Smith");
        assert_eq!(
            without_account_ids(
                "User: arn:aws:iam::123456789012:user/x is not authorized; request 1234567890123"
            ),
            "User: arn:aws:iam::…:user/x is not authorized; request 1234567890123"
        );
    }

    #[test]
    fn log_values_are_quoted_unless_one_plain_word() {
        assert_eq!(quoted("r-1"), "r-1");
        assert_eq!(quoted(""), "\"\"");
        assert_eq!(
            quoted("x\nINFO deployment succeeded"),
            "\"x\\u{a}INFO deployment succeeded\""
        );
        assert_eq!(quoted("a=\"b\""), "\"a=\\\"b\\\"\"");
    }
}
