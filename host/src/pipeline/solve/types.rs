//! What a solve says about itself: its stages, the events it reports while it runs, each
//! attempt's record, the report of a success and the error of a failure (with whether retrying
//! later may help). Kept apart from the attempt loop so that readers of these values (the
//! worker, the CLI, the API's schema) need not read the loop.

use serde::Serialize;

use super::FenceError;
use crate::pipeline::analyse::{AnalyseError, CompetitionAnalysis, Metric};
use crate::pipeline::generate::{GenerateError, LlmUsage, RequestKind};
use crate::pipeline::score::ScoreError;
use crate::pipeline::validate::InvalidSubmission;
use crate::pipeline::workdir::WorkDirError;
use crate::sandbox::{Backend, Outcome, OutputFileError, SandboxError, SelectError};
pub use crate::stage::Stage;
use crate::storage::{StoreError, StoredSubmission};

/// Why one attempt's code failed: fed back to the generator, and the next attempt runs.
#[derive(Debug, thiserror::Error)]
pub enum AttemptFailure {
    /// No sandbox the policy allows can run the code on this host.
    #[error(transparent)]
    Backend(#[from] SelectError),
    /// The code crashed, exited non-zero or broke a cap.
    #[error("{summary}")]
    Run {
        /// The sandbox outcome's one-line summary.
        summary: String,
    },
    /// The code ran but left no readable `/output/submission.csv` (none, or a link, a
    /// folder or a special file in its place).
    #[error("invalid submission: {0}")]
    Unreadable(#[from] OutputFileError),
    /// The code ran but its submission does not match the sample.
    #[error(transparent)]
    Invalid(#[from] InvalidSubmission),
    /// The submission is valid but the host cannot score it against the holdout.
    #[error("the host cannot score the submission: {0}")]
    Score(#[from] ScoreError),
    /// The generator's reply held no code: the attempt is used, and the next request says so.
    #[error(
        "{provider} replied without any Python code; reply with one complete script in a \
         single ```python block"
    )]
    NoCode {
        /// The generator.
        provider: String,
    },
    /// The search was asked to end while this candidate was still being written or run.
    #[error("stopped before it finished: the search was asked to end")]
    Stopped,
}

impl Serialize for AttemptFailure {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Something that happened during a solve.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum SolveEvent {
    /// A stage began (`attempt` is 0 outside the attempt loop).
    StageStarted {
        stage: Stage,
        /// The attempt it belongs to.
        attempt: u32,
    },
    /// A stage ended well.
    StageFinished {
        stage: Stage,
        /// The attempt it belongs to.
        attempt: u32,
        /// How long it took.
        millis: u64,
    },
    /// The generator answered an attempt (with code or without), after `llm`'s reply when an
    /// LLM wrote it.
    Generated {
        attempt: u32,
        /// The LLM reply and its token counts; `None` for code written without an LLM.
        llm: Option<LlmUsage>,
    },
    /// An attempt failed; the reason goes to the generator.
    AttemptFailed {
        attempt: u32,
        /// Why.
        reason: AttemptFailure,
    },
    /// An attempt ended, well or not: its whole record, so that its log can be written now
    /// rather than when the job ends (a crash then loses nothing of the attempts before).
    AttemptEnded {
        /// The attempt's record (`error` is `None` for the successful one).
        record: Box<AttemptRecord>,
        /// The validation score the successful attempt printed.
        score: Option<f64>,
    },
    /// The job runs a single shot although its policy asks for a search, and why (the
    /// training rows cannot be split safely).
    SearchSkipped {
        /// Why no holdout was made.
        reason: String,
    },
    /// The search's holdout: how its rows were chosen.
    HoldoutReady {
        /// E.g. `stratified by "species", 20% of 344 rows`.
        split: String,
    },
    /// A candidate of the search began: its code is asked for next.
    CandidateStarted {
        candidate: u32,
        /// What it is asked for.
        kind: RequestKind,
        /// The candidate it improves on or fixes.
        parent: Option<u32>,
    },
    /// A candidate ran on the holdout and the host scored it.
    CandidateScored {
        candidate: u32,
        /// What it was asked for.
        kind: RequestKind,
        /// The metric.
        metric: Metric,
        /// The host's score.
        score: f64,
        /// The best host score so far, this one included.
        best_score: f64,
        /// Candidates tried so far, failed ones included.
        candidates_tried: u32,
        /// The candidate's whole time: writing its code, its run and its scoring.
        millis: u64,
    },
    /// A candidate failed on the holdout.
    CandidateFailed {
        candidate: u32,
        /// What it was asked for.
        kind: RequestKind,
        /// Why.
        reason: AttemptFailure,
        /// The candidate's whole time until it failed.
        millis: u64,
    },
    /// The search is over; the best candidate now runs on the full data.
    /// The host blends the best candidates: it re-runs each on the full data and combines
    /// their submissions with these weights, chosen on the holdout.
    BlendChosen {
        /// Each member candidate and its weight, best first.
        members: Vec<BlendMember>,
        /// The blend's host score on the holdout.
        score: f64,
        /// The best lone candidate's host score on the holdout.
        alone: f64,
    },
    SearchEnded {
        /// Why it ended.
        end: SearchEnd,
        /// The best host score, if a candidate was scored.
        best_score: Option<f64>,
        /// Candidates tried.
        candidates_tried: u32,
        /// The LLM tokens the candidates' code cost, as the providers said.
        tokens: u64,
    },
}

impl SolveEvent {
    /// The search journal's line for a search event (the job's log and `solve` print it);
    /// `None` for the events of stages and attempts.
    pub fn journal_line(&self) -> Option<String> {
        Some(match self {
            Self::SearchSkipped { reason } => {
                format!("no holdout, so a single shot instead of a search: {reason}")
            }
            Self::HoldoutReady { split } => format!("search holdout: {split}"),
            Self::CandidateStarted {
                candidate,
                kind,
                parent,
            } => match parent {
                Some(parent) => format!("candidate {candidate} ({kind} of {parent}) started"),
                None => format!("candidate {candidate} ({kind}) started"),
            },
            Self::CandidateScored {
                candidate,
                kind,
                metric,
                score,
                best_score,
                candidates_tried,
                ..
            } => format!(
                "candidate {candidate} ({kind}): host score {score:.6} ({metric:?}); best \
                 {best_score:.6} after {candidates_tried} candidate(s)"
            ),
            Self::CandidateFailed {
                candidate,
                kind,
                reason,
                ..
            } => format!("candidate {candidate} ({kind}) failed: {reason}"),
            Self::BlendChosen {
                members,
                score,
                alone,
            } => {
                let parts: Vec<String> = members
                    .iter()
                    .map(|m| format!("candidate {} x {:.1}", m.candidate, m.weight))
                    .collect();
                format!(
                    "blend of {}: host score {score:.6} on the holdout, against {alone:.6} alone; \
                     each member is re-run on the full data",
                    parts.join(" + ")
                )
            }
            Self::SearchEnded {
                end,
                best_score,
                candidates_tried,
                tokens,
            } => format!(
                "search ended after {candidates_tried} candidate(s) ({end}); best host score {}; \
                 {tokens} LLM tokens",
                best_score.map_or_else(|| "none".to_owned(), |s| format!("{s:.6}"))
            ),
            _ => return None,
        })
    }
}

/// Why a search stopped trying candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SearchEnd {
    /// Every candidate the policy asks for was tried.
    Done,
    /// The next candidate would not have left the final run the time it needs.
    OutOfBudget,
    /// Failures used the policy's attempts.
    AttemptsUsed,
    /// The LLM tokens used reached the policy's `max-tokens`.
    TokenBudget,
    /// The user asked the search to end (`POST /jobs/{id}/stop`, or Ctrl-C in `solve`).
    Stopped,
}

impl std::fmt::Display for SearchEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Done => "every candidate was tried",
            Self::OutOfBudget => {
                "out of time budget: the next candidate would not leave the final run its time"
            }
            Self::AttemptsUsed => "failed candidates used the policy's attempts",
            Self::TokenBudget => "the job's LLM tokens reached the policy's max-tokens",
            Self::Stopped => "stopped on request: the best candidate so far is submitted",
        })
    }
}

/// One candidate of a search, for the job's logs: the search journal.
#[derive(Debug, Clone, Serialize)]
pub struct CandidateRecord {
    /// 1-based.
    pub candidate: u32,
    /// What it was asked for.
    pub kind: RequestKind,
    /// The candidate it improves on or fixes.
    pub parent: Option<u32>,
    /// Which generator wrote the code.
    pub generator: String,
    pub code: String,
    /// The backend that ran it, if it ran.
    pub backend: Option<Backend>,
    /// Generation, run, validation and scoring, in milliseconds.
    pub millis: u64,
    /// The sandbox run's own time, if it ran.
    pub run_millis: Option<u64>,
    /// WASI fuel used, if it ran on the WASI backend.
    pub fuel_used: Option<u64>,
    /// The LLM tokens its code cost, if the provider said.
    pub tokens: Option<u64>,
    /// The host's score on the holdout, if it got that far.
    pub host_score: Option<f64>,
    /// The score the script printed about itself: logged, never used.
    pub printed_score: Option<f64>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Where a report's `validation_score` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValidationSource {
    /// The script's own claim, unchecked (a single shot).
    Script,
    /// The host's score of the submitted candidate on the holdout.
    Host,
}

/// What a search did: its journal and how it ended.
#[derive(Debug, Clone, Serialize)]
pub struct SearchSummary {
    /// How the holdout rows were chosen.
    pub holdout: String,
    /// The metric every candidate was scored by.
    pub metric: Metric,
    /// The submitted candidate's number.
    pub submitted: u32,
    /// The best host score of all candidates.
    pub best_score: f64,
    /// Candidates tried, failed ones included.
    pub candidates_tried: u32,
    /// Why the search stopped.
    pub end: SearchEnd,
    /// The LLM tokens every candidate's code cost together, as the providers said.
    pub tokens: u64,
    /// Every candidate, in the order they started.
    pub candidates: Vec<CandidateRecord>,
    /// The blend submitted, when the host combined the best candidates.
    pub blend: Option<Vec<BlendMember>>,
}

/// A candidate in the host's blend.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BlendMember {
    /// The candidate.
    pub candidate: u32,
    /// Its weight; the members' weights sum to 1.
    pub weight: f64,
}

/// One attempt's record, for the job's logs.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    /// 1-based.
    pub attempt: u32,
    /// Which generator wrote the code.
    pub generator: String,
    pub code: String,
    /// The backend that ran it, if it ran.
    pub backend: Option<Backend>,
    /// The sandbox outcome, if it ran.
    pub outcome: Option<Outcome>,
    /// Why the attempt failed, if it did.
    pub error: Option<String>,
    /// The search's candidate whose code this is (on the holdout or re-run on the full data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate: Option<u32>,
}

/// What a successful solve produced.
#[derive(Debug, Clone, Serialize)]
pub struct SolveReport {
    /// The competition.
    pub slug: String,
    /// Where the submission is.
    pub submission: StoredSubmission,
    /// The analysis the code was written from.
    pub analysis: CompetitionAnalysis,
    /// Every attempt, the last one successful.
    pub attempts: Vec<AttemptRecord>,
    /// After a search, the host's score of the submitted candidate on the holdout; after a
    /// single shot, the score the script printed, if it printed a finite one (its own claim,
    /// not checked by the host).
    pub validation_score: Option<f64>,
    /// Which of the two `validation_score` is.
    pub validation_score_source: Option<ValidationSource>,
    /// The search, when one ran.
    pub search: Option<SearchSummary>,
    /// What ran the submitted code, with its version: the guest runtime's package and version
    /// on WASI, the image on Docker.
    pub runtime: String,
    /// The host's seed for the job (it chose the holdout rows), when a search ran.
    pub seed: Option<u64>,
}

/// Why a solve ended without a submission.
#[derive(Debug, thiserror::Error)]
pub enum SolveError {
    /// The competition's files do not make a task.
    #[error("cannot analyse the competition: {0}")]
    Analyse(#[source] AnalyseError),
    /// The generator could not produce code.
    #[error("cannot generate code: {0}")]
    Generate(#[source] GenerateError),
    /// The sandbox could not run the code.
    #[error("cannot run the code: {0}")]
    Sandbox(#[source] SandboxError),
    /// The submission could not be stored.
    #[error("cannot store the submission: {0}")]
    Store(#[source] StoreError),
    /// Every attempt's code failed.
    #[error("all {attempts} attempts failed; the last: {last_error}")]
    AttemptsExhausted {
        /// How many attempts ran.
        attempts: u32,
        /// The last attempt's failure.
        last_error: String,
        /// Every attempt.
        records: Vec<AttemptRecord>,
    },
    /// The job was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// Another worker owns the job now: this one's lease lapsed before the store, so it
    /// stored nothing and reports nothing.
    #[error("the lease was lost before the submission was stored; another worker owns the job")]
    Lost,
    /// Whether this worker still owns the job could not be told before the store, so nothing
    /// was stored.
    #[error(transparent)]
    Fence(#[from] FenceError),
    /// The job's work folder could not be made.
    #[error(transparent)]
    WorkDir(#[from] WorkDirError),
    /// A host-side failure (a blocking task panicked).
    #[error("internal error: {0}")]
    Internal(String),
}

impl SolveError {
    /// Whether the same job may succeed if run again later (an infrastructure hiccup), as opposed
    /// to a failure that will recur.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Generate(e) => e.is_retryable(),
            Self::Sandbox(e) => e.is_retryable(),
            Self::Store(e) => e.is_retryable(),
            Self::Fence(e) => e.retryable,
            Self::WorkDir(e) => e.is_retryable(),
            Self::Internal(_) => true,
            Self::Analyse(_) | Self::AttemptsExhausted { .. } | Self::Cancelled | Self::Lost => {
                false
            }
        }
    }
}

/// The score from a line like `validation accuracy: 0.93412 ...` that the baseline prints.
pub(super) fn printed_score(stdout: &str) -> Option<f64> {
    stdout.lines().rev().find_map(|line| {
        let rest = line.trim().strip_prefix("validation ")?;
        let (_, value) = rest.split_once(':')?;
        value
            .split_whitespace()
            .next()?
            .parse()
            .ok()
            .filter(|x: &f64| x.is_finite())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_printed_validation_score() {
        assert_eq!(
            printed_score("fit\nvalidation rmse: 0.12500 over 3 hold-outs\nwrote\n"),
            Some(0.125)
        );
        assert_eq!(printed_score("nothing here\n"), None);
        assert_eq!(printed_score("validation auc: NaN\n"), None);
        assert_eq!(printed_score("validation auc: inf\n"), None);
    }
}
