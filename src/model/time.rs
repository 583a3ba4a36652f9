//! Timestamps as writers write them. relctl writes RFC 013's form, naive ISO-8601 UTC
//! with six fractional digits (`2019-07-10T10:44:12.983539`), which sorts as text; it
//! reads every form real writers produce: naive ISO with 0–9 fractional digits (a `T`
//! or a space between date and time), with `Z` or a numeric offset, and Unix seconds,
//! as a string or a DynamoDB number. Values are ordered by instant, never as text.
//!
//! A [`Stamp`] keeps the attribute exactly as stored beside its instant, so a write that
//! must address that entry (its status, say) is conditioned on what is really there.

use std::{cmp::Ordering, fmt};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6f";

/// Unix seconds beyond this are surely milliseconds (the year 5138 in seconds).
const MILLISECONDS: f64 = 1e11;

/// An instant, UTC, to the microsecond (RFC 013's precision; finer digits a writer
/// gives are kept in the [`Raw`] value, not in the instant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub NaiveDateTime);

impl Timestamp {
    /// Truncated to microseconds, the wire precision, so a value compares equal to
    /// itself after a round trip through the table.
    pub fn from_utc(at: DateTime<Utc>) -> Self {
        let micros = at.timestamp_micros();
        Self(
            DateTime::from_timestamp_micros(micros)
                .unwrap_or(at)
                .naive_utc(),
        )
    }

    /// Parses any of the accepted text forms.
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::parse_exact(text).map(|at| Self::from_utc(at.0.and_utc()))
    }

    fn parse_exact(text: &str) -> Result<Self, String> {
        let text = text.trim();
        for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
            if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
                return Ok(Self(at));
            }
        }
        if let Ok(at) = DateTime::parse_from_rfc3339(text) {
            return Ok(Self(at.naive_utc()));
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
            if let Ok(at) = DateTime::parse_from_str(text, format) {
                return Ok(Self(at.naive_utc()));
            }
        }
        if !text.is_empty()
            && text.chars().all(|c| c.is_ascii_digit() || c == '.')
            && let Ok(secs) = text.parse::<f64>()
        {
            return Self::from_unix(secs);
        }
        Err(format!(
            "{text:?} is not a timestamp (expected ISO-8601 such as 2019-07-10T10:44:12.983539, with or without Z or an offset, or Unix seconds)"
        ))
    }

    /// Unix seconds, fractions allowed.
    pub fn from_unix(secs: f64) -> Result<Self, String> {
        if !secs.is_finite() || secs < 0.0 {
            return Err(format!("{secs} is not a Unix time"));
        }
        if secs > MILLISECONDS {
            return Err(format!(
                "{secs} looks like milliseconds; date_created takes Unix seconds"
            ));
        }
        // To the microsecond: an f64 of today's seconds holds no more.
        let micros = (secs * 1e6).round() as i64;
        DateTime::from_timestamp_micros(micros)
            .map(|at| Self(at.naive_utc()))
            .ok_or_else(|| format!("{secs} is out of range for a Unix time"))
    }

    /// The canonical wire form.
    pub fn to_wire(&self) -> String {
        self.0.format(FORMAT).to_string()
    }

    pub fn as_utc(&self) -> DateTime<Utc> {
        self.0.and_utc()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_wire())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_wire())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Stamp::deserialize(deserializer).map(|stamp| stamp.at)
    }
}

/// An attribute exactly as stored: a string, or a number (DynamoDB compares numbers by
/// value, so any rendering of the same number matches it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Raw {
    S(String),
    N(String),
}

impl Raw {
    pub fn text(&self) -> &str {
        match self {
            Self::S(text) | Self::N(text) => text,
        }
    }
}

/// A timestamp as a writer stored it: its instant, and the value as stored.
#[derive(Debug, Clone)]
pub struct Stamp {
    pub at: Timestamp,
    pub raw: Raw,
}

impl Stamp {
    /// A stamp relctl writes: the canonical form.
    pub fn new(at: Timestamp) -> Self {
        Self {
            raw: Raw::S(at.to_wire()),
            at,
        }
    }

    /// Reads a stored value; the error says why it is no timestamp.
    pub fn read(raw: Raw) -> Result<Self, String> {
        let at = match &raw {
            Raw::S(text) => Timestamp::parse(text)?,
            Raw::N(number) => Timestamp::from_unix(
                number
                    .parse::<f64>()
                    .map_err(|_| format!("{number} is not a number"))?,
            )?,
        };
        Ok(Self { at, raw })
    }
}

impl PartialEq for Stamp {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for Stamp {}

impl PartialOrd for Stamp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Stamp {
    fn cmp(&self, other: &Self) -> Ordering {
        self.at.cmp(&other.at)
    }
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.at.fmt(f)
    }
}

impl Serialize for Stamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.raw {
            Raw::S(text) => serializer.serialize_str(text),
            Raw::N(number) => match number.parse::<i64>() {
                Ok(whole) => serializer.serialize_i64(whole),
                Err(_) => serializer.serialize_f64(number.parse().unwrap_or_default()),
            },
        }
    }
}

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Text(String),
            Int(i64),
            Float(f64),
        }
        let raw = match Wire::deserialize(deserializer)? {
            Wire::Text(text) => Raw::S(text),
            Wire::Int(secs) => Raw::N(secs.to_string()),
            Wire::Float(secs) => Raw::N(secs.to_string()),
        };
        Stamp::read(raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_rfc_013_form_round_trips_with_microseconds() {
        assert_eq!(
            parse("2019-07-10T10:44:12.983539").to_wire(),
            "2019-07-10T10:44:12.983539"
        );
    }

    #[test]
    fn every_form_real_writers_produce_is_the_same_instant() {
        let naive = parse("2026-11-24T13:59:50.166");
        for form in [
            "2026-11-24T13:59:50.166000",    // Python isoformat()
            "2026-11-24T13:59:50.166Z",      // JavaScript toISOString()
            "2026-11-24T13:59:50.166+00:00", // Python with tzinfo
            "2026-11-24T14:59:50.166+01:00", // a local offset
            "2026-11-24T13:59:50.166000000", // nanoseconds
            "2026-11-24 13:59:50.166",       // Python str(datetime)
            "1795528790.166",                // Unix seconds
        ] {
            assert_eq!(parse(form), naive, "{form}");
        }
        assert_eq!(
            parse("2026-11-24T13:59:50"),
            parse("2026-11-24T13:59:50.000000"),
            "isoformat() drops a zero fraction"
        );
    }

    #[test]
    fn instants_order_by_time_not_text() {
        let earlier = parse("2026-11-24T14:00:00+01:00");
        let later = parse("2026-11-24T13:30:00Z");
        assert!(earlier < later);
        assert!(parse("2026-11-24T13:59:50.000001") > parse("2026-11-24T13:59:50"));
    }

    #[test]
    fn a_stamp_keeps_what_was_stored() {
        let stamp =
            Stamp::read(Raw::S("2026-11-24T13:59:50Z".into())).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stamp.raw, Raw::S("2026-11-24T13:59:50Z".into()));
        assert_eq!(stamp, Stamp::new(parse("2026-11-24T13:59:50")));
        let number: Stamp = serde_json::from_str("1795528790").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(number.raw, Raw::N("1795528790".into()));
        assert_eq!(
            serde_json::to_string(&number).unwrap_or_default(),
            "1795528790"
        );
    }

    #[test]
    fn a_clock_reading_survives_the_wire_unchanged() {
        let now = Timestamp::from_utc(chrono::Utc::now());
        assert_eq!(parse(&now.to_wire()), now);
    }

    #[test]
    fn garbage_and_milliseconds_are_errors_not_panics() {
        for bad in ["yesterday", "NaN", "1e300", "-5", "", "2026-13-01T00:00:00"] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
        let ms = Timestamp::parse("1795528790166").unwrap_err();
        assert!(ms.contains("milliseconds"), "{ms}");
    }
}
