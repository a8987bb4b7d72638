//! Data too large for the WASI guest: routed to the Docker backend, or refused at analysis.
//!
//! The guest is wasm32: its linear memory addresses at most 4 GiB, whatever the policy's memory
//! limit says. A training table that needs more than that to load and model would run for
//! minutes and then fail on a refused memory grow, once per attempt; the files already tell how
//! big it is. So the job's working set is estimated from the tables' bytes on disk and their
//! rows x columns, and a job that will not fit runs on Docker only when the policy allows it
//! and this host has it, else fails at analysis with the sizes and what to change.

use ks_policies::{Backend, ByteSize, Policy};

use crate::pipeline::analyse::{AnalyseError, CompetitionAnalysis, TableProfile};

/// What a wasm32 guest can address at most.
pub const GUEST_ADDRESSABLE: u64 = 4 << 30;
/// Bytes one cell of a loaded table takes (a float64, or a pointer to a shared string).
const CELL_BYTES: u64 = 8;
/// Copies of the tables a pipeline holds at once (the frames, the feature matrices built from
/// them, a model's binned copy).
const COPIES: u64 = 3;
/// The interpreter and its libraries, before any data.
const RUNTIME_BYTES: u64 = 300 << 20;

/// The job's estimated memory need and what it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkingSet {
    /// The tables' bytes on disk.
    pub disk: u64,
    /// Their cells (rows x columns), summed.
    pub cells: u64,
    /// The estimate: the larger of the cells' and the bytes' measure, times the copies, plus
    /// the runtime.
    pub bytes: u64,
}

impl WorkingSet {
    /// The estimate for the tables of `analysis` (train, test and side tables).
    pub fn of(analysis: &CompetitionAnalysis) -> Self {
        let tables: Vec<&TableProfile> = [&analysis.train, &analysis.test]
            .into_iter()
            .chain(analysis.tables.side.iter().map(|t| &t.table))
            .collect();
        let on_disk = |path: &str| {
            analysis
                .files
                .iter()
                .find(|f| f.path == path)
                .map_or(0, |f| f.bytes)
        };
        let (mut disk, mut cells, mut loaded) = (0u64, 0u64, 0u64);
        for table in tables {
            let bytes = on_disk(&table.path);
            let count = table.rows.saturating_mul(table.columns.len() as u64);
            disk = disk.saturating_add(bytes);
            cells = cells.saturating_add(count);
            loaded = loaded.saturating_add(bytes.max(count.saturating_mul(CELL_BYTES)));
        }
        Self {
            disk,
            cells,
            bytes: loaded.saturating_mul(COPIES).saturating_add(RUNTIME_BYTES),
        }
    }
}

/// Where the job may run given its data's size.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// As the policy says: the data fits the guest.
    AsIs,
    /// On Docker only: the data does not fit the guest; the policy to run under.
    DockerOnly(Box<Policy>),
}

/// Decides where a job of `analysis` runs under `policy` with the `available` backends.
///
/// # Errors
/// [`AnalyseError::TooLargeForGuest`] when the data does not fit the guest and Docker is not
/// allowed or not on this host.
pub fn route(
    analysis: &CompetitionAnalysis,
    policy: &Policy,
    available: &[Backend],
) -> Result<Route, AnalyseError> {
    let need = WorkingSet::of(analysis);
    if need.bytes <= GUEST_ADDRESSABLE || !policy.sandbox.backends.contains(&Backend::Wasm) {
        return Ok(Route::AsIs);
    }
    let sizes = format!(
        "the tables ({train} has {rows} rows x {columns} columns; {tables} table(s), {cells} \
         cells, {disk} on disk) need about {need} to load and model, more than the {guest} a \
         WASI (wasm32) guest can address",
        train = analysis.train.path,
        rows = analysis.train.rows,
        columns = analysis.train.columns.len(),
        tables = 2 + analysis.tables.side.len(),
        cells = need.cells,
        disk = ByteSize(need.disk),
        need = ByteSize(need.bytes),
        guest = ByteSize(GUEST_ADDRESSABLE),
    );
    let allowed = policy.sandbox.backends.contains(&Backend::Docker);
    let present = available.contains(&Backend::Docker);
    if allowed && present {
        tracing::info!(
            need = need.bytes,
            disk = need.disk,
            cells = need.cells,
            "the data is too large for the WASI guest: the job runs on Docker"
        );
        let mut docker = policy.clone();
        docker.sandbox.backends = vec![Backend::Docker];
        return Ok(Route::DockerOnly(Box::new(docker)));
    }
    let fix = if allowed {
        "the policy allows Docker but this host has no Docker backend: run the job where \
         Docker is available"
    } else {
        "allow the Docker backend in the policy ([sandbox] backends = [\"wasm\", \"docker\"]) \
         or subsample the training table"
    };
    Err(AnalyseError::TooLargeForGuest {
        sizes,
        fix: fix.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::analyse::{CompetitionText, analyse};

    /// A real analysis of a small competition, then made `rows` rows long and `bytes` on disk.
    fn analysis(rows: u64, bytes: u64) -> CompetitionAnalysis {
        let dir = tempfile::tempdir().expect("tempdir");
        for (path, body) in [
            ("train.csv", "id,a,b,y\n1,1,2,0\n2,3,4,1\n"),
            ("test.csv", "id,a,b\n3,5,6\n"),
            ("sample_submission.csv", "id,y\n3,0\n"),
        ] {
            std::fs::write(dir.path().join(path), body).expect("write");
        }
        let mut a = analyse(dir.path(), "big", &CompetitionText::default()).expect("analysis");
        a.train.rows = rows;
        if let Some(file) = a.files.iter_mut().find(|f| f.path == "train.csv") {
            file.bytes = bytes;
        }
        a
    }

    fn policy(backends: &[Backend]) -> Policy {
        let mut policy = Policy::default();
        policy.sandbox.backends = backends.to_vec();
        policy
    }

    #[test]
    fn the_estimate_takes_the_larger_of_cells_and_bytes() {
        // 1,000 rows x 4 columns = 32,000 bytes as cells: 1 MiB on disk is larger. The test
        // table's 13 bytes on disk are less than its 3 cells' 24.
        let need = WorkingSet::of(&analysis(1_000, 1 << 20));
        assert_eq!(need.cells, 4_000 + 3);
        assert_eq!(need.disk, (1 << 20) + 13);
        assert_eq!(need.bytes, ((1 << 20) + 8 * 3) * COPIES + RUNTIME_BYTES);
    }

    #[test]
    fn data_that_fits_the_guest_runs_as_the_policy_says() {
        let both = policy(&[Backend::Wasm, Backend::Docker]);
        let small = analysis(1_000_000, 200 << 20);
        assert_eq!(
            route(&small, &both, &[Backend::Wasm, Backend::Docker]).ok(),
            Some(Route::AsIs)
        );
    }

    #[test]
    fn data_too_large_for_the_guest_goes_to_docker_when_allowed_and_present() {
        // 200 million rows x 4 columns: 6.4 GB as float64 cells.
        let big = analysis(200_000_000, 3 << 30);
        let both = policy(&[Backend::Wasm, Backend::Docker]);
        let Ok(Route::DockerOnly(routed)) = route(&big, &both, &[Backend::Wasm, Backend::Docker])
        else {
            panic!("expected the Docker route");
        };
        assert_eq!(routed.sandbox.backends, [Backend::Docker]);
        // Docker alone was the policy already: nothing to change.
        let docker = policy(&[Backend::Docker]);
        assert_eq!(
            route(&big, &docker, &[Backend::Docker]).ok(),
            Some(Route::AsIs)
        );
    }

    #[test]
    fn data_too_large_for_the_guest_without_docker_fails_with_the_sizes() {
        let big = analysis(200_000_000, 3 << 30);
        let wasm = policy(&[Backend::Wasm]);
        let error = route(&big, &wasm, &[Backend::Wasm, Backend::Docker])
            .expect_err("refused")
            .to_string();
        assert!(
            error.contains("train.csv has 200000000 rows x 4 columns")
                && error.contains("more than the 4 GiB a WASI (wasm32) guest can address")
                && error.contains("allow the Docker backend in the policy"),
            "{error}"
        );
        let both = policy(&[Backend::Wasm, Backend::Docker]);
        let error = route(&big, &both, &[Backend::Wasm])
            .expect_err("no Docker here")
            .to_string();
        assert!(error.contains("this host has no Docker backend"), "{error}");
    }
}
