//! How the read commands print for people: tables that fit the terminal (kubectl's
//! look: no borders, columns apart), release ids cut to their first 8 characters (as
//! git shows commits; longer where two shown would read the same), times as ages ("12
//! min ago"), and statuses in colour on a terminal only. `--output wide` shows full ids
//! and times; `--color never` or `NO_COLOR` turns colour off, `--color always` on.
//! Every value from a record is escaped before it reaches a cell (control and bidi
//! characters shown as escapes), so colour codes are relctl's own, never a writer's.

use std::{collections::HashMap, io::IsTerminal, sync::OnceLock};

use comfy_table::{Cell, Color, ContentArrangement, Table, presets::NOTHING};

use crate::model::{Timestamp, shown};

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set.
    #[default]
    Auto,
    Always,
    Never,
}

/// How tables are shown in this run.
#[derive(Debug, Clone, Copy)]
pub struct Look {
    pub wide: bool,
    pub color: bool,
}

static LOOK: OnceLock<Look> = OnceLock::new();

/// Settles the look once, from the flags and the environment.
pub fn init(wide: bool, choice: ColorChoice) {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let color = match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => !no_color && std::io::stdout().is_terminal(),
    };
    let _ = LOOK.set(Look { wide, color });
}

pub fn look() -> Look {
    LOOK.get().copied().unwrap_or(Look {
        wide: false,
        color: false,
    })
}

/// A table with these column headers, as wide as the terminal (on one) and as wide
/// as its content elsewhere (a pipe, a file: one line per row).
pub fn table(headers: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(NOTHING);
    if std::io::stdout().is_terminal() {
        table.set_content_arrangement(ContentArrangement::Dynamic);
    } else {
        table.force_no_tty();
    }
    if look().color {
        table.enforce_styling();
    }
    table.set_header(headers.iter().map(|h| Cell::new(*h)));
    for column in table.column_iter_mut() {
        column.set_padding((0, 3));
    }
    table
}

/// Prints `table` as it is (its cells were escaped as they were made).
pub fn print(table: &Table) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    for line in table.lines() {
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// A cell of text from a record: escaped, and at most `max` characters.
pub fn text(value: &str, max: usize) -> Cell {
    Cell::new(shown::escape(&shown::cell(value, max)).into_owned())
}

/// A status, coloured by what it means.
pub fn status(value: &str) -> Cell {
    let cell = Cell::new(shown::escape(value).into_owned());
    if !look().color {
        return cell;
    }
    match value {
        "succeeded" | "converged" | "resume" | "unlock" => cell.fg(Color::Green),
        "failed" | "rejected" | "drift" => cell.fg(Color::Red),
        "in_progress" | "applying" | "baking" | "soaking" | "verifying" | "pinning" => {
            cell.fg(Color::Cyan)
        }
        "awaiting_approval" | "paused" | "pause" | "waiting" | "frozen" | "pending" => {
            cell.fg(Color::Yellow)
        }
        "superseded" | "cancelled" => cell.fg(Color::DarkGrey),
        _ => cell,
    }
}

/// Release ids as shown: each cut to its first 8 characters, or as many more as keep
/// it apart from the other ids shown beside it; whole with `--output wide`.
pub fn short_ids<'a>(ids: impl IntoIterator<Item = &'a str>) -> HashMap<String, String> {
    let ids: Vec<&str> = ids.into_iter().collect();
    let wide = look().wide;
    ids.iter()
        .map(|id| {
            let short = if wide {
                (*id).to_owned()
            } else {
                let mut n = 8;
                while n < id.chars().count()
                    && ids
                        .iter()
                        .any(|other| other != id && prefix(other, n) == prefix(id, n))
                {
                    n += 1;
                }
                prefix(id, n)
            };
            ((*id).to_owned(), short)
        })
        .collect()
}

fn prefix(id: &str, n: usize) -> String {
    id.chars().take(n).collect()
}

/// A time as an age ("12 min ago"), or as written with `--output wide` (and where it
/// does not parse).
pub fn age(at: &str, now_ms: i64) -> String {
    if look().wide {
        return at.to_owned();
    }
    match Timestamp::parse(at) {
        Ok(t) => shown::ago(now_ms - t.as_utc().timestamp_millis()),
        Err(_) => at.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_cut_to_eight_characters_unless_two_shown_would_read_the_same() {
        let shown = short_ids([
            "3f9c2a1e-0000-4000-8000-000000000001",
            "3f9c2a1e-0000-4000-8000-000000000002",
            "a1b2c3d4-9999-4000-8000-000000000003",
            "r1",
        ]);
        assert_eq!(shown["a1b2c3d4-9999-4000-8000-000000000003"], "a1b2c3d4");
        assert_eq!(shown["r1"], "r1");
        assert_eq!(
            shown["3f9c2a1e-0000-4000-8000-000000000001"],
            "3f9c2a1e-0000-4000-8000-000000000001"
        );
    }

    #[test]
    fn a_hostile_value_is_escaped_in_its_cell() {
        let cell = text("ok\u{1b}]0;pwned\u{7}", 64);
        assert_eq!(cell.content(), "ok\\u{1b}]0;pwned\\u{7}");
    }
}
