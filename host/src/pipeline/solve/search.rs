//! The search's bookkeeping: which candidate to ask for next and as what (draft, improve,
//! debug), whether the time budget lets it start, and which candidates the final full-data
//! run tries, best host score first.
//!
//! Kept apart from the loop that runs candidates so that every decision is a plain function of
//! what has been measured, tested without a sandbox. The budget covers the whole job: the
//! final run is reserved from the slowest measured holdout run, scaled to the full data, and a
//! candidate that would not leave that reserve does not start.

use std::time::Duration;

use ks_policies::Search;

use super::types::{CandidateRecord, SearchEnd};
use crate::pipeline::analyse::Metric;
use crate::pipeline::generate::{ImproveFrom, PreviousAttempt, RequestKind};
use crate::pipeline::score::HostScore;
use crate::pipeline::score::compare::SURE_WIN;
use crate::sandbox::Outcome;

/// How much longer than its slowest holdout run the final run is reckoned to take, with one
/// fold: the full data has 1 / (1 - holdout fraction) the fit rows, and a margin for the test
/// rows.
const FINAL_RUN_FACTOR: f64 = 1.6;
/// That margin alone, for folds: a fold's run fits on (folds - 1) / folds of the rows.
const FINAL_RUN_MARGIN: f64 = 1.28;
/// Share of what is left of the budget a first candidate may use, when nothing was measured
/// yet: the rest is the final run's.
const FIRST_RUN_SHARE: f64 = 0.5;

/// What the next step of a search is.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Next {
    /// Ask for candidate `number`.
    Start(Ask),
    /// Stop searching.
    Stop(SearchEnd),
}

/// A request to make: the candidate's number, kind and parent.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Ask {
    pub number: u32,
    pub kind: RequestKind,
    pub parent: Option<u32>,
    pub previous: Option<PreviousAttempt>,
    pub improve: Option<ImproveFrom>,
}

/// A candidate as the search remembers it.
#[derive(Debug, Clone)]
pub(super) struct Tried {
    pub record: CandidateRecord,
    /// The host's score, if it was scored.
    pub score: Option<HostScore>,
    /// The failure fed back to a debug request.
    pub failure: Option<String>,
    /// How long its sandbox run took.
    pub run: Option<Duration>,
    /// The sandbox outcome, if it ran.
    pub outcome: Option<Outcome>,
    /// The submission it wrote in the holdout view, if it was scored.
    pub submission: Option<std::sync::Arc<Vec<u8>>>,
}

/// The state of one job's search.
#[derive(Debug)]
pub(super) struct SearchState {
    candidates: u32,
    max_failures: u32,
    budget: Duration,
    max_tokens: Option<u64>,
    metric: Metric,
    /// How much longer than a holdout run the final run is reckoned to take.
    final_run_factor: f64,
    pub tried: Vec<Tried>,
}

impl SearchState {
    pub(super) fn new(search: &Search, max_failures: u32, metric: Metric) -> Self {
        Self {
            candidates: search.candidates,
            max_failures: max_failures.max(1),
            budget: search.time_budget,
            max_tokens: search.max_tokens,
            metric,
            final_run_factor: FINAL_RUN_FACTOR,
            tried: Vec::new(),
        }
    }

    /// The search runs each candidate on `folds` folds (one holds out a fifth).
    pub(super) fn with_folds(mut self, folds: usize) -> Self {
        if folds > 1 {
            self.final_run_factor = FINAL_RUN_MARGIN * folds as f64 / (folds - 1) as f64;
        }
        self
    }

    fn failures(&self) -> u32 {
        u32::try_from(self.tried.iter().filter(|t| t.score.is_none()).count()).unwrap_or(u32::MAX)
    }

    fn best(&self) -> Option<&Tried> {
        self.ranked().into_iter().next()
    }

    /// Scored candidates, best first; ties go to the earlier one.
    pub(super) fn ranked(&self) -> Vec<&Tried> {
        let mut scored: Vec<&Tried> = self.tried.iter().filter(|t| t.score.is_some()).collect();
        scored.sort_by(|a, b| {
            let (a, b) = (
                a.score.map_or(0.0, |s| s.value),
                b.score.map_or(0.0, |s| s.value),
            );
            let order = a.total_cmp(&b);
            if self.metric.higher_is_better() {
                order.reverse()
            } else {
                order
            }
        });
        scored
    }

    /// The order the final run tries candidates in: by host score, except that the first
    /// candidate stays ahead unless `wins(top, first)`, the share of holdout resamples the top
    /// one wins against it, is at least [`SURE_WIN`].
    pub(super) fn submission_order(&self, wins: impl Fn(&Tried, &Tried) -> f64) -> Vec<&Tried> {
        let mut ranked = self.ranked();
        let Some(first) = self.tried.iter().find(|t| t.score.is_some()) else {
            return ranked;
        };
        let Some(top) = ranked.first().copied() else {
            return ranked;
        };
        if top.record.candidate != first.record.candidate && wins(top, first) < SURE_WIN {
            ranked.retain(|t| t.record.candidate != first.record.candidate);
            ranked.insert(0, first);
        }
        ranked
    }

    /// The best host score so far.
    pub(super) fn best_score(&self) -> Option<f64> {
        self.best().and_then(|t| t.score).map(|s| s.value)
    }

    /// The LLM tokens the candidates' code cost so far.
    pub(super) fn tokens(&self) -> u64 {
        self.tried.iter().filter_map(|t| t.record.tokens).sum()
    }

    pub(super) fn tried_count(&self) -> u32 {
        u32::try_from(self.tried.len()).unwrap_or(u32::MAX)
    }

    /// The time the final run is reckoned to need: the slowest candidate's whole time (its
    /// generation included), scaled to the full data; nothing before any candidate ran.
    pub(super) fn final_reserve(&self) -> Duration {
        self.slowest().mul_f64(self.final_run_factor)
    }

    /// Whether the full-data runs of a blend's `members` fit in what the budget leaves,
    /// `elapsed` into the job: each is reckoned like the final run.
    pub(super) fn blend_fits(&self, members: &[&Tried], elapsed: Duration) -> bool {
        let runs: Duration = members
            .iter()
            .map(|t| t.run.unwrap_or_default().mul_f64(self.final_run_factor))
            .sum();
        elapsed + runs <= self.budget
    }

    fn slowest(&self) -> Duration {
        self.tried
            .iter()
            .filter_map(|t| t.run)
            .max()
            .unwrap_or_default()
    }

    /// The next step, `elapsed` into the job.
    pub(super) fn next(&self, elapsed: Duration) -> Next {
        let number = self.tried_count() + 1;
        if number > self.candidates {
            return Next::Stop(SearchEnd::Done);
        }
        if self.failures() >= self.max_failures {
            return Next::Stop(SearchEnd::AttemptsUsed);
        }
        if self.max_tokens.is_some_and(|cap| self.tokens() >= cap) {
            return Next::Stop(SearchEnd::TokenBudget);
        }
        // A candidate is reckoned to take as long as the slowest so far.
        let slowest = self
            .tried
            .iter()
            .map(|t| Duration::from_millis(t.record.millis))
            .max()
            .unwrap_or_default();
        if !self.tried.is_empty()
            && self.best().is_some()
            && elapsed + slowest + self.final_reserve() > self.budget
        {
            return Next::Stop(SearchEnd::OutOfBudget);
        }
        if elapsed >= self.budget && self.best().is_some() {
            return Next::Stop(SearchEnd::OutOfBudget);
        }
        Next::Start(self.ask(number))
    }

    /// The next `width` candidates to run at once (at least one), `elapsed` into the job, or
    /// why the search stops. The budget is checked for the first: the others run beside it.
    pub(super) fn next_batch(&self, elapsed: Duration, width: u32) -> Result<Vec<Ask>, SearchEnd> {
        let first = match self.next(elapsed) {
            Next::Start(ask) => ask,
            Next::Stop(end) => return Err(end),
        };
        let failures_left = self.max_failures.saturating_sub(self.failures());
        let last = (first.number + width.max(1) - 1)
            .min(self.candidates)
            .min(first.number + failures_left.max(1) - 1);
        let mut asks = vec![first];
        for number in asks[0].number + 1..=last {
            asks.push(self.ask(number));
        }
        Ok(asks)
    }

    fn ask(&self, number: u32) -> Ask {
        let draft = Ask {
            number,
            kind: RequestKind::Draft,
            parent: None,
            previous: None,
            improve: None,
        };
        if let Some(last) = self.tried.last()
            && let Some(error) = &last.failure
        {
            return Ask {
                kind: RequestKind::Debug,
                parent: Some(last.record.candidate),
                previous: Some(PreviousAttempt {
                    code: last.record.code.clone(),
                    error: error.clone(),
                }),
                ..draft
            };
        }
        // Drafts first (half the candidates, rounded up), then improvements on the best.
        let drafts = self.candidates.div_ceil(2);
        match self.best() {
            Some(best) if number > drafts => {
                let score = best.score.map_or(0.0, |s| s.value);
                Ask {
                    kind: RequestKind::Improve,
                    parent: Some(best.record.candidate),
                    improve: Some(ImproveFrom {
                        candidate: best.record.candidate,
                        code: best.record.code.clone(),
                        metric: metric_name(self.metric),
                        higher_is_better: self.metric.higher_is_better(),
                        score,
                        others: self
                            .tried
                            .iter()
                            .filter_map(|t| t.score.map(|s| (t.record.candidate, s.value)))
                            .collect(),
                    }),
                    ..draft
                }
            }
            _ => draft,
        }
    }

    /// The wall time a candidate's run may use, `elapsed` into the job: the policy's, within
    /// what the budget leaves after the final run's reserve (half of what is left before
    /// anything was measured).
    pub(super) fn run_wall_time(&self, policy: Duration, elapsed: Duration) -> Duration {
        let left = self.budget.saturating_sub(elapsed);
        let allowed = if self.tried.iter().any(|t| t.run.is_some()) {
            left.saturating_sub(self.final_reserve())
        } else {
            left.mul_f64(FIRST_RUN_SHARE)
        };
        policy.min(allowed.max(Duration::from_secs(1)))
    }
}

/// The metric's name as the prompt shows it.
fn metric_name(metric: Metric) -> String {
    serde_json::to_value(metric)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{metric:?}").to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(candidates: u32, budget: u64) -> SearchState {
        let search = Search {
            candidates,
            time_budget: Duration::from_secs(budget),
            ..Search::default()
        };
        SearchState::new(&search, 3, Metric::Rmse)
    }

    fn tried(number: u32, score: Option<f64>, secs: u64) -> Tried {
        Tried {
            record: CandidateRecord {
                candidate: number,
                kind: RequestKind::Draft,
                parent: None,
                generator: "g".into(),
                code: format!("code {number}"),
                backend: None,
                millis: secs * 1000,
                run_millis: Some(secs * 1000),
                fuel_used: None,
                tokens: Some(100),
                host_score: score,
                printed_score: None,
                error: score.is_none().then(|| "boom".to_owned()),
            },
            score: score.map(|value| HostScore {
                metric: Metric::Rmse,
                value,
            }),
            failure: score.is_none().then(|| "boom".to_owned()),
            run: Some(Duration::from_secs(secs)),
            outcome: None,
            submission: None,
        }
    }

    fn kind(next: &Next) -> Option<RequestKind> {
        match next {
            Next::Start(ask) => Some(ask.kind),
            Next::Stop(_) => None,
        }
    }

    #[test]
    fn drafts_then_improves_and_debugs_a_failure() {
        let mut s = state(4, 3600);
        assert_eq!(kind(&s.next(Duration::ZERO)), Some(RequestKind::Draft));
        s.tried.push(tried(1, Some(0.5), 1));
        assert_eq!(kind(&s.next(Duration::ZERO)), Some(RequestKind::Draft));
        s.tried.push(tried(2, Some(0.25), 1));
        let Next::Start(ask) = s.next(Duration::ZERO) else {
            panic!("starts");
        };
        assert_eq!(ask.kind, RequestKind::Improve);
        // Lower is better for RMSE: candidate 2 is the parent.
        assert_eq!(ask.parent, Some(2));
        assert_eq!(
            ask.improve.expect("parent").others,
            vec![(1, 0.5), (2, 0.25)]
        );
        s.tried.push(tried(3, None, 1));
        let Next::Start(ask) = s.next(Duration::ZERO) else {
            panic!("starts");
        };
        assert_eq!((ask.kind, ask.parent), (RequestKind::Debug, Some(3)));
        assert_eq!(ask.previous.expect("failure").code, "code 3");
        s.tried.push(tried(4, Some(0.3), 1));
        assert_eq!(s.next(Duration::ZERO), Next::Stop(SearchEnd::Done));
        let order: Vec<u32> = s.ranked().iter().map(|t| t.record.candidate).collect();
        assert_eq!(order, [2, 4, 1]);
    }

    #[test]
    fn a_batch_holds_up_to_its_width_within_the_candidates_and_failures_left() {
        let mut s = state(5, 3600);
        let numbers = |b: Result<Vec<Ask>, SearchEnd>| -> Vec<u32> {
            b.expect("a batch").iter().map(|a| a.number).collect()
        };
        assert_eq!(numbers(s.next_batch(Duration::ZERO, 1)), [1]);
        assert_eq!(numbers(s.next_batch(Duration::ZERO, 2)), [1, 2]);
        s.tried.push(tried(1, Some(0.5), 1));
        s.tried.push(tried(2, None, 1));
        s.tried.push(tried(3, None, 1));
        // One failure left of three: one candidate at a time.
        assert_eq!(numbers(s.next_batch(Duration::ZERO, 4)), [4]);
        s.tried.pop();
        assert_eq!(numbers(s.next_batch(Duration::ZERO, 9)), [3, 4]);
        s.tried.push(tried(3, Some(0.4), 1));
        s.tried.push(tried(4, Some(0.4), 1));
        assert_eq!(numbers(s.next_batch(Duration::ZERO, 9)), [5]);
        s.tried.push(tried(5, Some(0.4), 1));
        assert_eq!(s.next_batch(Duration::ZERO, 2).err(), Some(SearchEnd::Done));
    }

    #[test]
    fn the_token_budget_stops_the_search() {
        let mut s = state(5, 3600);
        s.max_tokens = Some(250);
        s.tried.push(tried(1, Some(0.5), 1));
        s.tried.push(tried(2, Some(0.5), 1));
        assert!(matches!(s.next(Duration::ZERO), Next::Start(_)));
        s.tried.push(tried(3, Some(0.5), 1));
        assert_eq!(s.tokens(), 300);
        assert_eq!(s.next(Duration::ZERO), Next::Stop(SearchEnd::TokenBudget));
    }

    #[test]
    fn a_later_candidate_replaces_the_first_only_when_it_surely_wins() {
        let mut s = state(4, 3600);
        // RMSE: lower is better.
        s.tried.push(tried(1, Some(1.0), 1));
        s.tried.push(tried(2, Some(0.99), 1));
        s.tried.push(tried(3, None, 1));
        // The share of resamples each candidate wins against the first, as measured.
        let order = |s: &SearchState, share: f64| -> Vec<u32> {
            s.submission_order(|top, first| {
                assert_eq!((top.record.candidate, first.record.candidate), (2, 1));
                share
            })
            .iter()
            .map(|t| t.record.candidate)
            .collect()
        };
        assert_eq!(
            order(&s, 0.85),
            [1, 2],
            "won by luck: the first stays ahead"
        );
        assert_eq!(
            s.best_score(),
            Some(0.99),
            "the best score is still the best"
        );
        assert_eq!(
            order(&s, SURE_WIN),
            [2, 1],
            "a sure win displaces the first"
        );
        // The first on top needs no comparison.
        s.tried.push(tried(4, Some(1.2), 1));
        s.tried[0].score = s.tried[0].score.map(|h| HostScore { value: 0.5, ..h });
        let ranked: Vec<u32> = s
            .submission_order(|_, _| unreachable!("the first is the best"))
            .iter()
            .map(|t| t.record.candidate)
            .collect();
        assert_eq!(ranked, [1, 2, 4]);
    }

    #[test]
    fn failures_are_bounded_by_the_attempts() {
        let mut s = state(10, 3600);
        for n in 1..=3 {
            s.tried.push(tried(n, None, 1));
        }
        assert_eq!(s.next(Duration::ZERO), Next::Stop(SearchEnd::AttemptsUsed));
    }

    #[test]
    fn a_candidate_that_would_not_leave_the_final_run_its_time_does_not_start() {
        let mut s = state(4, 100);
        s.tried.push(tried(1, Some(1.0), 20));
        // 20 s per candidate, 32 s reserved for the final run.
        assert_eq!(s.final_reserve(), Duration::from_secs(32));
        assert!(matches!(s.next(Duration::from_secs(48)), Next::Start(_)));
        assert_eq!(
            s.next(Duration::from_secs(49)),
            Next::Stop(SearchEnd::OutOfBudget)
        );
        // On three folds a run fits on two thirds of the rows: 1.28 x 1.5 x 20 s reserved.
        let mut folds = state(4, 100).with_folds(3);
        folds.tried.push(tried(1, Some(1.0), 20));
        assert_eq!(folds.final_reserve(), Duration::from_millis(38_400));
        // Nothing valid yet: the search goes on, since stopping would leave nothing to submit.
        let mut failed = state(4, 100);
        failed.tried.push(tried(1, None, 20));
        assert!(matches!(
            failed.next(Duration::from_secs(90)),
            Next::Start(_)
        ));
    }

    #[test]
    fn a_blend_runs_only_when_its_members_full_data_runs_fit() {
        let mut s = state(3, 100);
        s.tried.push(tried(1, Some(1.0), 20));
        s.tried.push(tried(2, Some(1.1), 10));
        let members: Vec<&Tried> = s.tried.iter().collect();
        // 1.6 x (20 + 10) = 48 s of full-data runs.
        assert!(s.blend_fits(&members, Duration::from_secs(52)));
        assert!(!s.blend_fits(&members, Duration::from_secs(53)));
    }

    #[test]
    fn runs_are_capped_by_what_the_budget_leaves() {
        let mut s = state(4, 100);
        let policy = Duration::from_secs(1800);
        assert_eq!(
            s.run_wall_time(policy, Duration::ZERO),
            Duration::from_secs(50)
        );
        s.tried.push(tried(1, Some(1.0), 10));
        assert_eq!(
            s.run_wall_time(policy, Duration::from_secs(20)),
            Duration::from_secs(64)
        );
        assert_eq!(
            s.run_wall_time(Duration::from_secs(5), Duration::from_secs(20)),
            Duration::from_secs(5)
        );
    }
}
