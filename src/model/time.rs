//! Timestamps as RFC 013 and weco-deploy write them: naive ISO-8601 UTC with microseconds
//! (`2019-07-10T10:44:12.983539`). Older items may carry RFC 3339 strings or Unix seconds;
//! all are read, and relctl always writes the naive form, which sorts as text.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6f";

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
        let text = text.trim();
        if let Ok(at) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
            return Ok(Self(at));
        }
        if let Ok(at) = DateTime::parse_from_rfc3339(text) {
            return Ok(Self(at.naive_utc()));
        }
        if let Ok(secs) = text.parse::<f64>() {
            return Self::from_unix(secs);
        }
        Err(format!(
            "{text:?} is not a timestamp (expected ISO-8601 like 2019-07-10T10:44:12.983539)"
        ))
    }

    fn from_unix(secs: f64) -> Result<Self, String> {
        if !secs.is_finite() {
            return Err(format!("{secs} is not a Unix time"));
        }
        let micros = (secs * 1e6).round() as i64;
        DateTime::from_timestamp_micros(micros)
            .map(Self::from_utc)
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
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Text(String),
            Int(i64),
            Float(f64),
        }
        match Wire::deserialize(deserializer)? {
            Wire::Text(text) => Timestamp::parse(&text),
            Wire::Int(secs) => Timestamp::from_unix(secs as f64),
            Wire::Float(secs) => Timestamp::from_unix(secs),
        }
        .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_013_form_round_trips_with_microseconds() {
        let at = Timestamp::parse("2019-07-10T10:44:12.983539").unwrap();
        assert_eq!(at.to_wire(), "2019-07-10T10:44:12.983539");
    }

    #[test]
    fn rfc3339_and_unix_seconds_are_read() {
        let naive = Timestamp::parse("2019-07-10T10:44:12").unwrap();
        assert_eq!(
            Timestamp::parse("2019-07-10T10:44:12Z").unwrap(),
            naive,
            "a Z suffix is UTC"
        );
        assert_eq!(Timestamp::parse("1562755452").unwrap(), naive);
    }

    #[test]
    fn wire_form_sorts_as_time_does() {
        let a = Timestamp::parse("2019-07-10T09:00:00").unwrap();
        let b = Timestamp::parse("2019-07-10T10:00:00.5").unwrap();
        assert!(a < b);
        assert!(a.to_wire() < b.to_wire());
    }

    #[test]
    fn a_clock_reading_survives_the_wire_unchanged() {
        let now = Timestamp::from_utc(chrono::Utc::now());
        assert_eq!(Timestamp::parse(&now.to_wire()).unwrap(), now);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Timestamp::parse("yesterday").is_err());
        assert!(Timestamp::parse("NaN").is_err());
        assert!(Timestamp::parse("1e300").is_err());
    }
}
