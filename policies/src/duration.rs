//! Durations as policy files write them: humantime strings such as `"30m"` or `"1h 30m"`.
//!
//! This replaces `humantime-serde`, whose deserializer drops humantime's explanation (the list of
//! known units, where parsing stopped) and only says "expected a duration", and whose serializer
//! prints `24h` as `1day`. Whole hours print as hours, the way caps are written. Use it with
//! `#[serde(with = "crate::duration")]` (or `crate::duration::option` for `Option<Duration>`).

use std::fmt;
use std::time::Duration;

use serde::Serializer;
use serde::de::{self, Deserializer, Visitor};

/// Serializes as [`show`] prints it.
pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&show(d))
}

/// Deserializes a humantime string; other types get a message with examples.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor)
}

/// Accepts strings only, so `wall-time = 1800` is an error with an example, not seconds.
struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration string such as \"30m\", \"90s\" or \"1h 30m\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse(v).map_err(E::custom)
    }
}

/// Parses a humantime string, explaining a failure the way policy files are told.
pub(crate) fn parse(v: &str) -> Result<Duration, String> {
    humantime::parse_duration(v).map_err(|e| explain(v, &e))
}

/// humantime's message, with byte offsets replaced by the text they point at.
fn explain(v: &str, e: &humantime::DurationError) -> String {
    use humantime::DurationError as H;
    let rest = |at: usize| v.get(at..).unwrap_or_default();
    let what = match e {
        H::InvalidCharacter(at) => format!("unexpected character at {:?}", rest(*at)),
        H::NumberExpected(at) => format!("expected a number at {:?}", rest(*at)),
        H::UnknownUnit { .. } => return format!("invalid duration {v:?}: {e}"),
        _ => e.to_string(),
    };
    format!("invalid duration {v:?}: {what}; write e.g. \"30m\", \"90s\" or \"1h 30m\"")
}

/// The same for `Option<Duration>`, for request overrides.
pub(crate) mod option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// One duration, (de)serialized as the parent module does.
    #[derive(Serialize, Deserialize)]
    struct Wrap(#[serde(with = "super")] Duration);

    /// Serializes `Some` as the parent module does.
    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&Wrap(*d)),
            None => s.serialize_none(),
        }
    }

    /// Deserializes a present value as the parent module does.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<Wrap>::deserialize(d)?.map(|Wrap(d)| d))
    }
}

/// A duration as policy files write it, e.g. `30m` or `1h 30m`.
///
/// Whole hours print as hours (`24h`, not humantime's `1day`) since that is how caps are written.
pub(crate) fn show(d: &Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() == 0 && secs > 0 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else {
        humantime::format_duration(*d).to_string()
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Deserialize, Serialize)]
    struct T {
        #[serde(with = "super")]
        d: Duration,
    }

    fn parse(s: &str) -> Result<Duration, String> {
        toml::from_str::<T>(&format!("d = {s}"))
            .map(|t| t.d)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn humantime_obeyed() {
        let cases: &[(&str, u64)] = &[
            ("\"30m\"", 1800),
            ("\"1s\"", 1),
            ("\"90s\"", 90),
            ("\"1h 30m\"", 5400),
            ("\"2h\"", 7200),
            ("\"24h\"", 86_400),
            ("\"5min\"", 300),
            ("\"1day\"", 86_400),
        ];
        for &(s, secs) in cases {
            assert_eq!(parse(s), Ok(Duration::from_secs(secs)), "{s}");
        }
    }

    #[test]
    fn humantime_violated() {
        let cases: &[(&str, &str)] = &[
            ("\"30\"", "time unit needed"),
            ("\"30 parsecs\"", "unknown time unit \"parsecs\""),
            ("\"\"", "value was empty"),
            ("\"m\"", "expected a number at \"m\""),
            ("30", "expected a duration string such as \"30m\""),
        ];
        for &(s, want) in cases {
            let err = parse(s).expect_err(s);
            assert!(err.contains(want), "{s}: {err}");
        }
    }

    #[test]
    fn humantime_serializes_short() {
        let t = T {
            d: Duration::from_secs(5400),
        };
        assert_eq!(
            serde_json::to_string(&t).expect("json"),
            r#"{"d":"1h 30m"}"#
        );
    }

    #[test]
    fn whole_hours_show_as_hours() {
        for (secs, want) in [
            (86_400, "24h"),
            (7200, "2h"),
            (5400, "1h 30m"),
            (1800, "30m"),
            (1, "1s"),
            (0, "0s"),
        ] {
            assert_eq!(show(&Duration::from_secs(secs)), want);
        }
        assert_eq!(show(&Duration::from_millis(999)), "999ms");
    }
}
