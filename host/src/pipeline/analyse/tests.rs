use super::*;

fn competition(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, content) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
    }
    dir
}

fn text(description: &str) -> CompetitionText {
    CompetitionText {
        description: Some(description.to_owned()),
        evaluation_metric: None,
    }
}

#[test]
fn binary_with_probabilities_from_the_metric() {
    let dir = competition(&[
        (
            "train.csv",
            "PassengerId,Age,Sex,Survived\n1,22,male,0\n2,38,female,1\n3,,female,1\n",
        ),
        ("test.csv", "PassengerId,Age,Sex\n4,30,male\n"),
        ("sample_submission.csv", "PassengerId,Survived\n4,0\n"),
    ]);
    let a = analyse(
        dir.path(),
        "titanic",
        &text("Scored on area under the ROC curve."),
    )
    .expect("analysis");
    assert_eq!(a.id_column, "PassengerId");
    assert_eq!(a.train_target, "Survived");
    assert_eq!(a.task, TaskKind::Binary);
    assert_eq!(a.metric, Some(Metric::RocAuc));
    assert_eq!(a.prediction, PredictionKind::Probability);
    assert_eq!(a.classes, ["0", "1"]);
}

#[test]
fn multiclass_labels_in_a_sub_folder_under_other_names() {
    let dir = competition(&[
        (
            "data/training.csv",
            "id,x,species\n1,1.5,a\n2,2.5,b\n3,3.5,c\n",
        ),
        ("data/testing.csv", "id,x\n9,1.0\n"),
        ("data/sampleSubmission.csv", "id,species\n9,a\n"),
    ]);
    let a = analyse(dir.path(), "s", &CompetitionText::default()).expect("analysis");
    assert_eq!(a.train.path, "data/training.csv");
    assert_eq!(a.task, TaskKind::Multiclass);
    assert_eq!(a.prediction, PredictionKind::Label);
    assert_eq!(a.metric, None);
}

#[test]
fn regression_with_rmsle() {
    let dir = competition(&[
        ("train.csv", "id,x,price\n1,1,10.5\n2,2,20.25\n3,3,30.75\n"),
        ("test.csv", "id,x\n4,4\n"),
        ("sample_submission.csv", "id,price\n4,0\n"),
    ]);
    let a = analyse(
        dir.path(),
        "r",
        &text("Root Mean Squared Logarithmic Error"),
    )
    .expect("analysis");
    assert_eq!(a.task, TaskKind::Regression);
    assert_eq!(a.metric, Some(Metric::Rmsle));
    assert_eq!(a.prediction, PredictionKind::Label);
}

#[test]
fn one_probability_column_per_class() {
    let dir = competition(&[
        (
            "train.csv",
            "id,f,target\n1,1,Class_1\n2,2,Class_2\n3,3,Class_3\n",
        ),
        ("test.csv", "id,f\n4,4\n"),
        (
            "sample_submission.csv",
            "id,Class_1,Class_2,Class_3\n4,1,0,0\n",
        ),
    ]);
    let a = analyse(dir.path(), "otto", &text("multi-class logarithmic loss")).expect("analysis");
    assert_eq!(a.train_target, "target");
    assert_eq!(a.target_columns, ["Class_1", "Class_2", "Class_3"]);
    assert_eq!(a.task, TaskKind::Multiclass);
    assert_eq!(a.prediction, PredictionKind::Probability);
}

#[test]
fn a_missing_sample_submission_is_a_clear_error() {
    let dir = competition(&[("train.csv", "id,y\n1,0\n"), ("test.csv", "id\n2\n")]);
    let error = analyse(dir.path(), "x", &CompetitionText::default()).expect_err("no sample");
    assert!(
        error.to_string().contains("sample_submission.csv"),
        "{error}"
    );
}

#[test]
fn an_id_column_missing_from_test_is_a_clear_error() {
    let dir = competition(&[
        ("train.csv", "id,y\n1,0\n"),
        ("test.csv", "key\n2\n"),
        ("sample_submission.csv", "id,y\n2,0\n"),
    ]);
    let error = analyse(dir.path(), "x", &CompetitionText::default()).expect_err("bad id");
    assert!(error.to_string().contains("\"id\""), "{error}");
}
