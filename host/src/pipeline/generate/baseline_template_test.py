# Unit tests of baseline_template.py, run inside the WASI guest (CPython with the same numpy,
# pandas and scikit-learn as the jobs) by the integration test `template`, or by hand:
#
#     kaggle-solver sandbox run --policy large --input host/src/pipeline/generate \
#         host/src/pipeline/generate/baseline_template_test.py
#
# The template is found next to this file or, in the guest, under /input. Every data set is
# small and synthetic, built here with a fixed seed.
import contextlib
import importlib.util
import io
import math
import os
import sys
import tempfile
import unittest
from datetime import date
from unittest import mock

import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score, f1_score, log_loss, r2_score, roc_auc_score


def load_template():
    sys.dont_write_bytecode = True  # /input is read-only, and the source tree stays clean
    here = os.path.dirname(os.path.abspath(__file__))
    for folder in (here, "/input"):
        path = os.path.join(folder, "baseline_template.py")
        if os.path.isfile(path):
            spec = importlib.util.spec_from_file_location("baseline_template", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise FileNotFoundError("baseline_template.py is neither next to this file nor in /input")


bt = load_template()


def classification_target(labels, metric="accuracy"):
    y = pd.Series(labels)
    task = "binary" if y.nunique() == 2 else "multiclass"
    return bt.fitting_target(y, task, metric)


def all_rows_folds(target):
    """Folds whose out-of-fold truth is every row, in order: for scoring hand-made predictions."""
    rows = np.arange(len(target.y_fit))
    truth = np.asarray(target.y_fit)
    truth_index = None
    if target.position is not None:
        truth_index = np.array([target.position[c] for c in truth])
    return bt.Folds([(rows, rows)], np.ones(len(rows), dtype=bool), truth, truth_index)


def quietly(function, *args, **kwargs):
    """`function`'s result and what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = function(*args, **kwargs)
    return result, out.getvalue()


def tabular(rows, seed, task):
    """A data set exercising every feature kind: numbers (some missing), a boolean, a date, a
    text, a category, and an id. The target depends on the numbers, the category and the date.
    Returns (train, test, types, answers)."""
    random = np.random.RandomState(seed)
    x1 = random.normal(size=rows)
    x2 = random.uniform(-2, 2, size=rows)
    colour = random.choice(["red", "green", "blue", "grey"], size=rows)
    flag = random.rand(rows) < 0.5
    day = pd.Timestamp("2021-01-01") + pd.to_timedelta(random.randint(0, 700, size=rows), "D")
    words = random.randint(1, 8, size=rows)
    note = [" ".join(["word"] * w) for w in words]
    signal = 1.5 * x1 + x2 + (colour == "red") * 1.2 - (day.month >= 7) * 0.8
    if task == "regression":
        answer = np.exp(1 + 0.4 * signal + 0.1 * random.normal(size=rows))
    elif task == "binary":
        answer = np.where(signal + 0.3 * random.normal(size=rows) > 0.2, "yes", "no")
    else:
        cuts = np.quantile(signal, [0.15, 0.55, 0.85])
        answer = np.array(["Fair", "Good", "Ideal", "Premium"])[np.searchsorted(cuts, signal)]
    x1_missing = x1.copy()
    x1_missing[random.rand(rows) < 0.05] = np.nan
    frame = pd.DataFrame(
        {
            "id": np.arange(1000, 1000 + rows),
            "x1": x1_missing,
            "x2": x2.round(4),
            "colour": colour,
            "flag": flag,
            "day": day.strftime("%Y-%m-%d"),
            "note": note,
            "target": answer,
        }
    )
    types = {
        "x1": "float",
        "x2": "float",
        "colour": "categorical",
        "flag": "boolean",
        "day": "datetime",
        "note": "text",
    }
    cut = rows * 3 // 4
    train = frame.iloc[:cut].reset_index(drop=True)
    test = frame.iloc[cut:].drop(columns=["target"]).reset_index(drop=True)
    answers = frame.iloc[cut:][["id", "target"]].reset_index(drop=True)
    return train, test, types, answers


def run_main(
    task, metric, prediction, rows=240, seed=0, target_columns=None, sample=None, extra=None
):
    """Runs the whole pipeline on `tabular` data in a temporary folder. Returns (the submission
    read back, what the pipeline printed, the test answers)."""
    train, test, types, answers = tabular(rows, seed, task)
    with tempfile.TemporaryDirectory() as folder:
        train.to_csv(os.path.join(folder, "train.csv"), index=False)
        test.to_csv(os.path.join(folder, "test.csv"), index=False)
        targets = target_columns or ["target"]
        if sample is None:
            # The sample's ids in another order than the test's: the submission follows it.
            sample = pd.DataFrame({"id": test["id"][::-1].to_numpy()})
            for column in targets:
                sample[column] = 0
        sample.to_csv(os.path.join(folder, "sample_submission.csv"), index=False)
        config = {
            "train": "train.csv",
            "test": "test.csv",
            "sample_submission": "sample_submission.csv",
            "id_column": "id",
            "shape": "single",
            "targets": ["target"],
            "target_columns": targets,
            "task": task,
            "prediction": prediction,
            "metric": metric,
            "features": list(types),
            "types": types,
            **(extra or {}),
        }
        _, printed = quietly(bt.main, config, input_dir=folder, output_dir=folder)
        submission = pd.read_csv(os.path.join(folder, "submission.csv"))
    return submission, printed, answers


def printed_validation(printed):
    """(metric name, value) of the last `validation NAME: VALUE ...` line."""
    line = [line for line in printed.splitlines() if line.startswith("validation ")][-1]
    name, rest = line[len("validation ") :].split(":", 1)
    return name, float(rest.split()[0])


class FeatureTests(unittest.TestCase):
    def build(self, train, test, names, types):
        both = pd.concat([train[names], test[names]], ignore_index=True)
        return bt.feature_matrices(train, test, both, names, types)

    def test_numbers_are_coerced_and_booleans_mapped(self):
        train = pd.DataFrame({"n": ["1", "2.5", "oops", "4"], "b": [True, False, "TRUE", None]})
        test = pd.DataFrame({"n": ["7", "8", "9", "10"], "b": [False, True, True, False]})
        X, X_test = self.build(train, test, ["n", "b"], {"n": "float", "b": "boolean"})
        np.testing.assert_array_equal(X["n"].to_numpy(), [1.0, 2.5, np.nan, 4.0])
        np.testing.assert_array_equal(X["b"].to_numpy(), [1.0, 0.0, 1.0, np.nan])
        np.testing.assert_array_equal(X_test["b"].to_numpy(), [0.0, 1.0, 1.0, 0.0])

    def test_dates_give_the_parts_that_vary_and_an_ordinal(self):
        train = pd.DataFrame({"d": ["2020-01-06", "2020-03-07", "not a date", "2021-01-06"]})
        test = pd.DataFrame({"d": ["2021-05-06", "2020-02-06", "2020-01-06", "2020-01-06"]})
        X, X_test = self.build(train, test, ["d"], {"d": "datetime"})
        # Every time is midnight, so there is no hour column.
        self.assertEqual(
            list(X.columns), ["d_year", "d_month", "d_day", "d_day_of_week", "d_ordinal"]
        )
        self.assertEqual(list(X_test.columns), list(X.columns))
        np.testing.assert_array_equal(X["d_year"].to_numpy(), [2020, 2020, np.nan, 2021])
        np.testing.assert_array_equal(X["d_day_of_week"].to_numpy(), [0, 5, np.nan, 2])
        self.assertEqual(X["d_ordinal"].iloc[0], (date(2020, 1, 6) - date(1970, 1, 1)).days)
        self.assertEqual(X_test["d_month"].iloc[0], 5.0)

    def test_text_gives_its_length_and_word_count(self):
        train = pd.DataFrame({"t": ["a bb", None, "three words here", "x"]})
        test = pd.DataFrame({"t": ["", "one", "two two", "a b c d"]})
        X, X_test = self.build(train, test, ["t"], {"t": "text"})
        np.testing.assert_array_equal(X["t_chars"].to_numpy(), [4, 0, 16, 1])
        np.testing.assert_array_equal(X["t_words"].to_numpy(), [2, 0, 3, 1])
        np.testing.assert_array_equal(X_test["t_words"].to_numpy(), [0, 1, 2, 4])

    def test_categories_are_native_and_agree_over_train_and_test(self):
        train = pd.DataFrame({"c": ["b", "a", None, "b"], "u": [1, 2, 1, 2]})
        test = pd.DataFrame({"c": ["z", "a", "b", None], "u": [2, 3, 3, 1]})
        # `u` has no type: taken as a category too, its levels as text.
        X, X_test = self.build(train, test, ["c", "u"], {"c": "categorical"})
        self.assertIsInstance(X["c"].dtype, pd.CategoricalDtype)
        self.assertEqual(list(X["c"].cat.categories), ["a", "b", "z"])
        self.assertEqual(list(X_test["c"].cat.categories), ["a", "b", "z"])
        self.assertEqual(X_test["c"].iloc[0], "z")
        self.assertTrue(pd.isna(X["c"].iloc[2]))
        self.assertEqual(list(X["u"].cat.categories), ["1", "2", "3"])

    def test_many_levels_become_a_frequency_and_a_code(self):
        levels = [f"level{i:03d}" for i in range(bt.MAX_CATEGORIES + 1)]
        train = pd.DataFrame({"c": levels + ["level000"]})
        test = pd.DataFrame({"c": ["level000", "level002", "new"]})
        X, X_test = self.build(train, test, ["c"], {"c": "categorical"})
        self.assertEqual(list(X.columns), ["c_freq", "c_code"])
        self.assertEqual(X["c_freq"].iloc[0], 3.0)  # twice in train, once in test
        self.assertEqual(X["c_code"].iloc[2], 2.0)
        self.assertEqual(X_test["c_code"].iloc[2], len(levels))  # "new" sorts after them all
        self.assertEqual(X_test["c_freq"].iloc[2], 1.0)

    def test_columns_constant_over_train_are_dropped(self):
        train = pd.DataFrame({"k": [1, 1, 1], "e": [None, None, None], "v": [1, 2, 3]})
        test = pd.DataFrame({"k": [2, 3, 4], "e": [1, 2, 3], "v": [4, 5, 6]})
        types = {"k": "integer", "e": "float", "v": "integer"}
        X, X_test = self.build(train, test, ["k", "e", "v"], types)
        self.assertEqual(list(X.columns), ["v"])
        self.assertEqual(list(X_test.columns), ["v"])


class TargetTests(unittest.TestCase):
    def test_numeric_labels_are_in_numeric_order(self):
        target = classification_target([10, 2, 2, 10, 3])
        self.assertEqual(list(target.classes), [2, 3, 10])
        self.assertEqual(target.position, {2: 0, 3: 1, 10: 2})
        self.assertFalse(target.log_target)

    def test_mixed_labels_are_in_text_order(self):
        target = classification_target([10, "b", 2, "b"])
        self.assertEqual([str(c) for c in target.classes], ["10", "2", "b"])

    def test_rmsle_fits_the_log_of_a_non_negative_target(self):
        target = bt.fitting_target(pd.Series([0, 1, 9, 99]), "regression", "rmsle")
        self.assertTrue(target.log_target)
        self.assertIsNone(target.classes)
        np.testing.assert_allclose(target.y_fit, np.log1p([0, 1, 9, 99]))

    def test_rmsle_with_a_negative_value_fits_the_values(self):
        target = bt.fitting_target(pd.Series([-1, 1, 9, 99]), "regression", "rmsle")
        self.assertFalse(target.log_target)
        np.testing.assert_array_equal(target.y_fit, [-1.0, 1.0, 9.0, 99.0])

    def test_rmse_fits_the_values_as_numbers(self):
        target = bt.fitting_target(pd.Series(["1.5", "2", "x"]), "regression", "rmse")
        self.assertFalse(target.log_target)
        np.testing.assert_array_equal(target.y_fit, [1.5, 2.0, np.nan])


class FoldTests(unittest.TestCase):
    def test_fold_count_shrinks_for_large_data(self):
        self.assertEqual(bt.fold_count(30_000), 5)
        self.assertEqual(bt.fold_count(30_001), 3)

    def test_regression_folds_validate_every_row_once(self):
        target = bt.fitting_target(pd.Series(np.arange(23.0)), "regression", "rmse")
        folds = bt.make_folds(target, 5)
        self.assertEqual(len(folds.splits), 5)
        validated = np.concatenate([val for _, val in folds.splits])
        self.assertEqual(sorted(validated), list(range(23)))
        self.assertTrue(folds.seen.all())
        self.assertIsNone(folds.truth_index)

    def test_a_class_seen_once_is_never_validated(self):
        labels = ["a"] * 10 + ["b"] * 10 + ["c"]
        target = classification_target(labels)
        folds = bt.make_folds(target, 5)
        lonely = labels.index("c")
        for fit_rows, val_rows in folds.splits:
            self.assertIn(lonely, fit_rows)
            self.assertNotIn(lonely, val_rows)
            self.assertEqual(len(set(fit_rows) & set(val_rows)), 0)
        self.assertFalse(folds.seen[lonely])
        self.assertEqual(folds.seen.sum(), 20)
        np.testing.assert_array_equal(folds.truth_index, [0] * 10 + [1] * 10)

    def test_a_class_smaller_than_the_folds_is_spread_over_them(self):
        labels = ["a"] * 20 + ["b"] * 3
        folds = bt.make_folds(classification_target(labels), 5)
        rare = {i for i, label in enumerate(labels) if label == "b"}
        holding = [len(rare & set(val)) for _, val in folds.splits]
        self.assertEqual(sorted(holding), [0, 0, 1, 1, 1])
        for fit_rows, _ in folds.splits:
            self.assertGreaterEqual(len(rare & set(fit_rows)), 2)


class CostTests(unittest.TestCase):
    """The cost rule: the fitting follows rows x columns x classes, not the class count alone."""

    def labels(self, classes, rows=40):
        return classification_target([f"c{i % classes}" for i in range(rows)])

    def test_a_tree_an_iteration_unless_there_are_more_than_two_classes(self):
        regression = bt.fitting_target(pd.Series(np.arange(9.0)), "regression", "rmse")
        self.assertEqual(bt.trees_per_iteration(regression), 1)
        self.assertEqual(bt.trees_per_iteration(self.labels(2)), 1)
        self.assertEqual(bt.trees_per_iteration(self.labels(3)), 3)
        self.assertEqual(bt.trees_per_iteration(self.labels(27)), 27)

    def test_many_classes_leave_the_default_learner_out(self):
        models = ["tuned", "plain", "linear"]
        few = bt.cost_plan(1000, 5, self.labels(bt.MANY_CLASSES - 1), models)
        self.assertEqual(few.models, models)
        self.assertEqual(few.left_out, [])
        many = bt.cost_plan(1000, 5, self.labels(bt.MANY_CLASSES), models)
        self.assertEqual(many.models, ["tuned", "linear"])
        self.assertEqual(many.left_out, [("plain", "8 classes: 100 fixed iterations of 8 trees")])
        # The required first learner stays whatever it is.
        first = bt.cost_plan(1000, 5, self.labels(bt.MANY_CLASSES), ["plain", "linear"])
        self.assertEqual(first.models, ["plain", "linear"])

    def test_other_tree_shapes_are_left_out_for_many_classes_and_large_data(self):
        models = ["tuned", "tuned-small", "tuned-deep"]
        self.assertEqual(bt.cost_plan(1000, 5, self.labels(3), models).models, models)
        why = "another boosting of the tuned learner's cost"
        for rows, classes in ((1000, bt.MANY_CLASSES), (bt.LARGE_ROWS + 1, 2)):
            plan = bt.cost_plan(rows, 5, self.labels(classes), models)
            self.assertEqual(plan.models, ["tuned"])
            self.assertEqual(plan.left_out, [("tuned-small", why), ("tuned-deep", why)])

    def test_a_large_work_estimate_gets_three_folds(self):
        target = self.labels(10)
        at_bound = bt.cost_plan(10_000, 10, target, ["tuned"])
        self.assertEqual((at_bound.work, at_bound.folds), (bt.FOLD_MAX_WORK, 5))
        above = bt.cost_plan(10_001, 10, target, ["tuned"])
        self.assertEqual((above.work, above.folds), (1_000_100, 3))
        # The same rows and columns with two classes are a tenth of the work: five folds.
        self.assertEqual(bt.cost_plan(10_001, 10, self.labels(2), ["tuned"]).folds, 5)
        # Large data keeps its three folds however small the rest.
        self.assertEqual(bt.cost_plan(30_001, 1, self.labels(2), ["tuned"]).folds, 3)

    def test_large_data_gets_the_tuned_learner_alone_at_a_higher_rate(self):
        models = ["tuned", "plain", "linear", "forest"]
        at_bound = bt.cost_plan(bt.LARGE_ROWS, 9, self.labels(5), models)
        self.assertEqual((at_bound.models, at_bound.left_out, at_bound.params), (models, [], {}))
        above = bt.cost_plan(bt.LARGE_ROWS + 1, 9, self.labels(5), models)
        self.assertEqual(above.models, ["tuned", "forest"])  # a learner named on purpose stays
        why = "30,001 rows: large data"
        self.assertEqual(above.left_out, [("plain", why), ("linear", why)])
        self.assertEqual(above.params, {"learning_rate": bt.LARGE_LEARNING_RATE})
        self.assertEqual(above.folds, 3)
        # The required first learner stays whatever it is.
        first = bt.cost_plan(bt.LARGE_ROWS + 1, 9, self.labels(2), ["plain", "linear"])
        self.assertEqual(first.models, ["plain"])

    def test_a_large_target_is_solved_fast_unless_the_config_sets_the_rate(self):
        random = np.random.RandomState(5)
        x = random.normal(size=200)
        X = pd.DataFrame({"x": x, "noise": random.normal(size=200)})
        y = pd.Series(3 * x + random.normal(scale=0.1, size=200))
        args = (y[:160], "regression", "rmse", X.iloc[:160], X.iloc[160:], None, [])
        for params, rate in ((None, bt.LARGE_LEARNING_RATE), ({"learning_rate": 0.05}, 0.05)):
            with (
                mock.patch.object(bt, "LARGE_ROWS", 100),
                mock.patch.object(bt, "make_model", wraps=bt.make_model) as made,
            ):
                (_, folds, blend, prediction), printed = quietly(
                    bt.solve_target, *args, params=params
                )
            self.assertIn("candidate plain left out: 160 rows: large data", printed)
            self.assertIn("candidate linear left out: 160 rows", printed)
            self.assertIn(f"160 rows: the tuned learner at learning rate {rate}", printed)
            self.assertEqual(blend.mix, {"tuned": 1.0})
            self.assertEqual(len(folds.splits), 3)
            rates = {call.kwargs["params"]["learning_rate"] for call in made.call_args_list}
            self.assertEqual(rates, {rate})
            self.assertEqual(made.call_count, 4)  # three folds and the refit
            self.assertEqual(prediction.shape, (40,))

    def test_a_many_class_target_is_solved_without_the_default_learner(self):
        random = np.random.RandomState(11)
        rows, classes = 180, 9
        x = random.uniform(0, classes, size=rows)
        X = pd.DataFrame({"x": x, "noise": random.normal(size=rows)})
        y = pd.Series([f"k{int(v)}" for v in x])
        (target, folds, blend, prediction), printed = quietly(
            bt.solve_target, y[:150], "multiclass", "log_loss", X.iloc[:150], X.iloc[150:], None, []
        )
        self.assertIn("candidate plain left out: 9 classes", printed)
        self.assertNotIn("out-of-fold plain", printed)
        self.assertIn("out-of-fold tuned: log_loss ", printed)
        self.assertIn(f"work {150 * 2 * classes:,} (rows x columns x trees an iteration)", printed)
        self.assertEqual(len(folds.splits), 5)
        self.assertEqual(prediction.shape, (30, classes))
        self.assertLess(blend.value, math.log(classes) / 2)


class ModelTests(unittest.TestCase):
    def test_the_loss_follows_the_metric(self):
        mae = bt.fitting_target(pd.Series([1.0, 2.0]), "regression", "mae")
        rmse = bt.fitting_target(pd.Series([1.0, 2.0]), "regression", "rmse")
        self.assertEqual(bt.make_model(mae, 0).loss, "absolute_error")
        self.assertEqual(bt.make_model(rmse, 0).loss, "squared_error")
        classifier = bt.make_model(classification_target([0, 1]), 3, max_iter=7)
        self.assertEqual(
            (classifier.tol, classifier.max_iter, classifier.random_state), (1e-4, 7, 3)
        )
        self.assertTrue(classifier.early_stopping)

    def test_a_model_that_saw_fewer_classes_predicts_zero_for_the_rest(self):
        target = classification_target(["a", "b", "c", "a", "c"])
        random = np.random.RandomState(0)
        data = random.normal(size=(60, 2))
        labels = np.where(data[:, 0] > 0, "a", "c")  # never "b"
        model = bt.make_model(target, 0, max_iter=10, early_stopping=False).fit(data, labels)
        probabilities = bt.predict(model, data[:5], target)
        self.assertEqual(probabilities.shape, (5, 3))
        np.testing.assert_array_equal(probabilities[:, 1], 0.0)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)


class MetricTests(unittest.TestCase):
    def test_accuracy_is_the_share_of_right_labels(self):
        target = classification_target(["a", "b", "c", "a"])
        folds = all_rows_folds(target)
        predicted = np.eye(3)[[0, 1, 1, 0]]
        name, value, higher, weights = bt.evaluate(predicted, target, folds)
        self.assertEqual((name, value, higher), ("accuracy", 0.75, True))
        np.testing.assert_array_equal(weights, [1.0, 1.0, 1.0])

    def test_roc_auc_matches_scikit_learn(self):
        random = np.random.RandomState(1)
        labels = random.choice(["no", "yes"], size=80)
        target = classification_target(labels, "roc_auc")
        score = random.rand(80) * 0.6 + (labels == "yes") * 0.3
        predicted = np.column_stack([1 - score, score])
        name, value, higher, _ = bt.evaluate(predicted, target, all_rows_folds(target))
        self.assertEqual((name, higher), ("roc_auc", True))
        self.assertAlmostEqual(value, roc_auc_score(labels == "yes", score), places=12)
        self.assertLess(value, 1.0)

    def test_log_loss_matches_scikit_learn_and_clips(self):
        random = np.random.RandomState(2)
        labels = random.choice([0, 1], size=50)
        target = classification_target(labels, "log_loss")
        positive = np.clip(random.rand(50) * 0.5 + labels * 0.4, 0.01, 0.99)
        predicted = np.column_stack([1 - positive, positive])
        name, value, higher, _ = bt.evaluate(predicted, target, all_rows_folds(target))
        self.assertEqual((name, higher), ("log_loss", False))
        self.assertAlmostEqual(value, log_loss(labels, positive), places=12)
        # A certain wrong answer costs -log(1e-15), not infinity.
        certain = np.eye(2)[1 - labels]
        _, clipped, _, _ = bt.evaluate(certain, target, all_rows_folds(target))
        self.assertAlmostEqual(clipped, -np.log(1e-15), places=6)

    def test_macro_f1_matches_scikit_learn(self):
        random = np.random.RandomState(3)
        truth = random.randint(0, 4, size=200)
        predicted = np.where(random.rand(200) < 0.6, truth, random.randint(0, 4, size=200))
        predicted[predicted == 3] = 2  # class 3 is never predicted, only in the truth
        expected = f1_score(truth, predicted, average="macro")
        self.assertAlmostEqual(bt.macro_f1(truth, predicted, 4), expected, places=12)
        # A class absent from both the truth and the predictions does not count.
        self.assertAlmostEqual(bt.macro_f1(truth, predicted, 5), expected, places=12)

    def test_macro_f1_adjusts_for_class_priors_when_that_helps(self):
        # The rare class "r" is never the most probable, but is more probable on its own rows:
        # dividing by the class shares finds it.
        labels = ["c"] * 90 + ["r"] * 10
        target = classification_target(labels, "macro_f1")
        folds = all_rows_folds(target)
        rare = np.array(labels) == "r"
        p_rare = np.where(rare, 0.3, 0.05)
        predicted = np.column_stack([1 - p_rare, p_rare])
        plain = bt.macro_f1(folds.truth_index, bt.decide(predicted, np.ones(2)), 2)
        name, value, higher, weights = bt.evaluate(predicted, target, folds)
        self.assertEqual((name, higher), ("macro_f1", True))
        self.assertAlmostEqual(value, 1.0)
        self.assertLess(plain, 0.5)
        self.assertGreater(weights[1] / weights[0], 1.0)
        np.testing.assert_array_equal(
            bt.decide(predicted, weights), folds.truth_index, "the adjusted argmax is right"
        )

    def test_f1_is_the_positive_class_f1_with_its_threshold_chosen(self):
        random = np.random.RandomState(5)
        labels = (random.rand(300) < 0.2).astype(int)
        target = classification_target(labels, "f1")
        folds = all_rows_folds(target)
        positive = np.clip(0.15 + 0.3 * labels + random.rand(300) * 0.2, 0.01, 0.99)
        predicted = np.column_stack([1 - positive, positive])
        name, value, higher, weights = bt.evaluate(predicted, target, folds)
        self.assertEqual((name, higher), ("f1", True))
        chosen = bt.decide(predicted, weights)
        self.assertAlmostEqual(value, f1_score(folds.truth_index, chosen), places=12)
        plain = f1_score(folds.truth_index, bt.decide(predicted, np.ones(2)))
        self.assertGreater(value, plain, "a lower threshold pays for a rare positive class")
        self.assertEqual(bt.positive_f1(np.array([0, 0]), np.array([0, 0])), 0.0)

    def test_f1_on_many_classes_is_macro_f1(self):
        labels = ["a"] * 40 + ["b"] * 40 + ["c"] * 20
        target = classification_target(labels, "f1")
        folds = all_rows_folds(target)
        predicted = np.eye(3)[folds.truth_index] * 0.7 + 0.1
        name, value, _, _ = bt.evaluate(predicted, target, folds)
        self.assertEqual((name, value), ("macro_f1", 1.0))

    def test_macro_f1_keeps_the_plain_argmax_when_it_is_as_good(self):
        labels = ["c"] * 90 + ["r"] * 10
        target = classification_target(labels, "macro_f1")
        folds = all_rows_folds(target)
        predicted = np.eye(2)[folds.truth_index] * 0.8 + 0.1
        _, value, _, weights = bt.evaluate(predicted, target, folds)
        self.assertEqual(value, 1.0)
        np.testing.assert_array_equal(weights, [1.0, 1.0])

    def regression(self, values, metric):
        target = bt.fitting_target(pd.Series(values), "regression", metric)
        return target, all_rows_folds(target)

    def test_rmse(self):
        target, folds = self.regression([1.0, 2.0, 3.0, 4.0], "rmse")
        name, value, higher, weights = bt.evaluate(np.array([1.0, 2.0, 3.0, 6.0]), target, folds)
        self.assertEqual((name, value, higher, weights), ("rmse", 1.0, False, None))

    def test_mae(self):
        target, folds = self.regression([1.0, 2.0, 3.0, 4.0], "mae")
        name, value, higher, _ = bt.evaluate(np.array([0.0, 2.0, 3.0, 7.0]), target, folds)
        self.assertEqual((name, value, higher), ("mae", 1.0, False))

    def test_rmsle_of_a_log_target_is_the_rmse_in_log_space(self):
        target, folds = self.regression([0.0, 1.0, 9.0], "rmsle")
        predicted = np.log1p([1.0, 1.0, 9.0])  # the models predict log1p values
        name, value, higher, _ = bt.evaluate(predicted, target, folds)
        self.assertEqual((name, higher), ("rmsle", False))
        self.assertAlmostEqual(value, np.sqrt(np.log1p(1.0) ** 2 / 3), places=12)

    def test_rmsle_of_values_clips_negative_predictions_and_truths(self):
        target, folds = self.regression([-3.0, 1.0, 9.0], "rmsle")
        self.assertFalse(target.log_target)
        name, value, _, _ = bt.evaluate(np.array([0.0, -5.0, 9.0]), target, folds)
        self.assertEqual(name, "rmsle")
        self.assertAlmostEqual(value, np.sqrt(np.log1p(1.0) ** 2 / 3), places=12)


class BlendTests(unittest.TestCase):
    def test_the_grid_covers_every_quarter_split_first_candidate_first(self):
        grid = list(bt.blend_grid(3))
        self.assertEqual(len(grid), 15)
        self.assertEqual(len(set(grid)), 15)
        self.assertEqual(grid[0], (1.0, 0.0, 0.0))
        self.assertEqual(grid[-1], (0.0, 0.0, 1.0))
        for weights in grid:
            self.assertAlmostEqual(sum(weights), 1.0)
            self.assertTrue(all(w * 4 == int(w * 4) for w in weights))
        self.assertEqual(list(bt.blend_grid(1)), [(1.0,)])

    def test_the_best_blend_wins_respecting_the_metric_direction(self):
        target = bt.fitting_target(pd.Series([0.0, 4.0, 0.0, 4.0]), "regression", "rmse")
        folds = all_rows_folds(target)
        test = np.zeros(2)
        candidates = {
            "low": (np.array([-1.0, 3.0, -1.0, 3.0]), test),
            "high": (np.array([1.0, 5.0, 1.0, 5.0]), test + 1),
            "bad": (np.array([9.0, 9.0, 9.0, 9.0]), test + 9),
        }
        blend = bt.choose_blend(candidates, target, folds)
        self.assertEqual(blend.mix, {"low": 0.5, "high": 0.5})
        self.assertEqual((blend.metric, blend.value), ("rmse", 0.0))
        self.assertIsNone(blend.class_weights)
        np.testing.assert_array_equal(bt.blended_test_prediction(candidates, blend), [0.5, 0.5])

    def test_ties_go_to_the_first_candidate(self):
        target = classification_target(["a", "b", "a"])
        folds = all_rows_folds(target)
        perfect = np.eye(2)[[0, 1, 0]]
        candidates = {"first": (perfect, None), "second": (perfect.copy(), None)}
        blend = bt.choose_blend(candidates, target, folds)
        self.assertEqual(blend.mix, {"first": 1.0})
        self.assertEqual((blend.metric, blend.value), ("accuracy", 1.0))

    def test_many_candidates_are_blended_greedily_with_repeats(self):
        target = bt.fitting_target(pd.Series([0.0, 4.0, 0.0, 4.0]), "regression", "rmse")
        folds = all_rows_folds(target)
        test = np.zeros(2)
        low, high = np.array([-1.0, 3.0, -1.0, 3.0]), np.array([2.0, 6.0, 2.0, 6.0])
        candidates = {"bad": (np.full(4, 9.0), test + 9), "low": (low, test), "high": (high, test)}
        candidates.update({f"worse{i}": (low - i, test) for i in range(1, 4)})
        self.assertGreater(len(candidates), bt.GRID_MAX_CANDIDATES)
        blend = bt.choose_blend(candidates, target, folds)
        # low alone is 1 off; two thirds low and a third high (which is 2 off the other way)
        # hit every value: picked twice and once in the first three rounds.
        self.assertEqual(list(blend.mix), ["low", "high"])
        self.assertAlmostEqual(blend.mix["low"], 2 / 3)
        self.assertAlmostEqual(blend.mix["high"], 1 / 3)
        self.assertAlmostEqual(blend.value, 0.0)

    def test_greedy_ties_go_to_the_earlier_candidate(self):
        target = classification_target(["a", "b", "a"])
        folds = all_rows_folds(target)
        perfect = np.eye(2)[[0, 1, 0]]
        candidates = {f"c{i}": (perfect.copy(), None) for i in range(5)}
        self.assertEqual(bt.greedy_blend(candidates, target, folds).mix, {"c0": 1.0})

    def test_rounds_are_averaged_over_the_candidates_every_round_built(self):
        rounds = [
            {"tuned": (np.array([1.0, 3.0]), np.array([2.0])), "text": (np.zeros(2), None)},
            {"tuned": (np.array([3.0, 5.0]), np.array([4.0]))},
        ]
        mean = bt.mean_over_rounds(rounds)
        self.assertEqual(list(mean), ["tuned"])
        np.testing.assert_allclose(mean["tuned"][0], [2.0, 4.0])
        np.testing.assert_allclose(mean["tuned"][1], [3.0])


class CandidateTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        train, test, types, _ = tabular(160, 4, "binary")
        names = list(types)
        cls.both = pd.concat([train[names], test[names]], ignore_index=True)
        cls.names = names
        cls.X, cls.X_test = bt.feature_matrices(train, test, cls.both, names, types)
        cls.target = bt.fitting_target(train["target"], "binary", "accuracy")
        cls.folds = bt.make_folds(cls.target, 5)

    def check_predictions(self, oof, test):
        self.assertEqual(oof.shape, (len(self.X), 2))
        self.assertEqual(test.shape, (len(self.X_test), 2))
        np.testing.assert_allclose(oof.sum(axis=1), 1.0)
        np.testing.assert_allclose(test.sum(axis=1), 1.0)
        _, accuracy, _, _ = bt.evaluate(oof[self.folds.seen], self.target, self.folds)
        self.assertGreater(accuracy, 0.7)

    def test_each_candidate_predicts_out_of_fold_and_on_test(self):
        self.check_predictions(*bt.tuned_candidate(self.X, self.X_test, self.target, self.folds))
        self.check_predictions(*bt.plain_candidate(self.both, self.names, self.target, self.folds))
        self.check_predictions(*bt.linear_candidate(self.X, self.X_test, self.target, self.folds))

    def linear(self, max_work):
        return bt.linear_candidate(self.X, self.X_test, self.target, self.folds, max_work)

    def test_the_linear_candidate_is_left_out_above_its_size_bound(self):
        # Its columns: x1's missing indicator and value, x2, the four colours one-hot, flag,
        # day's year, month, day, weekday and ordinal, note's two counts; times two classes.
        work = len(self.X) * 15 * 2
        self.linear(work)  # at the bound it runs
        with self.assertRaisesRegex(ValueError, "too large for the time budget"):
            self.linear(work - 1)
        builders = (
            ("tuned", lambda: bt.tuned_candidate(self.X, self.X_test, self.target, self.folds)),
            ("linear", lambda: self.linear(work - 1)),
        )
        candidates, printed = quietly(bt.build_candidates, builders, self.target, self.folds)
        self.assertEqual(list(candidates), ["tuned"])
        self.assertIn("candidate linear left out: ValueError('too large", printed)
        self.assertIn("out-of-fold tuned: accuracy ", printed)

    def test_a_failing_extra_candidate_is_left_out(self):
        def broken():
            raise RuntimeError("no luck")

        oof = np.zeros((len(self.X), 2))
        oof[self.folds.seen] = np.eye(2)[self.folds.truth_index]
        builders = (("tuned", lambda: (oof, None)), ("plain", broken), ("linear", lambda: (oof, 1)))
        candidates, printed = quietly(bt.build_candidates, builders, self.target, self.folds)
        self.assertEqual(list(candidates), ["tuned", "linear"])
        self.assertIn("candidate plain left out: RuntimeError('no luck')", printed)
        self.assertIn("out-of-fold linear: accuracy 1.00000", printed)

    def test_the_other_learners_predict_out_of_fold_and_on_test(self):
        X, X_test, target, folds = self.X, self.X_test, self.target, self.folds
        self.check_predictions(*bt.trees_candidate(X, X_test, target, folds))
        self.check_predictions(*bt.trees_candidate(X, X_test, target, folds, extra=True))
        self.check_predictions(*bt.knn_candidate(X, X_test, target, folds))
        self.check_predictions(*bt.linear_candidate(X, X_test, target, folds, expanded=True))
        params = {"learning_rate": 0.05, "max_leaf_nodes": 15}
        self.check_predictions(*bt.tuned_candidate(X, X_test, target, folds, params))
        args = (X, X_test, self.both, self.names, target, folds, {"learning_rate": 0.2})
        builders = bt.model_builders(list(bt.TREE_SHAPES), *args)
        self.assertEqual([label for label, _ in builders], ["tuned-small", "tuned-deep"])
        self.check_predictions(*builders[1][1]())

    def test_repeated_folds_average_their_rounds_and_say_so(self):
        train, test, types, _ = tabular(160, 4, "regression")
        names = list(types)
        both = pd.concat([train[names], test[names]], ignore_index=True)
        X, X_test = bt.feature_matrices(train, test, both, names, types)
        args = (train["target"], "regression", "rmse", X, X_test, both, names)
        once, printed_once = quietly(bt.solve_target, *args, models=["linear"])
        twice, printed = quietly(bt.solve_target, *args, models=["linear"], repeats=2)
        self.assertNotIn("round 2", printed_once)
        self.assertIn("round 2 of 2: folds shuffled by seed 1", printed)
        self.assertEqual(printed.count("out-of-fold linear: "), 2)
        self.assertEqual(twice[3].shape, once[3].shape)
        # Other folds, other out-of-fold predictions: their mean scores otherwise.
        self.assertNotEqual(twice[2].value, once[2].value)

    def test_lightgbm_is_refused_where_the_script_did_not_load_it(self):
        with self.assertRaisesRegex(ValueError, "lightgbm is not loaded"):
            bt.lightgbm_candidate(self.X, self.X_test, self.target, self.folds, modules={})

    def test_the_other_learners_refuse_above_their_bounds(self):
        X, X_test, target, folds = self.X, self.X_test, self.target, self.folds
        with self.assertRaisesRegex(ValueError, "too large for the time budget"):
            bt.trees_candidate(X, X_test, target, folds, max_work=10)
        with self.assertRaisesRegex(ValueError, "too many rows"):
            bt.knn_candidate(X, X_test, target, folds, max_rows=10)

    def test_expanded_features_add_squares_and_products(self):
        matrix = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
        out = bt.expand(matrix, [0, 2])
        np.testing.assert_allclose(out[:, 3:], [[1.0, 9.0, 3.0], [16.0, 36.0, 24.0]])
        np.testing.assert_allclose(bt.expand(matrix, []), matrix)

    def test_models_are_chosen_by_name_and_an_unknown_one_stops(self):
        args = (self.X, self.X_test, self.both, self.names, self.target, self.folds)
        builders = bt.model_builders(["knn", "tuned"], *args)
        self.assertEqual([label for label, _ in builders], ["knn", "tuned"])
        with self.assertRaisesRegex(SystemExit, "unknown models"):
            bt.model_builders(["tuned", "boosted-magic"], *args)

    def test_frequencies_are_added_beside_each_category(self):
        X, X_test = bt.with_frequencies(self.X, self.X_test)
        self.assertIn("colour_freq", X.columns)
        self.assertEqual(list(X.columns), list(X_test.columns))
        joined = pd.concat([self.X, self.X_test])["colour"].astype("string")
        self.assertEqual(X["colour_freq"].iloc[0], (joined == joined.iloc[0]).sum())

    def test_a_failing_tuned_candidate_fails_the_pipeline(self):
        def broken():
            raise RuntimeError("no luck")

        builders = (("tuned", broken), ("plain", lambda: None))
        with self.assertRaisesRegex(RuntimeError, "no luck"):
            quietly(bt.build_candidates, builders, self.target, self.folds)


class SubmissionTests(unittest.TestCase):
    def setUp(self):
        self.test = pd.DataFrame({"key": [7, 8, 9]})
        self.sample = pd.DataFrame({"key": [9, 7, 8], "y": [0, 0, 0]})

    def config(self, prediction, targets=("y",), shape="single", column_classes=None):
        return {
            "id_column": "key",
            "target_columns": list(targets),
            "prediction": prediction,
            "shape": shape,
            "column_classes": column_classes,
        }

    def frame(self, prediction, blend, target, config, sample=None):
        sample = self.sample if sample is None else sample
        columns = bt.prediction_columns(prediction, blend, target, config)
        return bt.submission_frame(columns, config, self.test, sample)

    def test_values_come_back_from_log_space_non_negative(self):
        target = bt.fitting_target(pd.Series([0.0, 1.0]), "regression", "rmsle")
        blend = bt.Blend({"tuned": 1.0}, "rmsle", 0.0, None)
        prediction = np.log1p([1.0, 3.0, -0.5])
        frame = self.frame(prediction, blend, target, self.config("value"))
        self.assertEqual(list(frame.columns), ["key", "y"])
        self.assertEqual(list(frame["key"]), [9, 7, 8])
        np.testing.assert_allclose(frame["y"], [0.0, 1.0, 3.0])

    def test_rmsle_values_are_clipped_at_zero(self):
        target = bt.fitting_target(pd.Series([-1.0, 1.0]), "regression", "rmsle")
        blend = bt.Blend({"tuned": 1.0}, "rmsle", 0.0, None)
        frame = self.frame(np.array([-2.0, 3.0, 5.0]), blend, target, self.config("value"))
        np.testing.assert_allclose(frame["y"], [5.0, 0.0, 3.0])

    def test_rmse_values_are_written_as_they_are(self):
        target = bt.fitting_target(pd.Series([-1.0, 1.0]), "regression", "rmse")
        blend = bt.Blend({"tuned": 1.0}, "rmse", 0.0, None)
        frame = self.frame(np.array([-2.0, 3.0, 5.0]), blend, target, self.config("value"))
        np.testing.assert_allclose(frame["y"], [5.0, -2.0, 3.0])

    def test_a_binary_probability_is_the_positive_class(self):
        target = classification_target(["no", "yes"], "roc_auc")
        blend = bt.Blend({"tuned": 1.0}, "roc_auc", 0.5, np.ones(2))
        prediction = np.array([[0.9, 0.1], [0.2, 0.8], [-0.1, 1.1]])
        frame = self.frame(prediction, blend, target, self.config("probability"))
        np.testing.assert_allclose(frame["y"], [1.0, 0.1, 0.8])

    def test_class_probabilities_go_to_the_columns_of_their_classes_summing_to_one(self):
        target = classification_target([1, 2, 3], "log_loss")
        blend = bt.Blend({"tuned": 1.0}, "log_loss", 0.5, np.ones(3))
        # Blends of candidates can drift from 1; the written rows sum to 1 again.
        prediction = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.8]])
        config = self.config(
            "probability", ("c_3", "c_1", "c_2"), "class-probabilities", ["3", "1", "2.0"]
        )
        sample = pd.DataFrame({"key": [9, 7, 8], "c_3": 0, "c_1": 0, "c_2": 0})
        frame = self.frame(prediction, blend, target, config, sample)
        self.assertEqual(list(frame.columns), ["key", "c_3", "c_1", "c_2"])
        np.testing.assert_allclose(frame["c_3"], [0.8 / 1.2, 0.1, 0.1])
        np.testing.assert_allclose(frame["c_1"], [0.2 / 1.2, 0.7, 0.1])
        np.testing.assert_allclose(frame[["c_3", "c_1", "c_2"]].sum(axis=1), 1.0)

    def test_a_column_of_a_class_no_training_row_has_gets_the_unseen_chance(self):
        target = classification_target([1, 2, 2], "log_loss")
        blend = bt.Blend({"tuned": 1.0}, "log_loss", 0.5, np.ones(2))
        config = self.config("probability", ("a", "b", "c"), "class-probabilities", ["1", "4", "2"])
        columns, printed = quietly(
            bt.prediction_columns, np.array([[0.25, 0.75], [1.0, 0.0]]), blend, target, config
        )
        # 3 training rows: the unseen class gets 1 / 5, the other two share 4 / 5.
        np.testing.assert_allclose(columns["b"], [0.2, 0.2])
        np.testing.assert_allclose(columns["a"], [0.2, 0.8])
        np.testing.assert_allclose(columns["c"], [0.6, 0.0])
        self.assertIn("classes ['4'] have no training row", printed)

    def test_probability_columns_of_no_training_class_stop_the_pipeline(self):
        target = classification_target([1, 2, 3], "log_loss")
        blend = bt.Blend({"tuned": 1.0}, "log_loss", 0.5, np.ones(3))
        config = self.config("probability", ("a", "b"), "class-probabilities", ["5", "4"])
        with self.assertRaisesRegex(SystemExit, r"no class \['5', '4'\]"):
            bt.prediction_columns(np.eye(3), blend, target, config)

    def test_ordinal_values_become_labels_at_the_chosen_cuts(self):
        target = bt.fitting_target(pd.Series([1, 2, 3, 2]), "ordinal", "qwk")
        blend = bt.Blend({"tuned": 1.0}, "qwk", 0.5, np.array([1.2, 2.9]))
        frame = self.frame(np.array([1.1, 1.3, 3.5]), blend, target, self.config("label"))
        self.assertEqual(list(frame["y"]), [3, 1, 2])

    def test_each_of_several_targets_writes_its_own_column(self):
        target = bt.fitting_target(pd.Series([0, 1, 1]), "binary", "roc_auc")
        blend = bt.Blend({"tuned": 1.0}, "roc_auc", 0.5, np.ones(2))
        prediction = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
        config = self.config("probability", ("a", "b"), "multi-label")
        columns = bt.prediction_columns(prediction, blend, target, config, "b")
        self.assertEqual(list(columns), ["b"])
        np.testing.assert_allclose(columns["b"], [0.1, 0.8, 0.5])

    def test_labels_follow_the_chosen_class_weights(self):
        target = classification_target(["c", "r"], "macro_f1")
        prediction = np.array([[0.7, 0.3], [0.9, 0.1], [0.6, 0.4]])
        plain = bt.Blend({"tuned": 1.0}, "macro_f1", 0.5, np.ones(2))
        adjusted = bt.Blend({"tuned": 1.0}, "macro_f1", 0.5, np.array([1.0, 3.0]))
        self.assertEqual(
            list(self.frame(prediction, plain, target, self.config("label"))["y"]), ["c", "c", "c"]
        )
        self.assertEqual(
            list(self.frame(prediction, adjusted, target, self.config("label"))["y"]),
            ["r", "r", "c"],
        )

    def test_a_sample_id_without_a_prediction_stops_the_pipeline(self):
        target = classification_target(["a", "b"])
        blend = bt.Blend({"tuned": 1.0}, "accuracy", 0.5, np.ones(2))
        sample = pd.DataFrame({"key": [7, 8, 10], "y": 0})
        with self.assertRaisesRegex(SystemExit, "1 sample ids have no prediction: is key"):
            self.frame(np.eye(2)[[0, 1, 0]], blend, target, self.config("label"), sample)


class ShapeTests(unittest.TestCase):
    def test_the_plan_has_one_target_per_column_of_several(self):
        config = {
            "shape": "multi-label",
            "target_columns": ["a", "b"],
            "targets": ["a", "b"],
            "task": "binary",
        }
        self.assertEqual(bt.target_plan(config), [("a", "a", "binary"), ("b", "b", "binary")])
        config["shape"] = "multi-target"
        self.assertEqual(bt.target_plan(config)[1], ("b", "b", "regression"))
        single = {"shape": "ordinal", "target_columns": ["r"], "targets": ["r"], "task": "x"}
        self.assertEqual(bt.target_plan(single), [(None, "r", "ordinal")])
        probabilities = {"shape": "class-probabilities", "target_columns": ["c_1", "c_2"]}
        probabilities.update(targets=["kind"], task="multiclass")
        self.assertEqual(bt.target_plan(probabilities), [(None, "kind", "multiclass")])

    def test_a_mean_over_columns_is_fitted_column_by_column(self):
        self.assertEqual(bt.column_metric("mcrmse"), "rmse")
        self.assertEqual(bt.column_metric("mean_roc_auc"), "roc_auc")
        self.assertEqual(bt.column_metric("log_loss"), "log_loss")

    def test_a_training_column_that_never_varies_is_predicted_as_it_is(self):
        self.assertEqual(bt.constant_column(pd.Series([1, 1]), "binary"), 1.0)
        self.assertEqual(bt.constant_column(pd.Series([0, 0]), "binary"), 0.0)
        self.assertEqual(bt.constant_column(pd.Series([2.5, 2.5]), "regression"), 2.5)

    def test_train_rows_without_every_target_are_dropped(self):
        with tempfile.TemporaryDirectory() as folder:
            frame = pd.DataFrame({"id": [1, 2, 3], "a": [1.0, None, 2.0], "b": [0, 1, None]})
            frame.to_csv(os.path.join(folder, "train.csv"), index=False)
            frame[["id"]].to_csv(os.path.join(folder, "test.csv"), index=False)
            frame[["id"]].to_csv(os.path.join(folder, "sample.csv"), index=False)
            config = {"train": "train.csv", "test": "test.csv", "sample_submission": "sample.csv"}
            config["targets"] = ["a", "b"]
            train, _, _ = bt.read_tables(config, folder)
        self.assertEqual(list(train["id"]), [1])


class RegressionMetricTests(unittest.TestCase):
    def setUp(self):
        random = np.random.RandomState(11)
        self.truth = np.abs(random.normal(3, 2, size=200))
        self.truth[:5] = 0.0
        self.predicted = np.abs(self.truth + random.normal(0, 1, size=200))
        self.predicted[:3] = 0.0  # both zero on three rows: no error there

    def test_r2_matches_scikit_learn(self):
        value = bt.regression_score("r2", self.predicted, self.truth)
        self.assertAlmostEqual(value, r2_score(self.truth, self.predicted), places=12)

    def test_smape_is_the_symmetric_percentage_error(self):
        p, t = self.predicted[3:], self.truth[3:]
        expected = 100 / 200 * np.sum(2 * np.abs(p - t) / (np.abs(p) + np.abs(t)))
        self.assertAlmostEqual(bt.regression_score("smape", self.predicted, self.truth), expected)

    def test_pearson_matches_scipy_and_a_constant_scores_zero(self):
        from scipy.stats import pearsonr

        value = bt.regression_score("pearson", self.predicted, self.truth)
        self.assertAlmostEqual(value, pearsonr(self.predicted, self.truth)[0], places=12)
        self.assertEqual(bt.regression_score("pearson", np.ones(200), self.truth), 0.0)

    def test_each_is_scored_in_its_direction_and_smape_fits_the_log(self):
        for metric, higher in (("r2", True), ("smape", False), ("pearson", True)):
            target = bt.fitting_target(pd.Series(self.truth), "regression", metric)
            self.assertEqual(target.log_target, metric == "smape")
            folds = all_rows_folds(target)
            fitted = np.log1p(self.predicted) if target.log_target else self.predicted
            name, value, is_higher, _ = bt.evaluate(fitted, target, folds)
            self.assertEqual((name, is_higher), (metric, higher))
            expected = bt.regression_score(metric, self.predicted, self.truth)
            self.assertAlmostEqual(value, expected, places=9)


class MapTests(unittest.TestCase):
    def test_map_at_k_scores_the_rank_of_the_truth(self):
        target = bt.fitting_target(pd.Series(["a", "b", "c", "a"]), "multiclass", "map", 2)
        predicted = np.array([[0.6, 0.3, 0.1], [0.6, 0.3, 0.1], [0.6, 0.3, 0.1], [0.1, 0.3, 0.6]])
        name, value, higher, _ = bt.evaluate(predicted, target, all_rows_folds(target))
        self.assertEqual((name, higher), ("map", True))
        # a at rank 1, b at rank 2, c not in the top 2, a not in the top 2.
        self.assertAlmostEqual(value, (1 + 0.5 + 0 + 0) / 4)

    def test_map_rows_list_the_top_labels_best_first(self):
        target = bt.fitting_target(pd.Series(["a", "b", "c"]), "multiclass", "map", 2)
        blend = bt.Blend({"tuned": 1.0}, "map", 0.5, np.ones(3))
        config = {"prediction": "label", "target_columns": ["y"], "shape": "single"}
        prediction = np.array([[0.1, 0.3, 0.6], [0.5, 0.4, 0.1]])
        columns = bt.prediction_columns(prediction, blend, target, config)
        self.assertEqual(columns["y"], ["c b", "a b"])


class KappaTests(unittest.TestCase):
    def test_kappa_matches_scikit_learn(self):
        random = np.random.RandomState(7)
        truth = random.randint(0, 5, size=300)
        guess = np.clip(truth + random.randint(-2, 3, size=300), 0, 4)
        expected = cohen_kappa_score(truth, guess, weights="quadratic")
        self.assertAlmostEqual(bt.quadratic_weighted_kappa(truth, guess, 5), expected, places=12)
        self.assertAlmostEqual(bt.quadratic_weighted_kappa(truth, truth, 5), 1.0)

    def test_the_cuts_start_at_rounding_and_only_improve_kappa(self):
        random = np.random.RandomState(8)
        labels = np.array([0.0, 1.0, 2.0, 3.0])
        truth = random.randint(0, 4, size=400)
        # A regression that shrinks towards the middle, as regressions do: rounding under-uses
        # the outer labels, and cuts moved inwards win kappa back.
        predicted = 1.5 + 0.5 * (truth - 1.5) + 0.3 * random.normal(size=400)
        rounding = bt.quadratic_weighted_kappa(
            truth, bt.ordinal_index(predicted, labels[:-1] + 0.5), 4
        )
        kappa, cuts = bt.fit_cuts(predicted, truth, labels)
        self.assertGreater(kappa, rounding + 0.01)
        self.assertTrue(np.all(np.diff(cuts) > 0))
        self.assertAlmostEqual(
            kappa, cohen_kappa_score(truth, bt.ordinal_index(predicted, cuts), weights="quadratic")
        )

    def test_an_ordinal_target_is_fitted_as_a_number_and_scored_by_kappa(self):
        target = bt.fitting_target(pd.Series([3, 1, 2, 2, 1]), "ordinal", "qwk")
        self.assertEqual(target.task, "regression")
        self.assertEqual(list(target.classes), [1, 2, 3])
        folds = all_rows_folds(target)
        name, value, higher, cuts = bt.evaluate(np.array([2.9, 1.2, 2.2, 1.8, 0.7]), target, folds)
        self.assertEqual((name, higher), ("qwk", True))
        self.assertAlmostEqual(value, 1.0)
        self.assertEqual(len(cuts), 2)

    def test_kappa_on_class_labels_scores_the_argmax(self):
        target = classification_target(["a", "b", "c", "a"], "qwk")
        predicted = np.eye(3)[[0, 1, 2, 0]]
        name, value, _, _ = bt.evaluate(predicted, target, all_rows_folds(target))
        self.assertEqual((name, value), ("qwk", 1.0))


def texts(rows, seed, classes=3):
    """Short texts whose class is told by a stem that each row spells with a suffix of its own
    (so whole words rarely repeat and character n-grams see what words do not), among filler
    words; a number that knows the class only a little. Returns (frame, labels)."""
    random = np.random.RandomState(seed)
    stems = ["garden", "engine", "violin", "harbour", "pepper"][:classes]
    filler = ["the", "a", "of", "and", "with", "some", "very", "today", "there", "we"]
    labels = random.choice(
        classes, size=rows, p=np.linspace(2, 1, classes) / np.linspace(2, 1, classes).sum()
    )
    cells = []
    for label in labels:
        words = list(random.choice(filler, size=6))
        suffix = "".join(random.choice(list("xyzqwk"), size=3))
        words.insert(random.randint(0, 6), stems[label] + suffix)
        if random.rand() < 0.3:  # a second, misleading stem
            words.append(stems[random.randint(classes)] + "s")
        cells.append(" ".join(words))
    frame = pd.DataFrame(
        {
            "id": np.arange(rows),
            "review": cells,
            "stars": labels + random.normal(scale=2.0, size=rows),
        }
    )
    return frame, np.array([f"c{label}" for label in labels])


class TextTests(unittest.TestCase):
    def test_text_columns_are_the_analysed_free_text(self):
        types = {"a": "text", "b": "categorical", "c": "text"}
        self.assertEqual(bt.text_columns(["a", "b", "c", "d"], types), ["a", "c"])
        self.assertTrue(bt.only_text(["a", "c"], types))
        self.assertFalse(bt.only_text(["a", "b"], types))
        self.assertFalse(bt.only_text([], types))

    def test_cells_are_cut_to_the_budget_but_not_below_the_floor(self):
        self.assertEqual(bt.cell_limit(100, 1), bt.TEXT_MAX_CELL_CHARS)
        self.assertEqual(bt.cell_limit(bt.TEXT_BUDGET_CHARS // 1000, 2), 500)
        self.assertEqual(bt.cell_limit(10**7, 1), bt.TEXT_MIN_CELL_CHARS)

    def test_the_matrix_has_words_and_characters_of_each_column(self):
        both = pd.DataFrame(
            {
                "t": ["red apple pie", "red apple", "green pear", None, "pear pie"],
                "u": ["x y", "x y", "x z", "y z", "x x"],
            }
        )
        from sklearn.feature_extraction.text import TfidfVectorizer

        matrix = bt.text_matrix(both, ["t", "u"])
        self.assertEqual(matrix.shape[0], 5)
        # Terms in at least two cells: words and word pairs, then character 2-5 grams.
        words_t = TfidfVectorizer(ngram_range=(1, 2), min_df=2).fit(both["t"].fillna(""))
        self.assertEqual(sorted(words_t.vocabulary_), ["apple", "pear", "pie", "red", "red apple"])
        self.assertGreater(matrix.shape[1], 20)
        # Each row of each analyser is unit length (l2), the missing cell all zeros in `t`.
        self.assertTrue(np.all(np.isfinite(matrix.toarray())))
        self.assertAlmostEqual(float(matrix[0, :5].multiply(matrix[0, :5]).sum()), 1.0, places=6)
        self.assertEqual(matrix[3, :5].nnz, 0)

    def test_the_vocabulary_is_capped(self):
        both = pd.DataFrame({"t": [f"w{i} w{i + 1} common" for i in range(400)]})
        saved = bt.TEXT_MAX_FEATURES
        try:
            bt.TEXT_MAX_FEATURES = 50
            matrix = bt.text_matrix(both, ["t"])
        finally:
            bt.TEXT_MAX_FEATURES = saved
        self.assertEqual(matrix.shape, (400, 100))  # 50 words and pairs, 50 character grams

    def test_text_without_terms_and_too_many_rows_are_refused(self):
        with self.assertRaisesRegex(ValueError, "no terms in the text columns"):
            bt.text_matrix(pd.DataFrame({"t": ["", None, ""]}), ["t"])
        rows = bt.TEXT_MAX_ROWS + 1
        with self.assertRaisesRegex(
            ValueError, f"too many rows for the text features \\({rows}\\)"
        ):
            bt.text_matrix(pd.DataFrame({"t": ["a b"] * rows}), ["t"])
        # At the bound the features are built (the cells are short).
        self.assertEqual(
            bt.text_matrix(
                pd.DataFrame({"t": ["ab cd", "ab ef"] * (bt.TEXT_MAX_ROWS // 2)}), ["t"]
            ).shape[0],
            bt.TEXT_MAX_ROWS,
        )
        matrix, printed = quietly(bt.text_features, pd.DataFrame({"t": ["", ""]}), ["t"])
        self.assertIsNone(matrix)
        self.assertIn("text features left out: no terms", printed)
        self.assertIsNone(bt.text_features(pd.DataFrame({"t": ["a"]}), []))

    def fitted(self, labels, task, metric, rows=300, **kwargs):
        frame, _ = texts(rows + 100, 11)
        matrix = bt.text_matrix(frame, ["review"])
        target = bt.fitting_target(pd.Series(labels[:rows]), task, metric)
        folds = bt.make_folds(target, 5)
        oof, test = bt.text_candidate(matrix, target, folds, **kwargs)
        return target, folds, oof, test

    def test_the_text_candidate_classifies_from_character_grams(self):
        _, labels = texts(400, 11)
        target, folds, oof, test = self.fitted(labels, "multiclass", "accuracy")
        self.assertEqual(oof.shape, (300, 3))
        self.assertEqual(test.shape, (100, 3))
        np.testing.assert_allclose(oof.sum(axis=1), 1.0)
        _, accuracy, _, _ = bt.evaluate(oof[folds.seen], target, folds)
        self.assertGreater(accuracy, 0.85)
        right = np.mean(target.classes[test.argmax(axis=1)] == labels[300:])
        self.assertGreater(right, 0.85)

    def test_the_text_candidate_gives_binary_probabilities_and_values(self):
        _, labels = texts(400, 11)
        binary = np.where(labels == "c0", "yes", "no")
        target, folds, oof, _ = self.fitted(binary, "binary", "roc_auc")
        self.assertEqual(oof.shape, (300, 2))
        _, auc, _, _ = bt.evaluate(oof[folds.seen], target, folds)
        self.assertGreater(auc, 0.9)
        values = np.array([{"c0": 1.0, "c1": 5.0, "c2": 9.0}[v] for v in labels])
        target, folds, oof, test = self.fitted(values, "regression", "rmse")
        self.assertEqual((oof.shape, test.shape), ((300,), (100,)))
        _, rmse, _, _ = bt.evaluate(oof[folds.seen], target, folds)
        self.assertLess(rmse, 0.6 * values[:300].std())

    def test_each_fold_fits_at_most_the_row_bound(self):
        _, labels = texts(400, 11)
        sizes = []
        real = bt.cross_fit

        def spy(fit, data, test_data, target, folds):
            def counting(rows, y):
                model = fit(rows, y)
                sizes.append(int(model.t_ / model.max_iter) if hasattr(model, "t_") else None)
                return model

            return real(counting, data, test_data, target, folds)

        bt.cross_fit = spy
        try:
            self.fitted(labels, "multiclass", "accuracy", max_fit_rows=100)
        finally:
            bt.cross_fit = real
        # SGD's t_ counts the samples it saw, epochs times the rows, plus one.
        self.assertEqual(len(sizes), 6)
        self.assertTrue(all(size == 100 for size in sizes), sizes)

    def test_stacking_is_built_only_when_the_text_pays(self):
        target = classification_target(["a", "b"] * 20)
        folds = all_rows_folds(target)
        perfect = np.eye(2)[folds.truth_index]
        constant = bt.constant_prediction(target, 40)
        np.testing.assert_allclose(constant, 0.5)
        half = 0.5 * perfect + 0.5 * constant  # still right on every row
        noisy = np.roll(perfect, 1, axis=0)  # wrong on every row
        self.assertTrue(
            bt.stacking_pays({"tuned": (perfect, None), "text": (half, None)}, target, folds)
        )
        self.assertFalse(
            bt.stacking_pays({"tuned": (perfect, None), "text": (noisy, None)}, target, folds)
        )
        self.assertFalse(
            bt.stacking_pays({"tuned": (perfect, None), "text": (constant, None)}, target, folds)
        )
        values = bt.fitting_target(pd.Series(np.arange(40.0)), "regression", "rmse")
        self.assertEqual(bt.constant_prediction(values, 3).tolist(), [19.5] * 3)

    def test_the_stacked_candidate_sees_the_text_models_predictions(self):
        frame, labels = texts(400, 12)
        train, test = (
            frame.iloc[:300].reset_index(drop=True),
            frame.iloc[300:].reset_index(drop=True),
        )
        names, types = ["review", "stars"], {"review": "text", "stars": "float"}
        both = pd.concat([train[names], test[names]], ignore_index=True)
        X, X_test = bt.feature_matrices(train, test, both, names, types)
        target = bt.fitting_target(pd.Series(labels[:300]), "multiclass", "accuracy")
        folds = bt.make_folds(target, 5)
        text = bt.text_candidate(bt.text_matrix(both, ["review"]), target, folds)
        oof, test_prediction = bt.stacked_candidate(X, X_test, text, target, folds)
        self.assertEqual((oof.shape, test_prediction.shape), ((300, 3), (100, 3)))
        _, stacked, _, _ = bt.evaluate(oof[folds.seen], target, folds)
        _, alone, _, _ = bt.evaluate(
            bt.tuned_candidate(X, X_test, target, folds)[0][folds.seen], target, folds
        )
        self.assertGreater(stacked, alone + 0.2)


def run_text(frame, labels, metric, cut=300):
    """`main` on a text competition of `frame` (the first `cut` rows to train on): (submission,
    printed, test labels by the submission's ids)."""
    train = frame.iloc[:cut].assign(label=labels[:cut])
    test = frame.iloc[cut:].reset_index(drop=True)
    features = [c for c in frame.columns if c != "id"]
    types = {"review": "text", "stars": "float"}
    with tempfile.TemporaryDirectory() as folder:
        train.to_csv(os.path.join(folder, "train.csv"), index=False)
        test.to_csv(os.path.join(folder, "test.csv"), index=False)
        pd.DataFrame({"id": test["id"], "label": "c0"}).to_csv(
            os.path.join(folder, "sample_submission.csv"), index=False
        )
        config = {
            "train": "train.csv",
            "test": "test.csv",
            "sample_submission": "sample_submission.csv",
            "id_column": "id",
            "shape": "single",
            "targets": ["label"],
            "target_columns": ["label"],
            "task": "multiclass",
            "prediction": "label",
            "metric": metric,
            "features": features,
            "types": {name: types[name] for name in features},
        }
        _, printed = quietly(bt.main, config, input_dir=folder, output_dir=folder)
        submission = pd.read_csv(os.path.join(folder, "submission.csv"))
    truth = pd.Series(labels[cut:], index=test["id"]).loc[submission["id"]]
    return submission, printed, truth


class TextPipelineTests(unittest.TestCase):
    def test_a_text_only_competition_is_led_by_the_text_model(self):
        frame, labels = texts(400, 13)
        submission, printed, truth = run_text(frame.drop(columns=["stars"]), labels, "macro_f1")
        self.assertIn("text features: ", printed)
        self.assertIn("out-of-fold text: macro_f1 ", printed)
        self.assertIn("out-of-fold linear: macro_f1 ", printed)
        self.assertNotIn("out-of-fold tuned", printed)
        self.assertNotIn("stacked", printed)
        name, value = printed_validation(printed)
        self.assertEqual(name, "macro_f1")
        self.assertGreater(value, 0.85)
        self.assertGreater(f1_score(truth, submission["label"], average="macro"), 0.85)

    def test_text_and_numbers_blend_every_candidate(self):
        frame, labels = texts(400, 14)
        submission, printed, truth = run_text(frame, labels, "accuracy")
        for label in ("tuned", "plain", "linear", "text", "stacked"):
            self.assertIn(f"out-of-fold {label}: accuracy ", printed)
        self.assertGreater(printed_validation(printed)[1], 0.85)
        self.assertGreater(np.mean(submission["label"].to_numpy() == truth.to_numpy()), 0.85)


def shaped(rows, seed, shape):
    """A data set of several targets, or an ordinal one, from the same signals as `tabular`:
    (train, test, types, answers, target columns)."""
    train, test, types, answers = tabular(rows, seed, "regression")
    random = np.random.RandomState(seed)
    full = pd.concat([train.drop(columns=["target"]), test], ignore_index=True)
    signal = 1.5 * full["x1"].fillna(0) + full["x2"] + (full["colour"] == "red") * 1.2
    noise = lambda: 0.3 * random.normal(size=len(full))  # noqa: E731 - a short local helper
    if shape == "multi-target":
        values = {
            "t1": signal + noise(),
            "t2": 10 - 2 * full["x2"] + noise(),
            "t3": np.exp(signal / 3),
        }
    elif shape == "multi-label":
        values = {
            "red": ((full["colour"] == "red") ^ (random.rand(len(full)) < 0.1)).astype(int),
            "big": (signal + noise() > 0.5).astype(int),
            "rare": (signal + noise() > 2.0).astype(int),
        }
    else:
        values = {"rating": np.digitize(signal + noise(), [-1.5, 0.0, 1.5])}
    cut = len(train)
    for name, column in values.items():
        train[name] = np.asarray(column)[:cut]
        answers[name] = np.asarray(column)[cut:]
    return train.drop(columns=["target"]), test, types, answers, list(values)


def run_shaped(shape, metric, prediction, seed=0, rows=240):
    train, test, types, answers, targets = shaped(rows, seed, shape)
    with tempfile.TemporaryDirectory() as folder:
        train.to_csv(os.path.join(folder, "train.csv"), index=False)
        test.to_csv(os.path.join(folder, "test.csv"), index=False)
        sample = pd.DataFrame({"id": test["id"][::-1].to_numpy()})
        for column in targets:
            sample[column] = 0
        sample.to_csv(os.path.join(folder, "sample_submission.csv"), index=False)
        config = {
            "train": "train.csv",
            "test": "test.csv",
            "sample_submission": "sample_submission.csv",
            "id_column": "id",
            "shape": shape,
            "targets": targets,
            "target_columns": targets,
            "column_classes": None,
            "task": {"multi-target": "regression", "multi-label": "binary"}.get(
                shape, "multiclass"
            ),
            "prediction": prediction,
            "metric": metric,
            "features": list(types),
            "types": types,
        }
        _, printed = quietly(bt.main, config, input_dir=folder, output_dir=folder)
        submission = pd.read_csv(os.path.join(folder, "submission.csv"))
    truth = answers.set_index("id").loc[submission["id"]]
    return submission, printed, truth, targets


class PipelineTests(unittest.TestCase):
    """`main` end to end on every task, prediction kind and metric path."""

    def check(self, printed, metric, folds=5):
        name, value = printed_validation(printed)
        self.assertEqual(name, metric)
        self.assertIn(f" over {folds} hold-outs (", printed)
        for label in ("tuned", "plain", "linear"):
            self.assertIn(f"out-of-fold {label}: {metric} ", printed)
        self.assertTrue(printed.rstrip().endswith("rows"), printed)
        return value

    def test_a_variant_runs_its_own_learners_encoding_and_parameters(self):
        extra = {
            "models": ["tuned", "extra", "forest"],
            "encoding": "frequency",
            "params": {"learning_rate": 0.05, "max_leaf_nodes": 15},
        }
        submission, printed, answers = run_main("regression", "rmse", "value", seed=4, extra=extra)
        for label in ("tuned", "extra", "forest"):
            self.assertIn(f"out-of-fold {label}: rmse ", printed)
        self.assertNotIn("out-of-fold plain", printed)
        self.assertLess(printed_validation(printed)[1], answers["target"].std())
        self.assertEqual(len(submission), len(answers))

    def test_binary_probabilities_by_roc_auc(self):
        submission, printed, answers = run_main("binary", "roc_auc", "probability")
        value = self.check(printed, "roc_auc")
        self.assertGreater(value, 0.85)
        # The ids exactly as the sample spells them.
        self.assertEqual(list(submission["id"]), list(answers["id"][::-1]))
        self.assertTrue(submission["target"].between(0, 1).all())
        truth = answers.set_index("id").loc[submission["id"], "target"] == "yes"
        self.assertGreater(roc_auc_score(truth, submission["target"]), 0.85)

    def test_binary_probabilities_by_log_loss(self):
        submission, printed, answers = run_main("binary", "log_loss", "probability", seed=1)
        value = self.check(printed, "log_loss")
        self.assertLess(value, 0.5)
        truth = answers.set_index("id").loc[submission["id"], "target"] == "yes"
        self.assertLess(log_loss(truth, submission["target"].clip(1e-15, 1 - 1e-15)), 0.5)

    def test_multiclass_labels_by_accuracy(self):
        submission, printed, answers = run_main("multiclass", "accuracy", "label", seed=2)
        self.assertGreater(self.check(printed, "accuracy"), 0.5)
        self.assertLessEqual(set(submission["target"]), {"Fair", "Good", "Ideal", "Premium"})
        truth = answers.set_index("id").loc[submission["id"], "target"].to_numpy()
        self.assertGreater(np.mean(truth == submission["target"].to_numpy()), 0.5)

    def test_multiclass_labels_by_macro_f1(self):
        submission, printed, answers = run_main("multiclass", "macro_f1", "label", seed=3)
        self.assertGreater(self.check(printed, "macro_f1"), 0.4)
        truth = answers.set_index("id").loc[submission["id"], "target"]
        self.assertGreater(f1_score(truth, submission["target"], average="macro"), 0.4)

    def test_regression_by_rmse(self):
        submission, printed, answers = run_main("regression", "rmse", "value", seed=4)
        spread = answers["target"].std()
        self.assertLess(self.check(printed, "rmse"), spread)
        truth = answers.set_index("id").loc[submission["id"], "target"].to_numpy()
        self.assertLess(np.sqrt(np.mean((submission["target"] - truth) ** 2)), spread)

    def test_regression_by_rmsle_fits_the_log(self):
        submission, printed, answers = run_main("regression", "rmsle", "value", seed=5)
        self.assertLess(self.check(printed, "rmsle"), 0.5)
        self.assertTrue((submission["target"] >= 0).all())
        truth = answers.set_index("id").loc[submission["id"], "target"].to_numpy()
        error = np.log1p(submission["target"].to_numpy()) - np.log1p(truth)
        self.assertLess(np.sqrt(np.mean(error**2)), 0.5)

    def test_regression_by_mae(self):
        submission, printed, answers = run_main("regression", "mae", "value", seed=6)
        spread = (answers["target"] - answers["target"].median()).abs().mean()
        self.assertLess(self.check(printed, "mae"), spread)
        truth = answers.set_index("id").loc[submission["id"], "target"].to_numpy()
        self.assertLess(np.mean(np.abs(submission["target"] - truth)), spread)

    def test_several_targets_get_a_model_each_by_mcrmse(self):
        submission, printed, truth, targets = run_shaped("multi-target", "mcrmse", "value", seed=7)
        name, value = printed_validation(printed)
        self.assertEqual(name, "mcrmse")
        self.assertIn("(mean of 3 columns)", printed)
        for column in targets:
            self.assertIn(f"target {column}: rmse ", printed)
            self.assertGreater(submission[column].nunique(), 10)
            error = np.sqrt(
                np.mean((submission[column].to_numpy() - truth[column].to_numpy()) ** 2)
            )
            self.assertLess(error, truth[column].std(), column)
        self.assertLess(value, np.mean([truth[c].std() for c in targets]))

    def test_several_labels_get_a_probability_each_by_mean_roc_auc(self):
        submission, printed, truth, targets = run_shaped(
            "multi-label", "mean_roc_auc", "probability"
        )
        name, value = printed_validation(printed)
        self.assertEqual(name, "mean_roc_auc")
        self.assertGreater(value, 0.8)
        for column in targets:
            self.assertTrue(submission[column].between(0, 1).all())
            self.assertGreater(roc_auc_score(truth[column], submission[column]), 0.75, column)

    def test_ordinal_labels_by_kappa_from_a_regression_and_cuts(self):
        submission, printed, truth, _ = run_shaped("ordinal", "qwk", "label", seed=9)
        name, value = printed_validation(printed)
        self.assertEqual(name, "qwk")
        self.assertGreater(value, 0.6)
        self.assertLessEqual(set(submission["rating"]), {0, 1, 2, 3})
        kappa = cohen_kappa_score(truth["rating"], submission["rating"], weights="quadratic")
        self.assertGreater(kappa, 0.6)


def write_shapes(folder, names, kinds, seed, size=12, colour=False):
    """One PNG per name under `folder`: a bright horizontal bar (kind "h") or vertical bar
    (kind "v") on a noisy dark ground, in colour or grey."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for name, kind in zip(names, kinds, strict=True):
        pixels = rng.integers(0, 60, size=(size, size)).astype(np.uint8)
        at = int(rng.integers(2, size - 2))
        if kind == "h":
            pixels[at, :] = 230
        else:
            pixels[:, at] = 230
        image = Image.fromarray(pixels, "L")
        if colour:
            image = Image.merge("RGB", (image, image.point(lambda v: v // 2), image))
        image.save(os.path.join(folder, name))


class ImageTests(unittest.TestCase):
    def test_a_picture_becomes_its_pixels_statistics_histogram_and_size(self):
        from PIL import Image

        with tempfile.TemporaryDirectory() as folder:
            white = os.path.join(folder, "white.png")
            Image.new("L", (20, 10), 255).save(white)
            half = os.path.join(folder, "half.png")
            Image.fromarray(np.repeat([[0, 255]], 4, axis=0).astype(np.uint8), "L").resize(
                (8, 8), Image.NEAREST
            ).save(half)
            matrix, failed = bt.image_features([white, half], 4, False)
        names = bt.image_feature_names(4, False)
        self.assertEqual(failed, 0)
        self.assertEqual(matrix.shape, (2, len(names)))
        self.assertEqual(matrix.dtype, np.float32)
        row = dict(zip(names, matrix[0], strict=True))
        self.assertTrue(np.allclose(matrix[0, :16], 1.0))
        self.assertEqual((row["grey_mean"], row["grey_std"]), (1.0, 0.0))
        self.assertEqual(row[f"grey_hist_{bt.HISTOGRAM_BINS - 1}"], 1.0)
        self.assertEqual((row["image_width"], row["image_height"]), (20.0, 10.0))
        row = dict(zip(names, matrix[1], strict=True))
        self.assertAlmostEqual(float(row["grey_mean"]), 0.5, places=3)
        self.assertEqual(
            (row["grey_hist_0"], row[f"grey_hist_{bt.HISTOGRAM_BINS - 1}"]), (0.5, 0.5)
        )

    def test_the_side_never_enlarges_and_colour_is_what_the_pixels_show(self):
        from PIL import Image

        with tempfile.TemporaryDirectory() as folder:
            grey_rgb = os.path.join(folder, "grey.png")
            Image.new("RGB", (40, 30), (90, 90, 90)).save(grey_rgb)
            small = os.path.join(folder, "small.png")
            Image.new("L", (6, 9), 10).save(small)
            red = os.path.join(folder, "red.png")
            Image.new("RGB", (30, 30), (200, 0, 0)).save(red)
            self.assertEqual(bt.image_geometry([grey_rgb]), (bt.IMAGE_SIDE, False))
            self.assertEqual(bt.image_geometry([grey_rgb, small]), (6, False))
            self.assertEqual(bt.image_geometry([grey_rgb, red]), (bt.IMAGE_SIDE, True))
            matrix, _ = bt.image_features([red], 4, True)
        names = bt.image_feature_names(4, True)
        row = dict(zip(names, matrix[0], strict=True))
        self.assertAlmostEqual(float(row["r_mean"]), 200 / 255, places=4)
        self.assertEqual((row["g_mean"], row["b_std"]), (0.0, 0.0))
        self.assertEqual(len(names), 16 + 3 * bt.COLOUR_SIDE**2 + 2 + 6 + bt.HISTOGRAM_BINS + 2)

    def test_an_unreadable_or_missing_picture_gets_missing_values_and_is_counted(self):
        with tempfile.TemporaryDirectory() as folder:
            broken = os.path.join(folder, "broken.png")
            with open(broken, "wb") as file:
                file.write(b"\x89PNG not really")
            matrix, failed = bt.image_features([broken, os.path.join(folder, "gone.png")], 4, False)
        self.assertEqual(failed, 2)
        self.assertTrue(np.isnan(matrix).all())

    def run_images(self, colour=False, cap=None):
        """The whole pipeline on bar pictures named by id stems, with no test table (the test
        rows are the sample submission's). Returns (submission, printed, answers)."""
        rng = np.random.default_rng(4)
        kinds = rng.choice(["h", "v"], size=160)
        # Zero-padded numbers: read as numbers they would name no file.
        ids = [f"{i:04d}" for i in range(160)]
        labels = ["horizontal" if k == "h" else "vertical" for k in kinds]
        with tempfile.TemporaryDirectory() as folder:
            write_shapes(
                f"{folder}/train", [f"{i}.png" for i in ids[:120]], kinds[:120], 1, colour=colour
            )
            write_shapes(
                f"{folder}/test", [f"{i}.png" for i in ids[120:]], kinds[120:], 2, colour=colour
            )
            pd.DataFrame({"id": ids[:120], "label": labels[:120]}).to_csv(
                f"{folder}/train.csv", index=False
            )
            pd.DataFrame({"id": ids[120:][::-1], "label": "vertical"}).to_csv(
                f"{folder}/sample_submission.csv", index=False
            )
            role = {"column": "id", "suffix": ".png"}
            config = {
                "train": "train.csv",
                "test": "sample_submission.csv",
                "sample_submission": "sample_submission.csv",
                "id_column": "id",
                "shape": "single",
                "targets": ["label"],
                "target_columns": ["label"],
                "task": "binary",
                "prediction": "label",
                "metric": "accuracy",
                "features": [],
                "types": {},
                "images": {
                    "train": {**role, "folder": "train"},
                    "test": {**role, "folder": "test"},
                },
            }
            saved = bt.MAX_TRAIN_IMAGES
            bt.MAX_TRAIN_IMAGES = cap or saved
            try:
                _, printed = quietly(bt.main, config, input_dir=folder, output_dir=folder)
            finally:
                bt.MAX_TRAIN_IMAGES = saved
            submission = pd.read_csv(f"{folder}/submission.csv", dtype={"id": str})
        answers = pd.DataFrame({"id": ids[120:], "label": labels[120:]})
        return submission, printed, answers

    def test_pictures_named_by_id_without_a_test_table_are_predicted_from_their_pixels(self):
        # One run (the guest is slow): colour pictures, and fewer training rows allowed than
        # there are, so the cap is taken too.
        submission, printed, answers = self.run_images(colour=True, cap=100)
        self.assertEqual(list(submission.columns), ["id", "label"])
        # The ids exactly as the sample spells them.
        self.assertEqual(list(submission["id"]), list(answers["id"][::-1]))
        merged = submission.merge(answers, on="id", suffixes=("", "_true"))
        accuracy = (merged["label"] == merged["label_true"]).mean()
        self.assertGreater(accuracy, 0.9)
        self.assertIn("images: 100 of 120 training rows used (a seeded sample)", printed)
        self.assertIn("images: 100 training and 40 to predict, 12x12 grey and colour,", printed)


class JoinTests(unittest.TestCase):
    """Side tables joined onto train and test by key, in their row order."""

    def test_a_lookup_joins_as_it_is_and_one_to_many_as_aggregates(self):
        train = pd.DataFrame({"id": [1, 2, 3], "store": ["s1", "s2", "s1"], "y": [0, 1, 1]})
        test = pd.DataFrame({"id": [4, 5], "store": ["s2", "s9"]})
        with tempfile.TemporaryDirectory() as folder:
            pd.DataFrame({"store": ["s1", "s2"], "size": [10, 20]}).to_csv(
                os.path.join(folder, "stores.csv"), index=False
            )
            pd.DataFrame({"id": [1, 1, 4, 3], "minutes": [3, 5, 7, None]}).to_csv(
                os.path.join(folder, "visits.csv"), index=False
            )
            joins = [
                {
                    "tables": ["stores.csv"],
                    "key": "store",
                    "kind": "lookup",
                    "columns": {"size": "store_size"},
                },
                {
                    "tables": ["visits.csv"],
                    "key": "id",
                    "kind": "aggregate",
                    "columns": {"minutes": "visits_minutes"},
                    "count": "visits_count",
                },
            ]
            (train, test), printed = quietly(bt.join_side_tables, (train, test), joins, folder)
        self.assertIn("joined visits.csv on id (aggregate)", printed)
        self.assertEqual(list(train["id"]), [1, 2, 3])
        self.assertEqual(list(train["store_size"]), [10, 20, 10])
        self.assertEqual(list(train["visits_minutes_mean"].fillna(-1)), [4.0, -1, -1])
        self.assertEqual(list(train["visits_minutes_max"].fillna(-1)), [5.0, -1, -1])
        self.assertEqual(list(train["visits_count"]), [2, 0, 1])
        self.assertEqual(list(test["store_size"].fillna(-1)), [20, -1])
        self.assertEqual(list(test["visits_count"]), [1, 0])

    def test_the_pipeline_learns_from_a_joined_side_table(self):
        random = np.random.RandomState(12)
        rows = 240
        ids = np.arange(rows) + 100
        signal = random.normal(size=rows)
        noise = random.normal(size=rows)
        target = 3 * signal + 0.1 * random.normal(size=rows)
        cut = rows * 3 // 4
        with tempfile.TemporaryDirectory() as folder:
            pd.DataFrame({"id": ids[:cut], "noise": noise[:cut], "target": target[:cut]}).to_csv(
                os.path.join(folder, "train.csv"), index=False
            )
            pd.DataFrame({"id": ids[cut:], "noise": noise[cut:]}).to_csv(
                os.path.join(folder, "test.csv"), index=False
            )
            pd.DataFrame({"id": ids[cut:], "target": 0.0}).to_csv(
                os.path.join(folder, "sample_submission.csv"), index=False
            )
            # The side table in another row order than the tables it joins.
            pd.DataFrame({"id": ids[::-1], "signal": signal[::-1]}).to_csv(
                os.path.join(folder, "details.csv"), index=False
            )
            config = {
                "train": "train.csv",
                "test": "test.csv",
                "sample_submission": "sample_submission.csv",
                "id_column": "id",
                "shape": "single",
                "targets": ["target"],
                "target_columns": ["target"],
                "task": "regression",
                "prediction": "value",
                "metric": "rmse",
                "features": ["noise", "signal"],
                "types": {"noise": "float", "signal": "float"},
                "joins": [
                    {
                        "tables": ["details.csv"],
                        "key": "id",
                        "kind": "lookup",
                        "columns": {"signal": "signal"},
                    }
                ],
            }
            _, printed = quietly(bt.main, config, input_dir=folder, output_dir=folder)
            submission = pd.read_csv(os.path.join(folder, "submission.csv"))
        self.assertIn("joined details.csv on id (lookup)", printed)
        self.assertEqual(list(submission["id"]), list(ids[cut:]))
        error = np.sqrt(np.mean((submission["target"].to_numpy() - target[cut:]) ** 2))
        self.assertLess(error, 0.2 * target.std())


if __name__ == "__main__":
    # The guest harness runs this file in a namespace of its own, not as sys.modules["__main__"]
    # (where unittest.main looks), so the suite is built from this namespace's test cases.
    cases = [
        value
        for value in list(globals().values())
        if isinstance(value, type) and issubclass(value, unittest.TestCase)
    ]
    loader = unittest.defaultTestLoader
    suite = unittest.TestSuite(loader.loadTestsFromTestCase(case) for case in cases)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    sys.exit(0 if result.wasSuccessful() else 1)
