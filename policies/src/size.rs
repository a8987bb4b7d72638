//! Byte sizes as policy files write them.
//!
//! Memory and output caps are byte counts, but nobody wants to type `4294967296` into a config
//! file. This module holds the [`ByteSize`] newtype, its small hand-written parser (`"4GiB"`,
//! `"512 MiB"`, or a bare integer of bytes), and the `Display`/serde glue so that a size read
//! from TOML prints back in the same human form.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Units accepted after the number, with their multipliers. Case-sensitive, as written here.
const UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
];

/// Units tried in order when printing a size: binary first (what caps are usually written in),
/// then decimal, each largest first.
const DISPLAY_UNITS: &[(&str, u64)] = &[
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("GB", 1_000_000_000),
    ("MB", 1_000_000),
    ("KB", 1_000),
];

/// A number of bytes.
///
/// Parses from an integer (bytes) or a string such as `"4GiB"` or `"512 MiB"`. Displays in the
/// largest binary unit that divides it exactly (`"4 GiB"`), else the largest such decimal unit
/// (`"10 MB"`), else in bytes (`"1001 B"`); the displayed form parses back to the same value.
/// Serializes as that displayed string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// `n` bytes.
    pub const fn b(n: u64) -> Self {
        Self(n)
    }

    /// `n` KiB (1024 bytes each).
    pub const fn kib(n: u64) -> Self {
        Self(n * 1024)
    }

    /// `n` MiB.
    pub const fn mib(n: u64) -> Self {
        Self(n * (1 << 20))
    }

    /// `n` GiB.
    pub const fn gib(n: u64) -> Self {
        Self(n * (1 << 30))
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

/// Why a string is not a byte size. Its `Display` is a complete, lowercase sentence fragment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid byte size {input:?}: {reason}")]
pub struct ParseByteSizeError {
    input: String,
    reason: String,
}

impl ParseByteSizeError {
    fn new(input: &str, reason: impl Into<String>) -> Self {
        Self {
            input: input.to_owned(),
            reason: reason.into(),
        }
    }
}

fn unit_list() -> String {
    UNITS.iter().map(|(u, _)| *u).collect::<Vec<_>>().join(", ")
}

impl FromStr for ByteSize {
    type Err = ParseByteSizeError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ParseByteSizeError::new(
                input,
                "expected a number and a unit, e.g. \"512 MiB\"",
            ));
        }
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (digits, rest) = s.split_at(split);
        if digits.is_empty() {
            let hint = if s.starts_with('-') {
                "a size cannot be negative"
            } else {
                "expected it to start with a number, e.g. \"512 MiB\""
            };
            return Err(ParseByteSizeError::new(input, hint));
        }
        if rest.starts_with('.') || rest.starts_with(',') {
            return Err(ParseByteSizeError::new(
                input,
                "fractions are not supported; use a smaller unit, e.g. \"1536 MiB\" for 1.5 GiB",
            ));
        }
        let unit = rest.strip_prefix(' ').unwrap_or(rest);
        if unit.is_empty() {
            return Err(ParseByteSizeError::new(
                input,
                format!(
                    "missing unit; write e.g. \"{digits} B\" or a bare integer of bytes (units: {})",
                    unit_list()
                ),
            ));
        }
        let Some(&(_, multiplier)) = UNITS.iter().find(|(u, _)| *u == unit) else {
            return Err(ParseByteSizeError::new(
                input,
                format!(
                    "unknown unit {unit:?}; expected one of {} (case-sensitive)",
                    unit_list()
                ),
            ));
        };
        let too_large = || ParseByteSizeError::new(input, "value is too large");
        let n: u64 = digits.parse().map_err(|_| too_large())?;
        n.checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(too_large)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 != 0 {
            for &(unit, mult) in DISPLAY_UNITS {
                if self.0.is_multiple_of(mult) {
                    return write!(f, "{} {unit}", self.0 / mult);
                }
            }
        }
        write!(f, "{} B", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;

        impl Visitor<'_> for V {
            type Value = ByteSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte size: an integer of bytes or a string such as \"512 MiB\"")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v).map(ByteSize).map_err(|_| {
                    E::custom(format!("invalid byte size {v}: a size cannot be negative"))
                })
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ByteSize, String> {
        s.parse::<ByteSize>().map_err(|e| e.to_string())
    }

    #[test]
    fn obeyed() {
        let cases: &[(&str, u64)] = &[
            ("0B", 0),
            ("1 B", 1),
            ("4GiB", 4 << 30),
            ("512 MiB", 512 << 20),
            ("64MiB", 64 << 20),
            ("1KiB", 1024),
            ("2TiB", 2 << 40),
            ("3KB", 3_000),
            ("3MB", 3_000_000),
            ("3GB", 3_000_000_000),
            ("  8 MiB  ", 8 << 20),
            ("007KiB", 7 << 10),
        ];
        for &(s, want) in cases {
            assert_eq!(parse(s), Ok(ByteSize(want)), "{s}");
        }
    }

    #[test]
    fn violated() {
        let cases: &[(&str, &str)] = &[
            ("", "expected a number and a unit"),
            ("GiB", "expected it to start with a number"),
            ("-1GiB", "cannot be negative"),
            ("4gib", "unknown unit \"gib\""),
            ("4 GIB", "unknown unit \"GIB\""),
            ("4 kb", "unknown unit \"kb\""),
            ("4PiB", "unknown unit \"PiB\""),
            ("4  GiB", "unknown unit \" GiB\""),
            ("1.5GiB", "fractions are not supported"),
            ("1024", "missing unit"),
            ("4 GiB x", "unknown unit \"GiB x\""),
            ("99999999999999999999B", "too large"),
            ("20000000TiB", "too large"),
        ];
        for &(s, want) in cases {
            let err = parse(s).expect_err(s);
            assert!(err.contains(want), "{s}: {err}");
        }
    }

    #[test]
    fn display_round_trips() {
        for (bytes, want) in [
            (0u64, "0 B"),
            (1000, "1 KB"),
            (1001, "1001 B"),
            (1024, "1 KiB"),
            (1536, "1536 B"),
            (10_000_000, "10 MB"),
            (1_024_000, "1000 KiB"),
            (3_000_000_000, "3 GB"),
            (3 << 19, "1536 KiB"),
            (4 << 30, "4 GiB"),
            (1 << 40, "1 TiB"),
        ] {
            let shown = ByteSize(bytes).to_string();
            assert_eq!(shown, want);
            assert_eq!(parse(&shown), Ok(ByteSize(bytes)), "{shown}");
        }
    }

    #[test]
    fn serde_forms() {
        #[derive(Deserialize, Serialize)]
        struct T {
            s: ByteSize,
        }
        let t: T = toml::from_str("s = 1024").expect("int");
        assert_eq!(t.s, ByteSize(1024));
        let t: T = toml::from_str("s = \"2 MiB\"").expect("str");
        assert_eq!(t.s, ByteSize::mib(2));
        let err = toml::from_str::<T>("s = -5").err().expect("negative");
        assert!(err.to_string().contains("cannot be negative"), "{err}");
        let err = toml::from_str::<T>("s = 1.5").err().expect("float");
        assert!(err.to_string().contains("a byte size"), "{err}");
        assert_eq!(
            serde_json::to_string(&T {
                s: ByteSize::gib(4)
            })
            .expect("json"),
            r#"{"s":"4 GiB"}"#
        );
    }
}
