use super::*;
use crate::pipeline::analyse::{CompetitionText, analyse};

struct Case {
    dir: tempfile::TempDir,
    analysis: CompetitionAnalysis,
}

fn competition(sample: &str, train: &str) -> Case {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("train.csv"), train).expect("write");
    std::fs::write(dir.path().join("test.csv"), "id,x\n10,1\n11,2\n12,3\n").expect("write");
    std::fs::write(dir.path().join("sample_submission.csv"), sample).expect("write");
    let analysis = analyse(dir.path(), "t", &CompetitionText::default()).expect("analysis");
    Case { dir, analysis }
}

fn check(case: &Case, submission: &str) -> Result<ValidSubmission, InvalidSubmission> {
    let path = case.dir.path().join("out.csv");
    std::fs::write(&path, submission).expect("write");
    validate_submission(&path, case.dir.path(), &case.analysis)
}

fn labels() -> Case {
    competition("id,y\n10,a\n11,a\n12,a\n", "id,x,y\n1,1,a\n2,2,b\n")
}

#[test]
fn a_valid_submission_passes_in_any_row_order() {
    assert_eq!(
        check(&labels(), "id,y\n12,b\n10,a\n11,a\n"),
        Ok(ValidSubmission { rows: 3 })
    );
}

#[test]
fn each_invalid_submission_is_caught_with_its_reason() {
    let case = labels();
    let cases = [
        (
            "id,prediction\n10,a\n11,a\n12,a\n",
            "columns must be exactly",
        ),
        ("id\n10\n11\n12\n", "columns must be exactly"),
        ("id,y\n10,a\n11,a\n", "expected 3 data rows"),
        ("id,y\n10,a\n11,a\n99,a\n", "not in the sample submission"),
        ("id,y\n10,a\n10,a\n11,a\n", "appears twice"),
        ("id,y\n10,a\n11,\n12,a\n", "is missing"),
        ("id,y\n10,a\n11,NaN\n12,a\n", "is missing"),
        ("id,y\n10,a\n11,zebra\n12,a\n", "not one of the classes"),
    ];
    for (submission, reason) in cases {
        let error = check(&case, submission).expect_err(submission);
        assert!(error.0.contains(reason), "{submission:?}: {error}");
    }
}

#[test]
fn no_file_is_its_own_reason() {
    let case = labels();
    let error = validate_submission(
        &case.dir.path().join("none.csv"),
        case.dir.path(),
        &case.analysis,
    )
    .expect_err("missing");
    assert!(error.0.contains("did not write"), "{error}");
}

#[test]
fn regression_values_must_be_numbers() {
    let case = competition(
        "id,y\n10,0\n11,0\n12,0\n",
        "id,x,y\n1,1,0.5\n2,2,1.5\n3,3,2.25\n",
    );
    assert!(check(&case, "id,y\n10,1.5\n11,2\n12,3e2\n").is_ok());
    let error = check(&case, "id,y\n10,1.5\n11,inf\n12,x\n").expect_err("inf");
    assert!(error.0.contains("not a finite number"), "{error}");
}
