//! Conformance: listings. Newest accepted first, paged by a cursor without a job twice or
//! missed, the page size bounded, filtered by status or the dead list, and a swept job gone
//! from them.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, ensure};
use kaggle_solver::queue::{
    Completion, Failure, JobId, JobResult, JobStatus, ListCursor, ListState, MAX_PAGE,
};
use kaggle_solver::storage::StoreKind;

use super::{LONG, Subject, job, record, worker};

/// Every page of a listing, following the cursors; checks each page's size.
async fn pages(
    s: &Subject,
    state: Option<ListState>,
    limit: usize,
) -> anyhow::Result<Vec<Vec<JobId>>> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = s.queue.list(state, limit, cursor).await?;
        ensure!(page.jobs.len() <= limit, "{} > {limit}", page.jobs.len());
        out.push(page.jobs.into_iter().map(|r| r.id).collect());
        match page.next {
            Some(next) => {
                ensure!(
                    cursor.is_none_or(|c: ListCursor| next < c),
                    "cursors go down"
                );
                cursor = Some(next);
            }
            None => return Ok(out),
        }
        ensure!(out.len() < 100, "the listing never ends");
    }
}

pub async fn listing_pages_newest_first_with_every_job_once(s: &Subject) -> anyhow::Result<()> {
    ensure!(s.queue.list(None, 10, None).await?.jobs.is_empty());
    ensure!(s.queue.list(None, 10, None).await?.next.is_none());
    let mut accepted = Vec::new();
    for n in 0..7 {
        accepted.push(s.queue.enqueue(job(n)).await?.id);
    }
    let newest_first: Vec<JobId> = accepted.iter().rev().cloned().collect();
    let got = pages(s, None, 3).await?;
    ensure!(
        got.iter().map(Vec::len).collect::<Vec<_>>() == vec![3, 3, 1],
        "{got:?}"
    );
    ensure!(got.concat() == newest_first, "{got:?}");
    // One page holding everything has no next page.
    let all = s.queue.list(None, 7, None).await?;
    ensure!(all.jobs.len() == 7 && all.next.is_none(), "{:?}", all.next);
    // The size is bounded: a larger limit gets at most a full page.
    for n in 7..(MAX_PAGE + 5) {
        s.queue.enqueue(job(n)).await?;
    }
    let page = s.queue.list(None, MAX_PAGE + 50, None).await?;
    ensure!(page.jobs.len() == MAX_PAGE && page.next.is_some());
    let page = s.queue.list(None, 0, None).await?;
    ensure!(page.jobs.len() == 1, "a limit of 0 reads as 1");
    Ok(())
}

pub async fn listing_filters_by_state_and_the_dead_list(s: &Subject) -> anyhow::Result<()> {
    let w = worker("lister");
    // In acceptance order: 0 dead (buried while alone in line, as retries go to the back),
    // 1 completed, 2 failed, 3 processing, 4 pending.
    let mut ids = vec![s.queue.enqueue(job(0)).await?.id];
    loop {
        let claimed = s.queue.claim(&w, LONG).await?.context("job 0")?;
        ensure!(claimed.id == ids[0], "{} is not job 0", claimed.id);
        let retry = Failure::Retry {
            message: "disk".into(),
            delay_ms: 0,
        };
        ensure!(s.queue.fail(&w, &ids[0], retry).await?);
        if record(s, &ids[0]).await?.status == JobStatus::Failed {
            break;
        }
    }
    for n in 1..5 {
        ids.push(s.queue.enqueue(job(n)).await?.id);
    }
    let claimed = s.queue.claim(&w, LONG).await?.context("job 1")?;
    ensure!(claimed.id == ids[1]);
    let result = JobResult {
        submission_source: StoreKind::Local,
        submission_path: "/data/sub.csv".into(),
        validation_score: None,
        validation_score_source: None,
        attempts: 1,
    };
    ensure!(s.queue.complete(&w, &claimed.id, result).await? == Completion::Completed);
    let claimed = s.queue.claim(&w, LONG).await?.context("job 2")?;
    ensure!(claimed.id == ids[2]);
    let abort = Failure::Abort {
        message: "no".into(),
    };
    ensure!(s.queue.fail(&w, &claimed.id, abort).await?);
    let claimed = s.queue.claim(&w, LONG).await?.context("job 3")?;
    ensure!(claimed.id == ids[3]);

    let only = |state| async move {
        let page = s.queue.list(Some(state), 10, None).await?;
        anyhow::Ok(page.jobs.into_iter().map(|r| r.id).collect::<Vec<_>>())
    };
    ensure!(only(ListState::Completed).await? == vec![ids[1].clone()]);
    ensure!(only(ListState::Failed).await? == vec![ids[2].clone(), ids[0].clone()]);
    ensure!(only(ListState::Dead).await? == vec![ids[0].clone()]);
    ensure!(only(ListState::Processing).await? == vec![ids[3].clone()]);
    ensure!(only(ListState::Pending).await? == vec![ids[4].clone()]);
    // A filtered listing pages too.
    let failed = pages(s, Some(ListState::Failed), 1).await?;
    let failed: Vec<JobId> = failed.concat();
    ensure!(failed == vec![ids[2].clone(), ids[0].clone()], "{failed:?}");
    // Each listed job carries its record.
    let page = s.queue.list(None, 10, None).await?;
    let statuses: Vec<JobStatus> = page.jobs.iter().map(|r| r.status).collect();
    ensure!(
        statuses
            == vec![
                JobStatus::Pending,
                JobStatus::Processing,
                JobStatus::Failed,
                JobStatus::Completed,
                JobStatus::Failed
            ],
        "{statuses:?}"
    );

    // Swept records leave the listings.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let swept = s.queue.sweep_finished(Duration::ZERO, 100).await?;
    let swept: HashSet<JobId> = swept.into_iter().collect();
    ensure!(swept.len() == 3, "{swept:?}");
    let left: Vec<JobId> = pages(s, None, 2).await?.concat();
    ensure!(left == vec![ids[4].clone(), ids[3].clone()], "{left:?}");
    ensure!(only(ListState::Dead).await?.is_empty());
    Ok(())
}
