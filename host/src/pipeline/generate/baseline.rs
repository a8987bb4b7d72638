//! The built-in generator: deterministic and offline. It fills a tested pandas +
//! scikit-learn pipeline (`baseline_template.py`) with the analysis's facts: which tables,
//! which columns are features and of what type, the target, the task, the metric and the
//! submission's format. The script weighs three candidates on the same cross-validation folds
//! (a tuned HistGradientBoosting, scikit-learn's defaults on simple codes, and a linear model)
//! and blends them by the competition's own metric out of fold.
//!
//! On a retry it writes the same code: the baseline has no way to learn from the error, so the
//! retry only helps against transient failures; the LLM generators do better there.
//!
//! For a search it proposes a different, deterministic variant per candidate number: the first
//! is the script above; the others add other learners (boostings of other tree shapes, random
//! forests and extra trees, nearest neighbours, a linear model on squared and pairwise
//! features, LightGBM where Docker runs it), another encoding, other hyper-parameters and folds
//! repeated with other seeds, so the host's holdout score has something to choose between even
//! offline.

use async_trait::async_trait;
use serde_json::json;

use super::{GenerateError, GeneratedCode, GenerationRequest, Generator};
use crate::pipeline::analyse::{ColumnType, CompetitionAnalysis, Metric, SubmissionShape};

const TEMPLATE: &str = include_str!("baseline_template.py");

/// The built-in baseline generator.
#[derive(Debug, Clone, Copy, Default)]
pub struct BaselineGenerator;

#[async_trait]
impl Generator for BaselineGenerator {
    fn name(&self) -> String {
        "baseline".to_owned()
    }

    async fn generate(
        &self,
        request: &GenerationRequest<'_>,
    ) -> Result<GeneratedCode, GenerateError> {
        if let Some(media) = &request.analysis.media {
            return Err(GenerateError::Abort {
                provider: self.name(),
                message: format!(
                    "the competition's data is {media}, which the baseline cannot read (it \
                     reads tables only); an LLM generator (--generator openai or anthropic) \
                     may still try"
                ),
            });
        }
        Ok(GeneratedCode {
            code: variant_code(request.analysis, request.candidate, request.docker),
            generator: self.name(),
            llm: None,
        })
    }
}

/// The script for `analysis`.
pub fn baseline_code(analysis: &CompetitionAnalysis) -> String {
    variant_code(analysis, 1, false)
}

/// The script of search candidate `candidate` (1 is [`baseline_code`]'s); `docker` says
/// whether LightGBM may be used (the script then runs on the Docker backend).
pub fn variant_code(analysis: &CompetitionAnalysis, candidate: u32, docker: bool) -> String {
    let mut config = config(analysis);
    // The Docker image has no Pillow: a competition of pictures stays in the guest.
    let extra = variant(candidate, docker && analysis.images.is_none());
    // The import the backend selection reads: only the Docker image has LightGBM.
    let uses_lightgbm = extra["models"]
        .as_array()
        .is_some_and(|m| m.iter().any(|m| m == "lightgbm"));
    if let (Some(map), serde_json::Value::Object(extra)) = (config.as_object_mut(), extra) {
        map.extend(extra);
    }
    let imports = if uses_lightgbm {
        "import json\n\nimport lightgbm  # noqa: F401 - runs on the Docker image, which has it\n"
    } else {
        "import json\n"
    };
    // A JSON string literal is a valid Python string literal, whatever the column names hold.
    let literal =
        serde_json::to_string(&config.to_string()).unwrap_or_else(|_| "\"{}\"".to_owned());
    let template = if analysis.images.is_some() {
        TEMPLATE.to_owned()
    } else {
        without_section(TEMPLATE, "images")
    };
    format!(
        "# Competition: {slug}\n{imports}\nCONFIG = json.loads({literal})\n\n{template}",
        slug = analysis.slug.replace(['\n', '\r'], " "),
    )
}

/// `template` without the lines from each `# [name]` line to the next `# [/name]` line, both
/// included: a part only some competitions need (its imports would route every script).
fn without_section(template: &str, name: &str) -> String {
    let (open, close) = (format!("# [{name}]"), format!("# [/{name}]"));
    let mut inside = false;
    let mut out = String::with_capacity(template.len());
    for line in template.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with(&open) {
            inside = true;
        } else if trimmed.starts_with(&close) {
            inside = false;
        } else if !inside {
            out.push_str(line);
        }
    }
    out
}

fn config(analysis: &CompetitionAnalysis) -> serde_json::Value {
    let test_columns: Vec<&str> = analysis
        .test
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let rows = analysis.train.rows;
    let train_targets = analysis.shape.train_targets();
    let mut features: Vec<String> = analysis
        .train
        .columns
        .iter()
        .filter(|c| c.name != analysis.id_column && !train_targets.contains(&c.name.as_str()))
        .filter(|c| !analysis.target_columns.contains(&c.name))
        .filter(|c| test_columns.contains(&c.name.as_str()))
        .filter(|c| !looks_like_row_key(&c.name, c.dtype, c.distinct, rows))
        .filter(|c| !names_images(analysis, &c.name))
        .map(|c| c.name.clone())
        .collect();
    let mut types: serde_json::Map<String, serde_json::Value> = analysis
        .train
        .columns
        .iter()
        .filter(|c| features.contains(&c.name))
        .map(|c| (c.name.clone(), json!(c.dtype)))
        .collect();
    let (joins, joined) = super::joins::plan(analysis);
    for (name, dtype) in joined {
        types.insert(name.clone(), json!(dtype));
        features.push(name);
    }
    let metric = analysis.scored_metric();
    // The class each probability column holds, in the submission's order.
    let column_classes = match &analysis.shape {
        SubmissionShape::ClassProbabilities { classes, .. } => json!(classes),
        _ => serde_json::Value::Null,
    };
    json!({
        "train": analysis.train.path,
        "test": analysis.test.path,
        "sample_submission": analysis.sample_submission.path,
        "id_column": analysis.id_column,
        "shape": analysis.shape.name(),
        "targets": train_targets,
        "target_columns": analysis.target_columns,
        "column_classes": column_classes,
        "task": analysis.task,
        "prediction": analysis.prediction,
        "metric": metric_name(metric),
        "map_k": match metric {
            Metric::MapAtK { k } => k,
            _ => 1,
        },
        "features": features,
        "types": types,
        "images": images_config(analysis),
        "joins": joins,
    })
}

/// Whether `column` names the image files (a file name is no feature; its picture is).
fn names_images(analysis: &CompetitionAnalysis, column: &str) -> bool {
    analysis
        .images
        .as_ref()
        .is_some_and(|i| i.train.column == column || i.test.column == column)
}

/// Where the template finds each row's image: per role, the folder, the column whose values
/// name the files and the suffix that completes a value into a file name.
fn images_config(analysis: &CompetitionAnalysis) -> serde_json::Value {
    let Some(images) = &analysis.images else {
        return serde_json::Value::Null;
    };
    let role = |r: &crate::pipeline::analyse::ImageFolder| json!({ "folder": r.folder, "column": r.column, "suffix": r.suffix });
    json!({ "train": role(&images.train), "test": role(&images.test) })
}

/// The learners, encoding and hyper-parameters of candidate `candidate`: nothing for the first
/// (the template's defaults), then three variants in turn, each later round with a smaller
/// learning rate. Each variant keeps the first's three learners and adds others, so its own
/// out-of-fold blend (chosen on every training row, greedily above four learners) can only add
/// to them; the holdout then judges the variants' refits. They spend more of the budget than
/// the first: more boostings of other tree shapes, and folds repeated with other seeds, whose
/// predictions are averaged.
fn variant(candidate: u32, docker: bool) -> serde_json::Value {
    if candidate <= 1 {
        return json!({});
    }
    let round = (candidate - 2) / 3;
    let slower = 0.75_f64.powi(i32::try_from(round).unwrap_or(i32::MAX));
    match (candidate - 2) % 3 {
        0 => json!({
            "models": [
                "tuned", "plain", "linear", "tuned-small", "tuned-deep", "extra", "forest", "knn",
            ],
            "params": { "learning_rate": 0.1 * slower },
        }),
        1 => json!({
            "models": ["tuned", "plain", "linear", "expanded", "extra", "forest"],
            "encoding": "frequency",
            "repeats": 2,
            "params": {
                "learning_rate": 0.05 * slower,
                "max_leaf_nodes": 15,
                "min_samples_leaf": 10,
            },
        }),
        _ if docker => json!({
            "models": ["tuned", "plain", "linear", "lightgbm"],
            "params": { "learning_rate": 0.1 * slower },
        }),
        _ => json!({
            "models": ["tuned", "plain", "linear", "tuned-deep"],
            "repeats": 3,
            "params": {
                "learning_rate": 0.05 * slower,
                "max_leaf_nodes": 31,
                "min_samples_leaf": 20,
            },
        }),
    }
}

fn metric_name(metric: Metric) -> &'static str {
    match metric {
        Metric::Accuracy => "accuracy",
        Metric::RocAuc => "roc_auc",
        Metric::LogLoss => "log_loss",
        Metric::Rmse => "rmse",
        Metric::Rmsle => "rmsle",
        Metric::Mae => "mae",
        Metric::F1 => "f1",
        Metric::MacroF1 => "macro_f1",
        Metric::QuadraticWeightedKappa => "qwk",
        Metric::Mcrmse => "mcrmse",
        Metric::MeanColumnRocAuc => "mean_roc_auc",
        Metric::R2 => "r2",
        Metric::Smape => "smape",
        Metric::Pearson => "pearson",
        Metric::MapAtK { .. } => "map",
    }
}

/// A row number or key column (a pandas index written out, `Unnamed: 0`, a unique integer
/// `...id`): it carries no signal and makes models overfit.
fn looks_like_row_key(name: &str, dtype: ColumnType, distinct: u64, rows: u64) -> bool {
    let lower = name.trim().to_lowercase();
    if lower.is_empty() || lower.starts_with("unnamed:") || lower == "index" {
        return true;
    }
    let unique = rows > 0 && distinct >= rows.min(20_000);
    unique
        && matches!(dtype, ColumnType::Integer)
        && (lower == "id" || lower.ends_with("id") || lower.ends_with("_id"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::analyse::{ColumnProfile, PredictionKind, TableProfile, TaskKind};

    use crate::sandbox::{Backend, BackendChoice, select_backend};

    fn column(name: &str, dtype: ColumnType, distinct: u64) -> ColumnProfile {
        ColumnProfile {
            name: name.into(),
            dtype,
            missing_fraction: 0.0,
            distinct,
            examples: vec![],
        }
    }

    fn table(path: &str, columns: Vec<ColumnProfile>) -> TableProfile {
        TableProfile {
            path: path.into(),
            rows: 100,
            columns,
            head: vec![],
        }
    }

    #[test]
    fn features_exclude_ids_targets_and_row_keys() {
        let analysis = CompetitionAnalysis {
            slug: "demo\nslug".into(),
            files: vec![],
            train: table(
                "train.csv",
                vec![
                    column("", ColumnType::Integer, 100),
                    column("PassengerId", ColumnType::Integer, 100),
                    column("Age", ColumnType::Float, 50),
                    column("Sex", ColumnType::Categorical, 2),
                    column("Survived", ColumnType::Integer, 2),
                ],
            ),
            test: table(
                "test.csv",
                vec![
                    column("", ColumnType::Integer, 30),
                    column("PassengerId", ColumnType::Integer, 30),
                    column("Age", ColumnType::Float, 20),
                    column("Sex", ColumnType::Categorical, 2),
                ],
            ),
            sample_submission: table("sample_submission.csv", vec![]),
            id_column: "PassengerId".into(),
            target_columns: vec!["Survived".into()],
            shape: SubmissionShape::Single {
                target: "Survived".into(),
            },
            shape_reason: String::new(),
            task: TaskKind::Binary,
            prediction: PredictionKind::Label,
            metric: None,
            classes: vec!["0".into(), "1".into()],
            description: None,
            media: None,
            images: None,
            tables: Default::default(),
        };
        let config = config(&analysis);
        assert_eq!(config["features"], json!(["Age", "Sex"]));
        assert_eq!(config["types"]["Sex"], "categorical");
        assert_eq!(config["metric"], "accuracy");
        assert_eq!(config["shape"], "single");
        assert_eq!(config["targets"], json!(["Survived"]));
        let code = baseline_code(&analysis);
        assert!(code.starts_with("# Competition: demo slug\n"));
        assert!(code.contains("CONFIG = json.loads(\"{"));
        assert_eq!(
            variant_code(&analysis, 1, true),
            code,
            "the first is today's script"
        );

        // Each candidate is its own variant; only LightGBM's goes to Docker, and only when
        // Docker may run it.
        let both = [Backend::Wasm, Backend::Docker];
        let route = |code: &str| select_backend(BackendChoice::Auto, &both, &both, code);
        let mut seen = std::collections::HashSet::new();
        for candidate in 1..=7 {
            for docker in [false, true] {
                let code = variant_code(&analysis, candidate, docker);
                seen.insert(code.clone());
                let lightgbm = docker && candidate % 3 == 1 && candidate > 1;
                let want = if lightgbm {
                    Backend::Docker
                } else {
                    Backend::Wasm
                };
                assert_eq!(
                    route(&code).ok(),
                    Some(want),
                    "candidate {candidate}, {docker}"
                );
                assert_eq!(
                    code.contains("\nimport lightgbm  # noqa"),
                    lightgbm,
                    "{candidate}"
                );
            }
        }
        assert_eq!(seen.len(), 9, "seven variants, two of them with LightGBM");
        assert!(!code.contains("PIL") && !code.contains("# [images]"));

        // Pictures: the image section is kept, every variant stays in the guest (Pillow is
        // not in the Docker image), and the column naming the files is no feature.
        let mut pictures = analysis.clone();
        let role = |folder: &str| crate::pipeline::analyse::ImageFolder {
            folder: folder.into(),
            column: "Sex".into(),
            suffix: String::new(),
            count: 10,
        };
        pictures.images = Some(crate::pipeline::analyse::ImageSet {
            train: role("train"),
            test: role("test"),
            extension: "png".into(),
            sizes: vec![],
        });
        let filled = super::config(&pictures);
        assert_eq!(filled["features"], json!(["Age"]));
        assert_eq!(filled["images"]["train"]["folder"], "train");
        for candidate in 1..=7 {
            let code = variant_code(&pictures, candidate, true);
            assert!(code.contains("from PIL import Image"));
            assert_eq!(
                route(&code).ok(),
                Some(Backend::Wasm),
                "candidate {candidate}"
            );
        }
    }

    #[test]
    fn a_section_is_cut_from_its_opening_to_its_closing_line() {
        let template = "a\n# [x] why\nb\n    # [/x]\nc\n    # [x]\n    d\n    # [/x]\ne\n";
        assert_eq!(without_section(template, "x"), "a\nc\ne\n");
        assert_eq!(without_section(template, "y"), template);
    }

    #[tokio::test]
    async fn media_the_baseline_cannot_read_end_the_job_before_any_attempt() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, body) in [
            ("train.csv", "clip,label\na.wav,dog\nb.wav,cat\n"),
            ("test.csv", "clip\nc.wav\n"),
            ("sample_submission.csv", "clip,label\nc.wav,dog\n"),
            ("a.wav", "RIFF"),
        ] {
            std::fs::write(dir.path().join(name), body).expect("write");
        }
        let text = crate::pipeline::analyse::CompetitionText::default();
        let analysis =
            crate::pipeline::analyse::analyse(dir.path(), "birds", &text).expect("analysis");
        let request = GenerationRequest {
            analysis: &analysis,
            attempt: 1,
            previous: None,
            docker: false,
            candidate: 1,
            improve: None,
        };
        let error = BaselineGenerator
            .generate(&request)
            .await
            .expect_err("refused");
        assert!(!error.is_retryable());
        let message = error.to_string();
        assert!(
            message.contains("1 audio files (e.g. [\"a.wav\"])"),
            "{message}"
        );
        assert!(message.contains("an LLM generator"), "{message}");
    }

    #[test]
    fn the_template_scores_every_metric_and_guards_against_the_reference() {
        // Each metric the config can name is scored by the template itself (none falls through
        // to accuracy), so the blend is chosen by the competition's own metric.
        for metric in [
            Metric::Accuracy,
            Metric::RocAuc,
            Metric::LogLoss,
            Metric::Rmse,
            Metric::Rmsle,
            Metric::Mae,
            Metric::MacroF1,
            Metric::QuadraticWeightedKappa,
            Metric::Mcrmse,
            Metric::MeanColumnRocAuc,
            Metric::R2,
            Metric::Smape,
            Metric::Pearson,
            Metric::MapAtK { k: 3 },
        ] {
            let quoted = format!("\"{}\"", metric_name(metric));
            assert!(TEMPLATE.contains(&quoted), "{quoted} is not scored");
        }
        // The reference-like default HistGradientBoosting is always a candidate, and the last
        // line the pipeline parses is the chosen blend's validation score.
        for needed in [
            "def plain_candidate",
            "kind(random_state=0)",
            "def tuned_candidate",
            "def linear_candidate",
            "print(f\"validation {name}: {value:.5f}",
        ] {
            assert!(TEMPLATE.contains(needed), "the template lacks {needed}");
        }
    }

    #[test]
    fn the_pre_warmed_image_imports_every_module_the_template_uses() {
        let prewarmed = ks_guest_runtime::prewarm_imports();
        for line in TEMPLATE.lines() {
            let line = line.trim_start();
            let module = line
                .strip_prefix("from ")
                .and_then(|rest| rest.split_whitespace().next())
                .or_else(|| line.strip_prefix("import ").map(str::trim));
            let Some(module) = module.map(|m| m.split(" as ").next().unwrap_or(m)) else {
                continue;
            };
            let top = module.split('.').next().unwrap_or(module);
            if ["numpy", "pandas", "scipy", "sklearn"].contains(&top) {
                assert!(
                    prewarmed.contains(&module),
                    "{module} is not in guest-runtime/prewarm/imports.txt"
                );
            }
        }
    }
}
