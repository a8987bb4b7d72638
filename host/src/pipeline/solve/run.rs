//! Running code on a competition folder and keeping what it wrote: the sandbox run capped by
//! the policy, the submission read through the run's own folder and validated against the
//! sample, and the store behind the caller's fence.

use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{
    AttemptFailure, AttemptRecord, ClaimDir, FenceVerdict, PreparedCompetition, SolveError,
    SolveJob, Solver, Stage, staged, timed,
};
use crate::pipeline::analyse::CompetitionAnalysis;
use crate::pipeline::validate::validate_submission;
use crate::pipeline::workdir::AttemptDir;
use crate::sandbox::{DynSandbox, OutputFileError, SandboxRequest, read_regular};
use crate::storage::StoredSubmission;

impl Solver {
    /// Runs, validates and (if valid) stores one attempt's code. The outer error ends the
    /// solve; the inner one is the code's failure, fed back to the generator.
    pub(super) async fn attempt(
        &self,
        job: &SolveJob<'_>,
        claim: &ClaimDir,
        competition: &PreparedCompetition,
        analysis: &CompetitionAnalysis,
        attempt: u32,
        record: &mut AttemptRecord,
    ) -> Result<Result<StoredSubmission, AttemptFailure>, SolveError> {
        match self
            .full_run(job, claim, competition, analysis, attempt, record)
            .await?
        {
            Ok(submission) => Ok(Ok(self.store(job, attempt, &submission).await?)),
            Err(failure) => Ok(Err(failure)),
        }
    }

    /// Runs one attempt's code on the full data and validates what it wrote, returning the
    /// submission. The outer error ends the solve; the inner one is the code's failure.
    pub(super) async fn full_run(
        &self,
        job: &SolveJob<'_>,
        claim: &ClaimDir,
        competition: &PreparedCompetition,
        analysis: &CompetitionAnalysis,
        attempt: u32,
        record: &mut AttemptRecord,
    ) -> Result<Result<Vec<u8>, AttemptFailure>, SolveError> {
        let sandbox = match self.sandboxes.choose(job.policy, &record.code) {
            Ok(sandbox) => sandbox,
            Err(reason) => return Ok(Err(reason.into())),
        };
        record.backend = Some(sandbox.backend());
        let dir = claim.attempt(attempt).await?;
        let ran = self
            .run_and_validate(
                job,
                &dir,
                sandbox,
                &competition.dir,
                analysis,
                record,
                job.policy.limits.wall_time,
                &job.cancel,
            )
            .await;
        // The submission is in memory now: nothing in the folder is needed any more.
        dir.remove().await;
        ran
    }

    /// Stores a validated submission as the job's, once the fence says the job is still held.
    pub(super) async fn store(
        &self,
        job: &SolveJob<'_>,
        attempt: u32,
        submission: &[u8],
    ) -> Result<StoredSubmission, SolveError> {
        // Not raced against the cancel like the other stages: a put dropped midway would
        // leave its partial file behind. A cancel that lands during the put is the queue's to
        // apply: it fails the completion as cancelled.
        staged(job, Stage::Store, attempt, async {
            if job.cancel.is_cancelled() {
                return Err(SolveError::Cancelled);
            }
            match job.fence.check().await? {
                FenceVerdict::Held => {}
                FenceVerdict::Lost => return Err(SolveError::Lost),
                FenceVerdict::Cancelled => return Err(SolveError::Cancelled),
            }
            self.store
                .put(&job.id, submission)
                .await
                .map_err(SolveError::Store)
        })
        .await
    }

    /// Runs the code in `dir` on the competition in `input` (the real one or a holdout view,
    /// mounted at `/input`) for at most `wall_time`, and reads and validates the submission it
    /// left against that folder's sample.
    #[allow(clippy::too_many_arguments)] // one run's whole context; a struct would only rename it
    pub(super) async fn run_and_validate(
        &self,
        job: &SolveJob<'_>,
        dir: &AttemptDir,
        sandbox: &DynSandbox,
        input: &Path,
        analysis: &CompetitionAnalysis,
        record: &mut AttemptRecord,
        wall_time: Duration,
        halt: &CancellationToken,
    ) -> Result<Result<Vec<u8>, AttemptFailure>, SolveError> {
        let attempt = dir.number;
        let output = dir.output.clone();
        let mut request =
            SandboxRequest::from_policy(record.code.clone(), &output, job.policy).with_input(input);
        request.limits.wall_time = wall_time;
        request.scratch = Some(dir.root.clone());
        request.cancel = halt.child_token();
        request.job = Some(job.id.clone());
        let outcome = timed(job, Stage::Run, attempt, async {
            sandbox.run(request).await.map_err(SolveError::Sandbox)
        })
        .await?;
        if outcome.cancelled {
            // Halted with the job still going: a stopped search's candidate, not the job.
            if job.cancel.is_cancelled() || !halt.is_cancelled() {
                return Err(SolveError::Cancelled);
            }
            record.outcome = Some(outcome);
            return Ok(Err(AttemptFailure::Stopped));
        }
        let failure = outcome.failure_summary();
        record.outcome = Some(outcome);
        if let Some(summary) = failure {
            return Ok(Err(AttemptFailure::Run { summary }));
        }
        let cap = job.policy.limits.output.0;
        let replaced = record
            .outcome
            .as_ref()
            .is_some_and(|o| o.removed_from_output.iter().any(|p| p == "submission.csv"));
        timed(job, Stage::Validate, attempt, async {
            let (dir, analysis) = (input.to_path_buf(), analysis.clone());
            let span = tracing::Span::current();
            tokio::task::spawn_blocking(move || {
                let _span = span.enter();
                // Read once, through the run's own folder and never through a link; what is
                // validated is exactly what is stored.
                if replaced {
                    return Err(AttemptFailure::Unreadable(OutputFileError::NotRegular {
                        name: "submission.csv".into(),
                        kind: "link or special file, deleted unread",
                    }));
                }
                let contents = match read_regular(&output, "submission.csv", cap) {
                    Ok(contents) => contents,
                    Err(error) => return Err(AttemptFailure::Unreadable(error)),
                };
                validate_submission(&contents, &dir, &analysis)?;
                Ok(contents)
            })
            .await
            .map_err(|e| SolveError::Internal(e.to_string()))
        })
        .await
    }
}
