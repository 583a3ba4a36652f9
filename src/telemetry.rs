//! Logging: readable text for people, JSON lines for log pipelines. `RUST_LOG` filters.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt};

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn"));
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // A second init (tests that run the CLI in-process) keeps the first subscriber.
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.fmt_fields(text_fields()).try_init(),
    };
}

/// Text-format fields: a value that came from a record can never forge a line or a
/// field. Each value is quoted unless it is one plain word, and control and bidi
/// characters are shown escaped, in the message too ([`crate::model::shown`]).
fn text_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(
        |writer: &mut tracing_subscriber::fmt::format::Writer<'_>,
         field: &tracing::field::Field,
         value: &dyn std::fmt::Debug| {
            let text = format!("{value:?}");
            if field.name() == "message" {
                return write!(writer, "{}", crate::model::shown::escape(&text));
            }
            // A `?` string is quoted and escaped already (Rust's `Debug`); bidi
            // controls it may have kept are escaped here.
            if is_debug_quoted(&text) {
                write!(
                    writer,
                    "{}={}",
                    field.name(),
                    crate::model::shown::escape(&text)
                )
            } else {
                write!(
                    writer,
                    "{}={}",
                    field.name(),
                    crate::model::shown::quoted(&text)
                )
            }
        },
    )
    .delimited(" ")
}

/// Whether `text` is one string as Rust's `Debug` quotes it: `"…"` with every inner
/// quote escaped.
fn is_debug_quoted(text: &str) -> bool {
    let Some(inner) = text
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    else {
        return false;
    };
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            // The closing quote was escaped: not one whole string.
            '\\' if chars.next().is_none() => return false,
            '"' => return false,
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::is_debug_quoted;

    #[test]
    fn only_one_whole_debug_string_counts_as_quoted() {
        assert!(is_debug_quoted(r#""r1""#));
        assert!(is_debug_quoted(r#""a \"b\" c""#));
        assert!(!is_debug_quoted(r#""x" status="succeeded""#));
        assert!(!is_debug_quoted("\""));
        assert!(!is_debug_quoted("plain"));
    }
}
