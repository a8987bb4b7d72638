//! Caps that a single request asks for.
//!
//! A job may ask for tighter limits than its policy (a quick smoke run, say), but never looser
//! ones: the policy is what the operator allowed. [`Policy::lowered_by`] enforces that rule in
//! one place so the CLI, the REST API and the worker cannot disagree about it, and
//! [`LimitOverrides::parse`] reads a request's values from text (a query string) the way policy
//! files write them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::show as show_duration;
use crate::validate::{self, ATTEMPTS, group, in_range, invalid};
use crate::{ByteSize, Limits, Policy, PolicyError};

/// Origin used in errors about a request's overrides.
const REQUEST: &str = "request";

/// Per-request caps; `None` keeps the policy's value.
///
/// Deserializes from the same kebab-case keys as `[limits]`, plus `attempts` for
/// `[attempts] max`, e.g. `{"memory": "1GiB", "attempts": 1}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitOverrides {
    /// Lower wall-clock deadline.
    #[serde(
        with = "crate::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub wall_time: Option<Duration>,
    /// Lower memory cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteSize>,
    /// Lower fuel budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Lower output cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<ByteSize>,
    /// Fewer attempts of generated code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
}

impl LimitOverrides {
    /// The names a request gives its overrides under, in the order errors check them.
    pub const KEYS: [&'static str; 5] = ["wall-time", "memory", "fuel", "output", "attempts"];

    /// True when the request overrides nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Overrides from `(key, text)` pairs as a request gives them: `wall-time` a duration
    /// (`"5m"`), `memory` and `output` sizes (`"1GiB"`), `fuel` and `attempts` integers (`_`
    /// may group digits). A value that does not parse, or an unknown key, is a
    /// [`PolicyError::Invalid`] naming the key; a key given twice keeps the last value.
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, PolicyError> {
        let mut out = Self::default();
        for (key, text) in pairs {
            let text = text.trim();
            match key {
                "wall-time" => {
                    let d = crate::duration::parse(text)
                        .map_err(|e| invalid(REQUEST, "limits.wall-time", e))?;
                    out.wall_time = Some(d);
                }
                "memory" => out.memory = Some(size("limits.memory", text)?),
                "output" => out.output = Some(size("limits.output", text)?),
                "fuel" => out.fuel = Some(integer("limits.fuel", text)?),
                "attempts" => {
                    let n = integer("attempts.max", text)?;
                    let n = u32::try_from(n).map_err(|_| {
                        invalid(REQUEST, "attempts.max", format!("{text:?} is too large"))
                    })?;
                    out.attempts = Some(n);
                }
                other => {
                    return Err(invalid(
                        REQUEST,
                        other,
                        format!("is not a cap a request can set ({})", Self::KEYS.join(", ")),
                    ));
                }
            }
        }
        Ok(out)
    }
}

fn size(key: &str, text: &str) -> Result<ByteSize, PolicyError> {
    text.parse()
        .map_err(|e: crate::ParseByteSizeError| invalid(REQUEST, key, e.to_string()))
}

/// A non-negative integer, digits optionally grouped by `_` as TOML writes them.
fn integer(key: &str, text: &str) -> Result<u64, PolicyError> {
    let digits: String = text.chars().filter(|c| *c != '_').collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid(
            REQUEST,
            key,
            format!("{text:?} is not a whole number, e.g. 5_000_000"),
        ));
    }
    digits
        .parse()
        .map_err(|_| invalid(REQUEST, key, format!("{text:?} is too large")))
}

impl Limits {
    /// These limits with a request's `[limits]` overrides applied (its `attempts` belongs to
    /// the policy: see [`Policy::lowered_by`]).
    ///
    /// A request may only lower caps: a value above the policy's is a
    /// [`PolicyError::RaisesCap`] naming the key and both values. A lowered value must still be
    /// within the usual bounds (e.g. memory at least 64 MiB), else [`PolicyError::Invalid`].
    pub fn lowered_by(&self, req: &LimitOverrides) -> Result<Limits, PolicyError> {
        let out = Limits {
            wall_time: lower(
                "limits.wall-time",
                self.wall_time,
                req.wall_time,
                show_duration,
            )?,
            memory: lower(
                "limits.memory",
                self.memory,
                req.memory,
                ByteSize::to_string,
            )?,
            fuel: lower("limits.fuel", self.fuel, req.fuel, |f| group(*f))?,
            output: lower(
                "limits.output",
                self.output,
                req.output,
                ByteSize::to_string,
            )?,
            disk: self.disk,
        };
        validate::limits(&out, REQUEST)?;
        Ok(out)
    }
}

impl Policy {
    /// This policy with a request's overrides applied: the `[limits]` ones as
    /// [`Limits::lowered_by`] does, and `attempts` lowering `[attempts] max` under the same
    /// rule (at least 1).
    pub fn lowered_by(&self, req: &LimitOverrides) -> Result<Policy, PolicyError> {
        let mut out = self.clone();
        out.limits = self.limits.lowered_by(req)?;
        out.attempts.max = lower("attempts.max", self.attempts.max, req.attempts, |n| {
            n.to_string()
        })?;
        in_range(REQUEST, "attempts.max", out.attempts.max, &ATTEMPTS, |n| {
            n.to_string()
        })?;
        Ok(out)
    }
}

fn lower<T: PartialOrd + Copy>(
    key: &str,
    cap: T,
    requested: Option<T>,
    show: impl Fn(&T) -> String,
) -> Result<T, PolicyError> {
    match requested {
        None => Ok(cap),
        Some(v) if v <= cap => Ok(v),
        Some(v) => Err(PolicyError::RaisesCap {
            key: key.to_owned(),
            requested: show(&v),
            cap: show(&cap),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Limits {
        Limits::default()
    }

    #[test]
    fn empty_request_keeps_the_policy() {
        let req = LimitOverrides::default();
        assert!(req.is_empty());
        assert_eq!(base().lowered_by(&req).expect("ok"), base());
    }

    #[test]
    fn lowering_and_equal_values_are_allowed() {
        let req = LimitOverrides {
            wall_time: Some(Duration::from_secs(60)),
            memory: Some(ByteSize::gib(1)),
            fuel: Some(base().fuel),
            output: Some(ByteSize::mib(1)),
            attempts: None,
        };
        let got = base().lowered_by(&req).expect("lowered");
        assert_eq!(got.wall_time, Duration::from_secs(60));
        assert_eq!(got.memory, ByteSize::gib(1));
        assert_eq!(got.fuel, base().fuel);
        assert_eq!(got.output, ByteSize::mib(1));
    }

    #[test]
    fn raising_is_an_error_naming_key_and_values() {
        let cases = [
            (
                LimitOverrides {
                    memory: Some(ByteSize::gib(8)),
                    ..Default::default()
                },
                "request raises `limits.memory` to 8 GiB, above the policy's cap of 4 GiB; \
                 a request may only lower caps",
            ),
            (
                LimitOverrides {
                    wall_time: Some(Duration::from_secs(3600)),
                    ..Default::default()
                },
                "request raises `limits.wall-time` to 1h, above the policy's cap of 30m; \
                 a request may only lower caps",
            ),
            (
                LimitOverrides {
                    fuel: Some(base().fuel + 1),
                    ..Default::default()
                },
                "request raises `limits.fuel` to 20_000_000_000_001, above the policy's cap of \
                 20_000_000_000_000; a request may only lower caps",
            ),
            (
                LimitOverrides {
                    output: Some(ByteSize(64 * 1024 * 1024 + 1)),
                    ..Default::default()
                },
                "request raises `limits.output` to 67108865 B, above the policy's cap of 64 MiB; \
                 a request may only lower caps",
            ),
        ];
        for (req, want) in cases {
            let err = base().lowered_by(&req).expect_err(want);
            assert!(matches!(err, PolicyError::RaisesCap { .. }));
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn lowering_below_the_floor_is_invalid() {
        let req = LimitOverrides {
            memory: Some(ByteSize::mib(1)),
            ..Default::default()
        };
        let err = base().lowered_by(&req).expect_err("too small");
        assert_eq!(
            err.to_string(),
            "invalid value in request: `limits.memory` is 1 MiB, below the minimum of 64 MiB \
             (allowed: 64 MiB to 64 GiB)"
        );
    }

    #[test]
    fn deserializes_from_json() {
        let req: LimitOverrides =
            serde_json::from_str(r#"{"wall-time": "5m", "memory": "1GiB", "fuel": 5000000}"#)
                .expect("json");
        assert_eq!(req.wall_time, Some(Duration::from_secs(300)));
        assert_eq!(req.memory, Some(ByteSize::gib(1)));
        assert_eq!(req.fuel, Some(5_000_000));
        assert_eq!(req.output, None);
        assert_eq!(
            serde_json::to_string(&req).expect("back"),
            r#"{"wall-time":"5m","memory":"1 GiB","fuel":5000000}"#
        );
        assert!(serde_json::from_str::<LimitOverrides>(r#"{"cpus": 2}"#).is_err());
    }

    #[test]
    fn attempts_lower_the_policy_and_never_raise_it() {
        let policy = Policy::default();
        assert_eq!(policy.attempts.max, 3);
        let lowered = policy
            .lowered_by(&LimitOverrides {
                attempts: Some(1),
                memory: Some(ByteSize::gib(1)),
                ..Default::default()
            })
            .expect("lowered");
        assert_eq!(lowered.attempts.max, 1);
        assert_eq!(lowered.limits.memory, ByteSize::gib(1));
        assert_eq!(lowered.limits.fuel, policy.limits.fuel);
        assert_eq!(lowered.sandbox, policy.sandbox);
        let same = policy
            .lowered_by(&LimitOverrides {
                attempts: Some(3),
                ..Default::default()
            })
            .expect("equal is allowed");
        assert_eq!(same, policy);

        let err = policy
            .lowered_by(&LimitOverrides {
                attempts: Some(4),
                ..Default::default()
            })
            .expect_err("raises");
        assert_eq!(
            err.to_string(),
            "request raises `attempts.max` to 4, above the policy's cap of 3; a request may \
             only lower caps"
        );
        let err = policy
            .lowered_by(&LimitOverrides {
                attempts: Some(0),
                ..Default::default()
            })
            .expect_err("zero");
        assert_eq!(
            err.to_string(),
            "invalid value in request: `attempts.max` is 0, below the minimum of 1 (allowed: 1 \
             to 20)"
        );
        // Limits alone leave attempts to the policy.
        let limits = policy
            .limits
            .lowered_by(&LimitOverrides {
                attempts: Some(1),
                ..Default::default()
            })
            .expect("limits");
        assert_eq!(limits, policy.limits);
    }

    #[test]
    fn parses_a_requests_text_as_policy_files_write_it() {
        let req = LimitOverrides::parse([
            ("wall-time", "5m"),
            ("memory", "1GiB"),
            ("fuel", "5_000_000"),
            ("output", "2 MiB"),
            ("attempts", " 1 "),
        ])
        .expect("parses");
        assert_eq!(
            req,
            LimitOverrides {
                wall_time: Some(Duration::from_secs(300)),
                memory: Some(ByteSize::gib(1)),
                fuel: Some(5_000_000),
                output: Some(ByteSize::mib(2)),
                attempts: Some(1),
            }
        );
        assert!(LimitOverrides::parse([]).expect("nothing").is_empty());
        let cases = [
            (
                ("wall-time", "5"),
                "`limits.wall-time` invalid duration \"5\"",
            ),
            (("memory", "lots"), "`limits.memory`"),
            (("output", "-1 B"), "`limits.output`"),
            (
                ("fuel", "1e9"),
                "`limits.fuel` \"1e9\" is not a whole number",
            ),
            (("fuel", ""), "`limits.fuel` \"\" is not a whole number"),
            (
                ("fuel", "99999999999999999999"),
                "`limits.fuel` \"99999999999999999999\" is too large",
            ),
            (
                ("attempts", "-1"),
                "`attempts.max` \"-1\" is not a whole number",
            ),
            (
                ("attempts", "5000000000"),
                "`attempts.max` \"5000000000\" is too large",
            ),
            (("cpus", "2"), "`cpus` is not a cap a request can set"),
        ];
        for ((key, text), want) in cases {
            let err = LimitOverrides::parse([(key, text)]).expect_err(key);
            assert!(matches!(err, PolicyError::Invalid { .. }), "{err:?}");
            assert!(err.to_string().contains(want), "{key}={text:?}: {err}");
        }
    }

    #[test]
    fn attempts_round_trip_through_json() {
        let req = LimitOverrides {
            attempts: Some(2),
            ..Default::default()
        };
        let json = serde_json::to_string(&req).expect("json");
        assert_eq!(json, r#"{"attempts":2}"#);
        assert_eq!(
            serde_json::from_str::<LimitOverrides>(&json).expect("back"),
            req
        );
    }
}
