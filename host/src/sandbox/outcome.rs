//! What a sandbox run produced, in the one shape every backend reports and `sandbox run`
//! prints: exit code, the limit that stopped it, resource use, and output tails.

use serde::{Deserialize, Serialize};

use super::Backend;
use crate::text::{MESSAGE_CHARS, QUOTED_VALUE_CHARS, head};

/// The marker the guest harness puts before its structured error line on stderr.
pub const ERROR_MARKER: &str = "__KS_ERROR__ ";

/// The cap that stopped or broke a run. Docker's process-count cap is not one of them: it
/// refuses a fork, which the script sees as an error of its own, and does not stop the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LimitHit {
    /// The instruction budget ran out.
    Fuel,
    /// A memory grow was denied (WASI) or the container was OOM-killed (Docker).
    Memory,
    /// The wall-clock deadline passed.
    WallTime,
    /// stdout, stderr or `/output` went past the output cap.
    Output,
    /// `/tmp` and `/output` together went past the disk cap.
    Disk,
}

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Fuel => "fuel",
            Self::Memory => "memory",
            Self::WallTime => "wall-time",
            Self::Output => "output",
            Self::Disk => "disk",
        })
    }
}

/// An uncaught exception in the guest script, as the harness reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuestError {
    /// The exception's type name, e.g. `KeyError`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `str(exception)`, bounded.
    pub message: String,
    /// The line of the script where it was raised, if the script is on the stack.
    pub line: Option<u32>,
}

impl GuestError {
    /// Finds the harness's structured line in a stderr tail (the last one wins). The line is
    /// the guest's to write, so its fields are cut to a bound here, whatever the harness did.
    pub fn from_stderr(stderr: &str) -> Option<Self> {
        let line = stderr
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(ERROR_MARKER))?;
        let error: Self = serde_json::from_str(line).ok()?;
        Some(Self {
            kind: head(&error.kind, QUOTED_VALUE_CHARS),
            message: head(&error.message, MESSAGE_CHARS / 2),
            line: error.line,
        })
    }
}

/// How one sandbox run ended. Serialises to the fixed JSON of `sandbox run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Which backend ran it.
    pub backend: Backend,
    /// The script's exit status; `None` when it was stopped or trapped.
    pub exit_code: Option<i32>,
    /// The cap that stopped or broke the run, if any.
    pub limit: Option<LimitHit>,
    /// Instructions spent (WASI only).
    pub fuel_used: Option<u64>,
    /// The largest memory the run reached, in bytes, where the backend can tell.
    pub peak_memory_bytes: Option<u64>,
    /// Wall time of the run, in milliseconds.
    pub wall_ms: u64,
    /// The tail of stdout, lossily decoded.
    pub stdout: String,
    /// The tail of stderr, lossily decoded.
    pub stderr: String,
    /// Whether stdout went past the output cap (only the tail is kept).
    pub stdout_truncated: bool,
    /// Whether stderr went past the output cap (only the tail is kept).
    pub stderr_truncated: bool,
    /// The uncaught exception, when the harness reported one.
    pub error: Option<GuestError>,
    /// A trap or host-side stop that ended the run, in words (e.g. `wasm trap: out of fuel`).
    pub trap: Option<String>,
    /// Whether the run was cancelled by the caller.
    pub cancelled: bool,
    /// Links and special files the script left in `/output` (paths inside it), deleted unread
    /// when the run ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_from_output: Vec<String>,
}

impl Outcome {
    /// Logs the run's end in a line of the caller's span (the job's, for a job's run); the
    /// guest's own output stays out of it.
    pub(crate) fn trace_end(&self) {
        tracing::info!(
            backend = %self.backend,
            exit_code = self.exit_code,
            limit = self.limit.map(tracing::field::display),
            wall_ms = self.wall_ms,
            cancelled = self.cancelled,
            "sandbox run ended"
        );
    }

    /// The script ran to completion with status 0 and within every cap.
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0) && self.limit.is_none() && !self.cancelled
    }

    /// One line saying why a run failed, for logs and for the code generator's retry prompt.
    pub fn failure_summary(&self) -> Option<String> {
        if self.succeeded() {
            return None;
        }
        if self.cancelled {
            return Some("the run was cancelled".to_owned());
        }
        if let Some(limit) = self.limit {
            return Some(match limit {
                LimitHit::Fuel => "the script ran out of fuel (its instruction budget)".to_owned(),
                LimitHit::Memory => "the script needed more memory than the cap allows".to_owned(),
                LimitHit::WallTime => {
                    "the script did not finish before the wall-time cap".to_owned()
                }
                LimitHit::Output => "the script wrote more output than the cap allows".to_owned(),
                LimitHit::Disk => "the script wrote more to /tmp and /output than the disk cap \
                                   allows"
                    .to_owned(),
            });
        }
        if let Some(error) = &self.error {
            let at = error
                .line
                .map(|l| format!(" at line {l}"))
                .unwrap_or_default();
            return Some(format!("{}{at}: {}", error.kind, error.message));
        }
        if let Some(trap) = &self.trap {
            return Some(format!(
                "the guest trapped: {}",
                head(trap, MESSAGE_CHARS / 2)
            ));
        }
        Some(format!(
            "the script exited with status {}",
            self.exit_code
                .map_or_else(|| "unknown".to_owned(), |c| c.to_string())
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_last_structured_error_line() {
        let stderr = "Traceback...\n__KS_ERROR__ {\"type\":\"A\",\"message\":\"x\",\"line\":1}\n\
                      __KS_ERROR__ {\"type\":\"KeyError\",\"message\":\"'y'\",\"line\":7,\"frames\":[]}\n";
        let error = GuestError::from_stderr(stderr).expect("a structured line");
        assert_eq!(error.kind, "KeyError");
        assert_eq!(error.line, Some(7));
        assert_eq!(GuestError::from_stderr("plain text\n"), None);
    }

    #[test]
    fn a_huge_error_line_is_cut_to_size() {
        let line = format!(
            "__KS_ERROR__ {{\"type\":\"{}\",\"message\":\"{}\",\"line\":3}}\n",
            "T".repeat(10_000),
            "m".repeat(1_000_000)
        );
        let error = GuestError::from_stderr(&line).expect("parsed");
        assert!(
            error.kind.len() < QUOTED_VALUE_CHARS + 50,
            "{}",
            error.kind.len()
        );
        assert!(
            error.message.len() < MESSAGE_CHARS,
            "{}",
            error.message.len()
        );
        let outcome = Outcome {
            backend: Backend::Wasm,
            exit_code: Some(1),
            limit: None,
            fuel_used: None,
            peak_memory_bytes: None,
            wall_ms: 1,
            stdout: String::new(),
            stderr: line,
            stdout_truncated: false,
            stderr_truncated: false,
            error: Some(error),
            trap: None,
            cancelled: false,
            removed_from_output: Vec::new(),
        };
        let summary = outcome.failure_summary().expect("failed");
        assert!(summary.len() < MESSAGE_CHARS, "{}", summary.len());
    }

    #[test]
    fn limit_names_match_the_contract() {
        for (limit, name) in [
            (LimitHit::Fuel, "\"fuel\""),
            (LimitHit::Memory, "\"memory\""),
            (LimitHit::WallTime, "\"wall-time\""),
            (LimitHit::Output, "\"output\""),
            (LimitHit::Disk, "\"disk\""),
        ] {
            assert_eq!(serde_json::to_string(&limit).expect("serialises"), name);
        }
    }
}
