//! Caps that a single request asks for.
//!
//! A job may ask for tighter limits than its policy (a quick smoke run, say), but never looser
//! ones: the policy is what the operator allowed. [`Limits::lowered_by`] enforces that rule in one
//! place so the CLI, the REST API and the worker cannot disagree about it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::show as show_duration;
use crate::validate::{self, group};
use crate::{ByteSize, Limits, PolicyError};

/// Origin used in errors about a request's overrides.
const REQUEST: &str = "request";

/// Per-request caps; `None` keeps the policy's value.
///
/// Deserializes from the same kebab-case keys as `[limits]`, e.g. `{"memory": "1GiB"}`.
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
}

impl LimitOverrides {
    /// True when the request overrides nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl Limits {
    /// These limits with a request's overrides applied.
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
}
