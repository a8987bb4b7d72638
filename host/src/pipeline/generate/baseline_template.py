# Baseline pipeline written by kaggle-solver's built-in generator.
#
# CONFIG above was filled in from the competition's analysis, and `main(CONFIG)` at the end runs
# the pipeline: read the tables from /input, turn dates and text into numbers, and build three
# candidate models on the same cross-validation folds, each giving out-of-fold predictions and
# test predictions:
#
# - "tuned": HistGradientBoosting with native categories, one model per fold early-stopped on
#   its own fold, refit on all the rows with the folds' mean best iteration count, the fold
#   models blended with the refit;
# - "plain": scikit-learn's default HistGradientBoosting on category codes, the simple
#   reference a baseline must not lose to;
# - "linear": a logistic or ridge regression on standardised numbers and one-hot categories,
#   which small or nearly linear problems favour.
#
# Columns of free text also get TF-IDF features (word 1-2 grams and character 2-5 grams, capped)
# into a linear model, the "text" candidate; with other columns beside the text, the tuned model
# is also refit with the text model's out-of-fold predictions as columns ("stacked") when the
# text carries enough of the signal. A table of nothing but text is led by the text model.
#
# CONFIG["models"] may name another set of learners (the first listed is required, the others are
# left out if they fail): "tuned", "plain" and "linear" above, "forest" and "extra" (random
# forests and extra trees on the dense encoding), "knn" (nearest neighbours on it), "expanded"
# (the linear model on squares and pairwise products of the strongest numbers too), and
# "lightgbm" (only where the Docker image runs the script). CONFIG["params"] changes the tuned
# model's hyper-parameters and CONFIG["encoding"] = "frequency" adds each category's frequency.
# The search of kaggle-solver asks for these variants by candidate number and keeps the one the
# host scores best on rows it held back.
#
# The blend weights (a grid in steps of a quarter, a single candidate included) and, for macro
# F1, the class-prior adjustment are chosen by the competition's own metric on the out-of-fold
# predictions, respecting its direction. The predictions are written in the sample submission's
# exact format to /output/submission.csv.
#
# The submission's shape (CONFIG["shape"]) says how the targets map to its columns: one target
# for one column ("single"), one per class ("class-probabilities": each row sums to 1), one
# model per column for several targets ("multi-target") or several 0/1 labels ("multi-label"),
# or ordered labels scored by kappa ("ordinal": a regression, then the cut points between
# labels that kappa rewards, chosen out of fold).
#
# Side tables (CONFIG["joins"]) are joined onto train and test on their shared key first: a
# lookup (at most one side row per row) as it is, a one-to-many table as per-key aggregates.
#
# Every function takes what it needs as arguments, so each step can be run and tested alone.
import math
import sys
import time
import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import KFold, StratifiedKFold

LEARNING_RATE = 0.1
PATIENCE = 20
# Above this many category levels a column gets frequency and code columns instead of native
# categories.
MAX_CATEGORIES = 250
# The linear candidate's cost bound in rows x columns x classes: lbfgs time grows with it, and
# at this size it takes about as long as the boosting already does.
LINEAR_MAX_WORK = 30_000_000


class Target(NamedTuple):
    """The training target as the models fit it."""

    task: str  # "binary", "multiclass" or "regression" (an ordinal target is fitted as one)
    metric: str  # the metric for this target, e.g. "rmsle" ("rmse" for one column of MCRMSE)
    y_fit: pd.Series  # the values the models fit: log1p of the target for a log target
    log_target: bool  # regression fitted in log space (an RMSLE metric, no negative target)
    classes: np.ndarray | None  # the class labels in order (ordinal: the labels); else None
    position: dict | None  # class label -> its index in `classes`; None for regression
    map_k: int = 1  # how many labels a MAP@k row lists


class Folds(NamedTuple):
    """The cross-validation folds and the out-of-fold truth they are scored against."""

    splits: list  # (fit rows, validation rows) per fold
    seen: np.ndarray  # rows validated by some fold (a class seen once never is)
    truth: np.ndarray  # the fitting target at the `seen` rows
    truth_index: np.ndarray | None  # their class positions; None for regression


class Blend(NamedTuple):
    """The chosen mix of candidates and its out-of-fold score."""

    mix: dict  # candidate label -> its weight, the candidates with a positive weight in order
    metric: str  # the metric's name as scored, e.g. "rmsle" for a log-target RMSE
    value: float
    # The class-prior adjustment of `decide`, or for kappa the cut points between the ordered
    # labels; None for a regression.
    class_weights: np.ndarray | None


def read_tables(config, input_dir="/input"):
    """The train, test and sample submission tables; train rows without every target dropped.
    Columns that name pictures are read as text, so `0007` stays the file `0007.png`."""
    names = dict.fromkeys([r["column"] for r in (config.get("images") or {}).values()], str)
    train = pd.read_csv(f"{input_dir}/{config['train']}", dtype=names or None)
    test = pd.read_csv(f"{input_dir}/{config['test']}", dtype=names or None)
    sample = pd.read_csv(f"{input_dir}/{config['sample_submission']}", dtype=names or None)
    train = train[train[config["targets"]].notna().all(axis=1)].reset_index(drop=True)
    return train, test, sample


def side_part(side, join):
    """The columns `join` adds, one row per key value (as text), from the side table `side`."""
    key, columns = join["key"], join["columns"]
    keys = side[key].astype(str)
    if join["kind"] == "lookup":
        part = side[list(columns)].rename(columns=columns)
        part.index = keys
        return part[~part.index.duplicated(keep="first")]
    grouped = side[list(columns)].apply(pd.to_numeric, errors="coerce").groupby(keys)
    parts = {}
    for column, name in columns.items():
        for stat in ("mean", "min", "max"):
            parts[f"{name}_{stat}"] = grouped[column].agg(stat)
    parts[join["count"]] = keys.value_counts()
    return pd.DataFrame(parts)


def join_side_tables(frames, joins, input_dir="/input"):
    """`frames` (train and test) with the columns of each side table in `joins` added by key,
    in their row order; a row without a side row gets missing values (a count of 0)."""
    frames = list(frames)
    for join in joins:
        side = pd.concat(
            [pd.read_csv(f"{input_dir}/{path}") for path in join["tables"]], ignore_index=True
        )
        part = side_part(side, join)
        for i, frame in enumerate(frames):
            if join["key"] not in frame:
                continue
            added = part.reindex(frame[join["key"]].astype(str).to_numpy())
            added.index = frame.index
            if join["kind"] != "lookup":
                added[join["count"]] = added[join["count"]].fillna(0)
            frames[i] = pd.concat([frame, added], axis=1)
        print(f"joined {', '.join(join['tables'])} on {join['key']} ({join['kind']})")
    return frames


# The metric one column is scored by, for a metric that averages over the columns.
COLUMN_METRICS = {"mcrmse": "rmse", "mean_roc_auc": "roc_auc"}
# The name of a mean over the columns, by the columns' metric.
MEAN_METRICS = {"rmse": "mcrmse", "roc_auc": "mean_roc_auc"}


def column_metric(metric):
    """The metric each target is fitted and scored by: one column's part of a mean."""
    return COLUMN_METRICS.get(metric, metric)


def target_plan(config):
    """[(submission column or None, training column, task)] of each target the models fit:
    one per column for several targets or labels, else one (None: the shape's own columns)."""
    shape = config.get("shape", "single")
    if shape in ("multi-target", "multi-label"):
        task = "regression" if shape == "multi-target" else "binary"
        return [
            (column, train_column, task)
            for column, train_column in zip(
                config["target_columns"], config["targets"], strict=True
            )
        ]
    task = "ordinal" if shape == "ordinal" else config["task"]
    return [(None, config["targets"][0], task)]


def features(frame, reference, names, types):
    """Numeric and categorical columns HistGradientBoosting can take, built the same way for
    train and test (`reference` holds both, so categories agree). `types` maps a column to its
    analysed type; a column it does not name is taken as categorical."""
    out = pd.DataFrame(index=frame.index)
    for name in names:
        kind = types.get(name, "categorical")
        column = frame[name]
        if kind in ("integer", "float"):
            out[name] = pd.to_numeric(column, errors="coerce")
        elif kind == "boolean":
            out[name] = column.astype(str).str.lower().map({"true": 1.0, "false": 0.0})
        elif kind == "datetime":
            when = pd.to_datetime(column, errors="coerce")
            # The parts that vary over train and test together, so both get the same columns.
            span = pd.to_datetime(reference[name], errors="coerce")
            for part in ("year", "month", "day", "day_of_week", "hour"):
                if getattr(span.dt, part).nunique(dropna=True) > 1:
                    out[f"{name}_{part}"] = getattr(when.dt, part).astype(float)
            out[f"{name}_ordinal"] = (when - pd.Timestamp("1970-01-01")).dt.days.astype(float)
        elif kind == "text":
            text = column.fillna("").astype(str)
            out[f"{name}_chars"] = text.str.len().astype(float)
            out[f"{name}_words"] = text.str.split().str.len().astype(float)
        else:
            text = column.astype("string")
            counts = reference[name].astype("string").value_counts()
            if len(counts) <= MAX_CATEGORIES:
                categories = sorted(counts.index)
                out[name] = pd.Categorical(text, categories=categories)
            else:
                # Too many levels for native categories: frequency and a stable code.
                out[f"{name}_freq"] = text.map(counts).astype(float)
                codes = {value: i for i, value in enumerate(sorted(counts.index))}
                out[f"{name}_code"] = text.map(codes).astype(float)
    return out


def feature_matrices(train, test, both, names, types):
    """The features of train and test, without the columns that are constant over train."""
    X = features(train, both, names, types)
    X_test = features(test, both, names, types)
    constant = [c for c in X.columns if X[c].nunique(dropna=False) <= 1]
    return X.drop(columns=constant), X_test.drop(columns=constant)


def with_frequencies(X, X_test):
    """X and X_test with each categorical column's frequency (over both) beside it."""
    joined = pd.concat([X, X_test], ignore_index=True)
    X, X_test = X.copy(), X_test.copy()
    for name in joined.columns:
        if isinstance(joined[name].dtype, pd.CategoricalDtype):
            counts = joined[name].astype("string").value_counts()
            X[f"{name}_freq"] = X[name].astype("string").map(counts).astype(float).to_numpy()
            X_test[f"{name}_freq"] = (
                X_test[name].astype("string").map(counts).astype(float).to_numpy()
            )
    return X, X_test


def fitting_target(y, task, metric, map_k=1):
    """The target in the space the models fit: numbers for regression (log1p'd for an RMSLE
    metric when no value is negative), the labels as they are for classification."""
    if task == "ordinal":
        # Fitted as a number, decided by cut points between the ordered labels.
        classes = np.array(sorted(y.unique()))
        values = pd.to_numeric(y, errors="coerce").astype(float)
        return Target("regression", metric, values, False, classes, None)
    if task == "regression":
        y = pd.to_numeric(y, errors="coerce").astype(float)
        # RMSLE is an RMSE of logs; SMAPE weighs relative errors, which logs make additive.
        log_target = bool(metric in ("rmsle", "smape") and (y >= 0).all())
        return Target(task, metric, np.log1p(y) if log_target else y, log_target, None, None)
    try:  # numeric labels in numeric order (2 < 10), others as text
        classes = np.array(sorted(y.unique()))
    except TypeError:
        classes = np.array(sorted(y.unique(), key=lambda v: str(v)))
    position = {c: i for i, c in enumerate(classes)}
    return Target(task, metric, y, False, classes, position, map_k)


# Above this many training rows a target is large data: 3 folds, and the fast plan below.
LARGE_ROWS = 30_000


def fold_count(rows):
    return 5 if rows <= LARGE_ROWS else 3


# The cost rule. HistGradientBoosting grows one tree per class at every iteration, so a fit's
# work grows with rows x columns x classes, and the pipeline's with that times its fits (folds
# plus a refit, per candidate). Above this many classes the default learner ("plain": a fixed
# 100 iterations, no early stopping below 10,000 rows) costs 100 trees per class per fit and
# overfits each class's few rows, while the tuned learner is the same model stopped early on
# each fold: the default one is left out.
MANY_CLASSES = 8
# Above this much work (rows x columns x trees per iteration) every candidate gets 3 folds
# instead of 5: each fold is one more fit of each of them.
FOLD_MAX_WORK = 1_000_000
# Large data (above LARGE_ROWS rows) is fitted fast: early stopping lets the tuned learner run
# for hundreds of iterations on each fold and its refit there, so it learns at twice the rate,
# and it is fitted alone, the default and linear learners left out (on the two 40k-row local
# competitions they added nothing on the test rows: README's cost section has the figures).
LARGE_LEARNING_RATE = 0.2
LARGE_LEFT_OUT = ("plain", "linear")


class CostPlan(NamedTuple):
    """How much fitting one target gets, from the size of its data."""

    work: int  # rows x columns x trees per boosting iteration
    folds: int
    models: list  # the learners to build, in order
    left_out: list  # (learner, why) of those the rule took out
    params: dict  # the tuned learner's hyper-parameters the rule sets (CONFIG["params"] wins)


def trees_per_iteration(target):
    """The trees HistGradientBoosting grows at each iteration: one per class above two."""
    if target.task == "regression" or len(target.classes) <= 2:
        return 1
    return len(target.classes)


def cost_plan(rows, columns, target, models):
    """The folds and learners for a target of `rows` x `columns`: fewer folds for a large
    work estimate, no default learner for many classes, the fast plan for large data. The
    first learner (the required one) always stays."""
    trees = trees_per_iteration(target)
    work = rows * max(columns, 1) * trees
    folds = fold_count(rows) if work <= FOLD_MAX_WORK else min(fold_count(rows), 3)
    large = rows > LARGE_ROWS
    kept, left_out = [], []
    for position, model in enumerate(models):
        if position > 0 and large and model in LARGE_LEFT_OUT:
            left_out.append((model, f"{rows:,} rows: large data"))
        elif position > 0 and model == "plain" and trees >= MANY_CLASSES:
            left_out.append((model, f"{trees} classes: 100 fixed iterations of {trees} trees"))
        elif position > 0 and model in TREE_SHAPES and (large or trees >= MANY_CLASSES):
            left_out.append((model, "another boosting of the tuned learner's cost"))
        else:
            kept.append(model)
    params = {"learning_rate": LARGE_LEARNING_RATE} if large else {}
    return CostPlan(work, folds, kept, left_out, params)


# The tuned model's hyper-parameters unless CONFIG["params"] says otherwise.
DEFAULT_PARAMS = {
    "learning_rate": LEARNING_RATE,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 20,
    "l2_regularization": 1.0,
}
# The tuned learner again with other trees (for the search's larger ensembles): small trees
# that need more rows per leaf less, and deep ones with more rows per leaf and no penalty.
TREE_SHAPES = {
    "tuned-small": {"learning_rate": 0.05, "max_leaf_nodes": 15, "min_samples_leaf": 10},
    "tuned-deep": {"max_leaf_nodes": 63, "min_samples_leaf": 40, "l2_regularization": 0.0},
}
# The forests' and nearest neighbours' cost bound in rows x columns (per tree, per fold).
TREES_MAX_WORK = 20_000_000
KNN_MAX_ROWS = 20_000


def make_model(target, seed, max_iter=2000, early_stopping=True, params=None):
    chosen = {**DEFAULT_PARAMS, **(params or {})}
    common = dict(
        learning_rate=chosen["learning_rate"],
        max_iter=max_iter,
        max_leaf_nodes=chosen["max_leaf_nodes"],
        min_samples_leaf=chosen["min_samples_leaf"],
        l2_regularization=chosen["l2_regularization"],
        categorical_features="from_dtype",
        early_stopping=early_stopping,
        n_iter_no_change=PATIENCE,
        random_state=seed,
    )
    if target.task == "regression":
        loss = "absolute_error" if target.metric == "mae" else "squared_error"
        return HistGradientBoostingRegressor(loss=loss, **common)
    # The log loss is scale-free, so a fixed tolerance stops folds that separate perfectly
    # instead of letting them creep on for thousands of iterations.
    return HistGradientBoostingClassifier(tol=1e-4, **common)


def predict(model, data, target):
    """Regression values, or one probability column per class of `target.classes` (a fold
    model may have seen fewer classes)."""
    if target.task == "regression":
        return model.predict(data)
    full = np.zeros((data.shape[0], len(target.classes)))
    full[:, [target.position[c] for c in model.classes_]] = model.predict_proba(data)
    return full


def fold_indices(target, folds, seed=0):
    """(fit rows, validation rows) per fold, shuffled by `seed`. Rows of a class seen only once
    always stay in the fitting part, so no fold validates on a label its model has never
    seen."""
    y_fit = target.y_fit
    rows = np.arange(len(y_fit))
    if target.task == "regression":
        return list(KFold(folds, shuffle=True, random_state=seed).split(rows))
    counts = y_fit.map(y_fit.value_counts())
    common = rows[(counts >= 2).to_numpy()]
    rare = rows[(counts < 2).to_numpy()]
    labels = np.asarray(y_fit)[common]
    # Stratified even when a class has fewer rows than folds (scikit-learn only warns then):
    # each of its rows lands in a different fold, so every fitting part still holds the class.
    kind = StratifiedKFold if pd.Series(labels).value_counts().max() >= folds else KFold
    splitter = kind(folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pairs = list(splitter.split(common, labels))
    return [(np.concatenate([common[a], rare]), common[b]) for a, b in pairs]


def make_folds(target, folds, seed=0):
    splits = fold_indices(target, folds, seed)
    seen = np.zeros(len(target.y_fit), dtype=bool)
    for _, val_rows in splits:
        seen[val_rows] = True
    truth = np.asarray(target.y_fit)[seen]
    truth_index = None
    if target.task != "regression":
        truth_index = np.array([target.position[c] for c in truth])
    return Folds(splits, seen, truth, truth_index)


def take(data, rows):
    """The `rows` of a frame or an array."""
    return data.iloc[rows] if hasattr(data, "iloc") else data[rows]


def cross_fit(fit, data, test_data, target, folds):
    """Out-of-fold predictions of `fit(rows data, targets)` and its test predictions, fitted
    once more on every row."""
    y_fit = np.asarray(target.y_fit)
    oof = None
    for fit_rows, val_rows in folds.splits:
        model = fit(take(data, fit_rows), y_fit[fit_rows])
        val = predict(model, take(data, val_rows), target)
        if oof is None:
            oof = np.zeros((len(y_fit),) + val.shape[1:])
        oof[val_rows] = val
    return oof, predict(fit(data, y_fit), test_data, target)


def tuned_candidate(X, X_test, target, folds, params=None):
    """One early-stopped model per fold; a refit on every row for the folds' mean best
    iteration count, scaled up for the extra data, blended half and half with the folds."""
    y_fit = target.y_fit
    k = len(folds.splits)
    oof, tests, best_iterations = None, [], []
    for seed, (fit_rows, val_rows) in enumerate(folds.splits):
        model = make_model(target, seed, params=params)
        model.fit(
            X.iloc[fit_rows],
            y_fit.iloc[fit_rows],
            X_val=X.iloc[val_rows],
            y_val=y_fit.iloc[val_rows],
        )
        stopped = model.n_iter_ < model.max_iter
        best_iterations.append(max(1, model.n_iter_ - (PATIENCE if stopped else 0)))
        val = predict(model, X.iloc[val_rows], target)
        if oof is None:
            oof = np.zeros((len(X),) + val.shape[1:])
        oof[val_rows] = val
        tests.append(predict(model, X_test, target))
    refit_iterations = max(10, int(round(np.mean(best_iterations) * k / (k - 1))))
    refit = make_model(target, k, max_iter=refit_iterations, early_stopping=False, params=params)
    refit.fit(X, y_fit)
    return oof, 0.5 * np.mean(tests, axis=0) + 0.5 * predict(refit, X_test, target)


def plain_candidate(both, names, target, folds):
    """scikit-learn's defaults on the simple encoding: numbers as they are, every other column
    category codes over train and test together (missing stays missing). `both` holds the
    train rows, then the test rows."""
    n = len(target.y_fit)
    columns = []
    for name in names:
        column = both[name]
        if column.iloc[:n].nunique(dropna=False) <= 1:  # constant or empty: nothing to learn
            continue
        if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
            columns.append(column.astype(float).to_numpy())
        else:
            codes = column.astype("category").cat.codes.to_numpy().astype(float)
            codes[codes < 0] = np.nan
            columns.append(codes)
    matrix = np.column_stack(columns) if columns else np.zeros((len(both), 1))
    kind = (
        HistGradientBoostingRegressor
        if target.task == "regression"
        else HistGradientBoostingClassifier
    )

    def fit(data, y):
        try:
            return kind(random_state=0).fit(data, y)
        except ValueError:  # a class too rare for the automatic early-stopping split
            return kind(random_state=0, early_stopping=False).fit(data, y)

    return cross_fit(fit, matrix[:n], matrix[n:], target, folds)


def dense_matrix(X, X_test):
    """Train and test as one dense float matrix: numbers standardised and clipped (missing ->
    median plus an indicator), the frequent levels of each category one-hot. Also returns the
    numeric columns' positions, for expansions."""
    n = len(X)
    joined = pd.concat([X, X_test], ignore_index=True)
    parts, numeric = [], []
    for name in joined.columns:
        column = joined[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            counts = column.iloc[:n].value_counts()
            frequent = list(counts[counts >= 5].index[:30])
            if column.isna().sum() >= 5:
                parts.append(column.isna().to_numpy(dtype=float)[:, None])
            for level in frequent:
                parts.append((column == level).to_numpy(dtype=float)[:, None])
        else:
            values = column.astype(float).replace([np.inf, -np.inf], np.nan)
            missing = values.isna()
            if missing.all():
                continue
            if missing.any():
                parts.append(missing.to_numpy(dtype=float)[:, None])
                values = values.fillna(values.median())
            spread = values.std()
            values = ((values - values.mean()) / (spread if spread > 0 else 1.0)).clip(-5, 5)
            numeric.append(len(parts))
            parts.append(values.to_numpy()[:, None])
    if not parts:
        raise ValueError("no columns")
    return np.hstack(parts), numeric


def expand(matrix, numeric, most=8):
    """`matrix` with the squares and pairwise products of its first `most` numeric columns."""
    chosen = numeric[:most]
    extra = [matrix[:, i : i + 1] ** 2 for i in chosen]
    extra += [
        matrix[:, i : i + 1] * matrix[:, j : j + 1]
        for a, i in enumerate(chosen)
        for j in chosen[a + 1 :]
    ]
    return np.hstack([matrix, *extra]) if extra else matrix


def linear_candidate(X, X_test, target, folds, max_work=LINEAR_MAX_WORK, expanded=False):
    """Logistic or ridge regression on the dense encoding (with squares and products of the
    numbers when `expanded`). Refuses (ValueError) when its rows x columns x classes exceed
    `max_work`."""
    from sklearn.linear_model import LogisticRegression, Ridge

    n = len(X)
    matrix, numeric = dense_matrix(X, X_test)
    if expanded:
        matrix = expand(matrix, numeric)
    regression = target.task == "regression"
    work = n * matrix.shape[1] * (1 if regression else len(target.classes))
    if work > max_work:
        raise ValueError(f"too large for the time budget ({n} rows x {matrix.shape[1]} columns)")

    def fit(data, y):
        if regression:
            return Ridge(alpha=1.0).fit(data, y)
        return LogisticRegression(C=1.0, max_iter=300).fit(data, y)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings: the fit is still usable
        return cross_fit(fit, matrix[:n], matrix[n:], target, folds)


def trees_candidate(X, X_test, target, folds, extra=False, max_work=TREES_MAX_WORK):
    """A random forest (or extra trees) of 100 trees on the dense encoding. Refuses
    (ValueError) when its rows x columns exceed `max_work`."""
    from sklearn import ensemble

    n = len(X)
    matrix, _ = dense_matrix(X, X_test)
    if n * matrix.shape[1] > max_work:
        raise ValueError(f"too large for the time budget ({n} rows x {matrix.shape[1]} columns)")
    name = ("ExtraTrees" if extra else "RandomForest") + (
        "Regressor" if target.task == "regression" else "Classifier"
    )
    kind = getattr(ensemble, name)

    def fit(data, y):
        return kind(n_estimators=100, min_samples_leaf=2, max_features=0.5, random_state=0).fit(
            data, y
        )

    return cross_fit(fit, matrix[:n], matrix[n:], target, folds)


def knn_candidate(X, X_test, target, folds, max_rows=KNN_MAX_ROWS):
    """Distance-weighted nearest neighbours on the dense encoding. Refuses (ValueError) above
    `max_rows` training rows."""
    from sklearn import neighbors

    n = len(X)
    if n > max_rows:
        raise ValueError(f"too many rows for nearest neighbours ({n})")
    matrix, _ = dense_matrix(X, X_test)
    regression = target.task == "regression"
    kind = neighbors.KNeighborsRegressor if regression else neighbors.KNeighborsClassifier
    k = max(1, min(15, int(math.sqrt(n) / 2)))

    def fit(data, y):
        return kind(n_neighbors=min(k, len(data)), weights="distance").fit(data, y)

    return cross_fit(fit, matrix[:n], matrix[n:], target, folds)


def lightgbm_candidate(X, X_test, target, folds, modules=None):
    """LightGBM with native categories, out of fold and refit (the Docker image only). Taken
    from the loaded modules (`modules`, default `sys.modules`): a script that uses it imports it
    at its top, which routes the script to Docker, and the others must not look as if they
    needed it."""
    lightgbm = (sys.modules if modules is None else modules).get("lightgbm")
    if lightgbm is None:
        raise ValueError("lightgbm is not loaded: the script must import it (Docker has it)")

    regression = target.task == "regression"
    kind = lightgbm.LGBMRegressor if regression else lightgbm.LGBMClassifier
    common = dict(
        n_estimators=400,
        learning_rate=0.05,
        num_leaves=31,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        random_state=0,
        verbose=-1,
    )

    def fit(data, y):
        return kind(**common).fit(data, y)

    return cross_fit(fit, X, X_test, target, folds)


# Free text: per text column, TF-IDF of word 1-2 grams and of character 2-5 grams (taken inside
# word boundaries), sublinear term counts, terms seen in at least two cells, fitted on the train
# and test cells together (no label is used), into a linear model.
TEXT_MIN_DF = 2
# The vocabulary of each column and analyser keeps its most frequent terms up to this many.
TEXT_MAX_FEATURES = 50_000
# Characters of one cell kept: the cells' characters over all text columns stay within the
# budget (the vectorisers' time and the matrix's memory grow with them), but no cell is cut
# below the floor.
TEXT_MAX_CELL_CHARS = 3_000
TEXT_MIN_CELL_CHARS = 200
TEXT_BUDGET_CHARS = 16_000_000
# Above this many train and test rows the text candidate is left out: at the floor the budget
# no longer holds, and at this many rows of 200 characters the features and the cross-fitted
# model already peak at about 1.6 GB (measured natively).
TEXT_MAX_ROWS = 100_000
# Each fold's text model fits at most this many rows (a seeded sample of its fitting rows).
TEXT_MAX_FIT_ROWS = 60_000
# The tuned model is stacked on the text model only when the text carries at least this share
# of the best other candidate's out-of-fold gain over a constant prediction: else the trees gain
# little from it, and stacking costs as much as the tuned model again.
STACK_MIN_SHARE = 0.25
# Stochastic gradient descent on the log loss (one-vs-rest, probabilities normalised): on TF-IDF
# it scores as well as lbfgs logistic regression, several times faster.
TEXT_ALPHA = 1e-5
TEXT_EPOCHS = 20


def text_columns(names, types):
    """The feature columns the analysis found to be free text."""
    return [name for name in names if types.get(name) == "text"]


def cell_limit(rows, columns):
    """Characters kept of each text cell for `rows` rows of `columns` text columns."""
    share = TEXT_BUDGET_CHARS // max(1, rows * columns)
    return int(min(TEXT_MAX_CELL_CHARS, max(TEXT_MIN_CELL_CHARS, share)))


def text_matrix(both, texts):
    """The TF-IDF features of the `texts` columns of `both` (train rows, then test rows) as one
    sparse matrix. Refuses (ValueError) above TEXT_MAX_ROWS rows or when no column has terms."""
    import scipy.sparse
    from sklearn.feature_extraction.text import TfidfVectorizer

    if len(both) > TEXT_MAX_ROWS:
        raise ValueError(f"too many rows for the text features ({len(both)})")
    limit = cell_limit(len(both), len(texts))
    common = dict(
        sublinear_tf=True, min_df=TEXT_MIN_DF, max_features=TEXT_MAX_FEATURES, dtype=np.float64
    )
    parts = []
    for name in texts:
        cells = both[name].fillna("").astype(str).str.slice(0, limit).tolist()
        for options in (
            dict(analyzer="word", ngram_range=(1, 2)),
            dict(analyzer="char_wb", ngram_range=(2, 5)),
        ):
            try:
                parts.append(TfidfVectorizer(**options, **common).fit_transform(cells))
            except ValueError:  # no term in two cells: nothing to learn from this analyser
                continue
    if not parts:
        raise ValueError(f"no terms in the text columns {texts}")
    return scipy.sparse.hstack(parts).tocsr()


def text_candidate(matrix, target, folds, max_fit_rows=TEXT_MAX_FIT_ROWS):
    """The linear model on the text features (`matrix`: train rows, then test rows): ridge
    regression for values, stochastic-gradient logistic regression for classes."""
    from sklearn.linear_model import Ridge, SGDClassifier

    n = len(target.y_fit)

    def fit(data, y):
        if len(y) > max_fit_rows:
            rows = np.sort(np.random.RandomState(0).choice(len(y), max_fit_rows, replace=False))
            data, y = data[rows], y[rows]
        if target.task == "regression":
            return Ridge(alpha=1.0).fit(data, y)
        model = SGDClassifier(
            loss="log_loss", alpha=TEXT_ALPHA, max_iter=TEXT_EPOCHS, tol=None, random_state=0
        )
        return model.fit(data, y)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings: a fixed number of epochs
        return cross_fit(fit, matrix[:n], matrix[n:], target, folds)


def stacked_candidate(X, X_test, text, target, folds, params=None):
    """The tuned model with the text model's predictions (`text`: out of fold, test) as extra
    columns: one per class but the last, or the value, so trees can combine the text's evidence
    with the other columns."""
    oof, test = text
    if oof.ndim == 1:
        oof, test = oof[:, None], test[:, None]
    elif oof.shape[1] > 1:
        oof, test = oof[:, :-1], test[:, :-1]
    names = [f"text_model_{i}" for i in range(oof.shape[1])]
    X = pd.concat([X.reset_index(drop=True), pd.DataFrame(oof, columns=names)], axis=1)
    X_test = pd.concat([X_test.reset_index(drop=True), pd.DataFrame(test, columns=names)], axis=1)
    return tuned_candidate(X, X_test, target, folds, params)


def only_text(names, types):
    """Whether every feature column is free text."""
    return bool(names) and len(text_columns(names, types)) == len(names)


def text_builder(matrix, target, folds):
    """(label, build) of the text candidate."""
    return ("text", lambda: text_candidate(matrix, target, folds))


def constant_prediction(target, rows):
    """The prediction that knows nothing: the mean (regression) or the class shares, per row."""
    y = np.asarray(target.y_fit)
    if target.task == "regression":
        return np.full(rows, float(np.mean(y)))
    share = np.array([np.mean(y == c) for c in target.classes])
    return np.tile(share, (rows, 1))


def stacking_pays(candidates, target, folds, min_share=STACK_MIN_SHARE):
    """Whether the text model's out-of-fold gain over a constant prediction is positive and at
    least `min_share` of the best other candidate's: only then can trees gain from it."""
    _, base, higher, _ = evaluate(constant_prediction(target, int(folds.seen.sum())), target, folds)

    def gain(label):
        _, value, _, _ = evaluate(candidates[label][0][folds.seen], target, folds)
        return value - base if higher else base - value

    text = gain("text")
    best_other = max((gain(label) for label in candidates if label != "text"), default=0.0)
    return text > 0 and text >= min_share * best_other


def decide(probabilities, weights):
    return (probabilities * weights).argmax(axis=1)


def macro_f1(true_index, predicted_index, k):
    """scikit-learn's macro F1 over `k` classes: the classes present in the truth or the
    predictions."""
    confusion = np.bincount(true_index * k + predicted_index, minlength=k * k).reshape(k, k)
    denominator = confusion.sum(axis=0) + confusion.sum(axis=1)
    present = denominator > 0
    return float(np.mean(2 * np.diag(confusion)[present] / denominator[present]))


def positive_f1(true_index, predicted_index):
    """scikit-learn's binary F1 of the positive class, the second of the sorted classes (1 of
    0/1, True of False); 0 when neither the truth nor the predictions hold a positive."""
    tp = int(np.sum((predicted_index == 1) & (true_index == 1)))
    wrong = int(np.sum(predicted_index != true_index))
    return 2 * tp / (2 * tp + wrong) if tp else 0.0


def quadratic_weighted_kappa(true_index, predicted_index, k):
    """scikit-learn's cohen_kappa_score(weights="quadratic") over the `k` ordered labels: one
    minus the weighted disagreement over the disagreement expected by chance."""
    confusion = np.bincount(true_index * k + predicted_index, minlength=k * k).reshape(k, k)
    i = np.arange(k)
    weights = (i[:, None] - i[None, :]) ** 2
    expected = np.outer(confusion.sum(axis=1), confusion.sum(axis=0)) / confusion.sum()
    chance = float((weights * expected).sum())
    return 1.0 - float((weights * confusion).sum()) / chance if chance > 0 else 0.0


def ordinal_index(values, cuts):
    """The label index of each value: how many cut points lie below it."""
    return np.searchsorted(cuts, values)


def fit_cuts(predicted, true_index, labels, steps=16, passes=2):
    """Cut points between the ordered numeric `labels` that maximise kappa on `predicted`:
    from the midpoints (plain rounding), each cut in turn moved over a grid between its
    labels, kept only where kappa rises. Returns (kappa, cuts)."""
    k = len(labels)
    cuts = (labels[:-1] + labels[1:]) / 2
    best = quadratic_weighted_kappa(true_index, ordinal_index(predicted, cuts), k)
    for _ in range(passes):
        for j in range(k - 1):
            low = cuts[j - 1] if j > 0 else -np.inf
            high = cuts[j + 1] if j < k - 2 else np.inf
            for value in np.linspace(labels[j], labels[j + 1], steps + 1)[1:-1]:
                if not low < value < high:
                    continue
                trial = cuts.copy()
                trial[j] = value
                kappa = quadratic_weighted_kappa(true_index, ordinal_index(predicted, trial), k)
                if kappa > best + 1e-12:
                    best, cuts = kappa, trial
    return best, cuts


def regression_score(metric, predicted, truth):
    """R² (scikit-learn's r2_score), SMAPE in percent (a row where both are 0 counts as no
    error, as Kaggle scores it) or Pearson's r (0 for a constant prediction)."""
    if metric == "r2":
        spread = np.sum((truth - np.mean(truth)) ** 2)
        return float(1.0 - np.sum((truth - predicted) ** 2) / spread) if spread > 0 else 0.0
    if metric == "smape":
        scale = np.abs(predicted) + np.abs(truth)
        ratio = np.where(
            scale > 0, 2 * np.abs(predicted - truth) / np.where(scale > 0, scale, 1), 0
        )
        return float(100 * np.mean(ratio))
    if np.std(predicted) == 0 or np.std(truth) == 0:
        return 0.0
    return float(np.corrcoef(predicted, truth)[0, 1])


def top_labels(probabilities, k):
    """Each row's `k` most probable class indices, most probable first."""
    k = min(k, probabilities.shape[1])
    return np.argsort(-probabilities, axis=1, kind="stable")[:, :k]


def mean_average_precision(true_index, probabilities, k):
    """MAP@k with one true label per row: 1/rank of the truth among the row's top k, else 0."""
    top = top_labels(probabilities, k)
    hits = top == true_index[:, None]
    rank = np.argmax(hits, axis=1) + 1
    return float(np.mean(np.where(hits.any(axis=1), 1.0 / rank, 0.0)))


def evaluate(predicted, target, folds):
    """(metric name, value, higher is better, class weights) of out-of-fold predictions (rows in
    `folds.seen`, in the fitting space: log1p for a log target). For macro F1 the class weights
    divide the probabilities by the class shares to a power chosen here (0 = plain argmax,
    1 = fully balanced), so the adjustment is only used when it helps out of fold."""
    metric, truth = target.metric, folds.truth
    if target.task == "regression" and metric == "qwk":
        labels = target.classes.astype(float)
        true_index = np.searchsorted(labels, truth)
        kappa, cuts = fit_cuts(predicted, true_index, labels)
        return "qwk", kappa, True, cuts
    if target.task == "regression" and metric in ("r2", "smape", "pearson"):
        back = np.expm1 if target.log_target else (lambda v: v)
        return (
            metric,
            regression_score(metric, back(predicted), back(truth)),
            metric != "smape",
            None,
        )
    if target.task == "regression":
        if metric == "mae":
            return "mae", float(np.mean(np.abs(predicted - truth))), False, None
        if metric == "rmsle" and not target.log_target:
            error = np.log1p(np.clip(predicted, 0, None)) - np.log1p(np.clip(truth, 0, None))
            return "rmsle", math.sqrt(np.mean(error**2)), False, None
        name = "rmsle" if target.log_target else "rmse"
        return name, math.sqrt(np.mean((predicted - truth) ** 2)), False, None
    truth_index, k = folds.truth_index, len(target.classes)
    ones = np.ones(k)
    if metric == "log_loss":
        chosen = predicted[np.arange(len(truth_index)), truth_index]
        return "log_loss", float(-np.mean(np.log(np.clip(chosen, 1e-15, 1.0)))), False, ones
    if metric == "roc_auc" and k == 2:
        from sklearn.metrics import roc_auc_score

        return "roc_auc", float(roc_auc_score(truth_index == 1, predicted[:, 1])), True, ones
    if metric == "f1" and k == 2:
        # The threshold that F1 rewards is rarely 0.5: weigh the positive class up or down and
        # keep the weight that scores best out of fold (1 = plain argmax, kept on ties).
        best = None
        for weight in (1.0, 0.5, 0.75, 1.5, 2.0, 3.0, 4.0):
            weights = np.array([1.0, weight])
            value = positive_f1(truth_index, decide(predicted, weights))
            if best is None or value > best[0] + 1e-12:
                best = (value, weights)
        return "f1", best[0], True, best[1]
    if metric in ("macro_f1", "f1"):
        # Kaggle's plain "F1" on more than two classes names no average: read as macro.
        share = np.bincount(truth_index, minlength=k) / len(truth_index)
        share = np.clip(share, 1e-6, None)
        best = None
        for power in (0.0, 0.25, 0.5, 0.75, 1.0):
            weights = share**-power
            value = macro_f1(truth_index, decide(predicted, weights), k)
            if best is None or value > best[0] + 1e-12:
                best = (value, weights)
        return "macro_f1", best[0], True, best[1]
    if metric == "map":
        return "map", mean_average_precision(truth_index, predicted, target.map_k), True, ones
    if metric == "qwk":
        kappa = quadratic_weighted_kappa(truth_index, decide(predicted, ones), k)
        return "qwk", kappa, True, ones
    return "accuracy", float(np.mean(decide(predicted, ones) == truth_index)), True, ones


def blend_grid(count, steps=4):
    """Every weight vector over `count` candidates in steps of 1/steps that sums to 1, the first
    candidate's weight highest first (so ties go to it)."""

    def parts(count, left):
        if count == 1:
            yield (left,)
            return
        for first in range(left, -1, -1):
            for rest in parts(count - 1, left - first):
                yield (first,) + rest

    for combo in parts(count, steps):
        yield tuple(part / steps for part in combo)


def build_candidates(builders, target, folds, required="tuned"):
    """{label: (out-of-fold predictions, test predictions)} of each `(label, build)` pair, in
    order, printing each one's out-of-fold score and time. A failing candidate is left out,
    except the `required` one, whose failure is the pipeline's."""
    candidates = {}
    for label, build in builders:
        started = time.monotonic()
        try:
            candidates[label] = build()
        except Exception as error:  # noqa: BLE001 - a failing extra candidate is only left out
            if label == required:
                raise
            print(f"candidate {label} left out: {error!r}")
            continue
        name, value, _, _ = evaluate(candidates[label][0][folds.seen], target, folds)
        print(f"out-of-fold {label}: {name} {value:.5f} in {time.monotonic() - started:.1f} s")
    return candidates


# Above this many candidates the blend is chosen greedily: the grid would be too large.
GRID_MAX_CANDIDATES = 4
# Rounds of the greedy choice: each adds one twentieth of weight.
GREEDY_ROUNDS = 20


def choose_blend(candidates, target, folds):
    """The blend of `candidates` with the best out-of-fold score: over the grid of weights in
    quarters for a few candidates (ties go to the first candidate's larger weight), greedily
    for more."""
    if len(candidates) > GRID_MAX_CANDIDATES:
        return greedy_blend(candidates, target, folds)
    labels = list(candidates)
    best = None
    for weights in blend_grid(len(labels)):
        mix = {k: w for w, k in zip(weights, labels, strict=True) if w > 0}
        mixed = sum(w * candidates[k][0][folds.seen] for k, w in mix.items())
        name, value, higher, class_weights = evaluate(mixed, target, folds)
        key = value if higher else -value
        if best is None or key > best[0] + 1e-12:
            best = (key, Blend(mix, name, value, class_weights))
    return best[1]


def greedy_blend(candidates, target, folds, rounds=GREEDY_ROUNDS):
    """Ensemble selection (Caruana et al., 2004): starting from nothing, each round adds the
    candidate (again, if it is the best choice) whose addition to the equal-weight mean of those
    picked scores best out of fold; the best mix over the rounds is kept, weights the share of
    rounds each candidate was picked in. Ties go to the earlier candidate."""
    labels = list(candidates)
    oof = {k: candidates[k][0][folds.seen] for k in labels}
    counts, total, best = dict.fromkeys(labels, 0), None, None
    for picked in range(1, rounds + 1):
        round_best = None
        for k in labels:
            mixed = oof[k] if total is None else (total + oof[k]) / picked
            name, value, higher, class_weights = evaluate(mixed, target, folds)
            key = value if higher else -value
            if round_best is None or key > round_best[0] + 1e-12:
                round_best = (key, k, Blend({}, name, value, class_weights))
        key, chosen, scored = round_best
        total = oof[chosen] if total is None else total + oof[chosen]
        counts[chosen] += 1
        if best is None or key > best[0] + 1e-12:
            mix = {k: c / picked for k, c in counts.items() if c}
            best = (key, scored._replace(mix=mix))
    return best[1]


def blended_test_prediction(candidates, blend):
    return sum(w * candidates[k][1] for k, w in blend.mix.items())


def class_index(classes, name):
    """The index in `classes` of the class a probability column holds (`name`, as the analysis
    read it: the same text, or the same number)."""
    for i, c in enumerate(classes):
        if str(c) == name:
            return i
    try:
        number = float(name)
    except ValueError:
        return None
    for i, c in enumerate(classes):
        try:
            if float(c) == number:
                return i
        except (TypeError, ValueError):
            continue
    return None


def prediction_columns(prediction, blend, target, config, column=None):
    """{submission column: values} of one target's test predictions: values (back from log
    space, non-negative for RMSLE), ordered labels by the chosen cut points, a positive-class
    probability, one probability per class (each row summing to 1), or labels. `column` is the
    target's own column for several targets; None means the shape's columns."""
    if column is None and config.get("shape") == "class-probabilities":
        return class_probability_columns(prediction, target, config)
    name = column or config["target_columns"][0]
    if target.task == "regression" and target.metric == "qwk":
        return {name: target.classes[ordinal_index(prediction, blend.class_weights)]}
    if target.task == "regression":
        values = np.expm1(prediction) if target.log_target else prediction
        if target.metric == "rmsle" or target.log_target:
            values = np.clip(values, 0, None)
        return {name: values}
    if config["prediction"] == "probability":
        positive = len(target.classes) - 1
        return {name: np.clip(prediction[:, positive], 0.0, 1.0)}
    if target.metric == "map":
        top = target.classes[top_labels(prediction, target.map_k)]
        return {name: [" ".join(str(label) for label in row) for row in top]}
    return {name: target.classes[decide(prediction, blend.class_weights)]}


def class_probability_columns(prediction, target, config):
    """{column: probabilities} of the class each probability column holds, each row summing to
    1. A column whose class no training row has gets the chance of a class not seen in n rows,
    1 / (n + 2), and the others share the rest; when no column names a training class, the
    columns and the target do not match and the pipeline stops."""
    names = config["column_classes"]
    indices = [class_index(target.classes, name) for name in names]
    unknown = [n for n, i in zip(names, indices, strict=True) if i is None]
    if len(unknown) == len(names):
        raise SystemExit(f"no class {unknown} in the training target")
    known = [i for i in indices if i is not None]
    chosen = np.clip(prediction[:, known], 0.0, 1.0)
    totals = chosen.sum(axis=1, keepdims=True)
    chosen = np.where(totals > 0, chosen / np.where(totals > 0, totals, 1), 1 / len(known))
    unseen = 1.0 / (len(target.y_fit) + 2)
    if unknown:
        print(f"classes {unknown} have no training row: each predicted {unseen:.2g}")
    share, columns, next_known = 1.0 - unseen * len(unknown), [], iter(chosen.T)
    for index in indices:
        columns.append(np.full(len(chosen), unseen) if index is None else share * next(next_known))
    return dict(zip(config["target_columns"], columns, strict=True))


def submission_frame(columns, config, test, sample):
    """The sample submission's ids, in its order, with the predicted `columns` (by name) in its
    prediction columns."""
    id_column, targets = config["id_column"], config["target_columns"]
    result = pd.DataFrame({id_column: test[id_column].values})
    for name in targets:
        result[name] = columns[name]
    submission = sample[[id_column]].merge(result, on=id_column, how="left")
    missing = submission[targets].isna().any(axis=1)
    if missing.any():
        raise SystemExit(
            f"{int(missing.sum())} sample ids have no prediction: is {id_column} the test id?"
        )
    return submission[[id_column, *targets]]


# The learners of a pipeline unless CONFIG["models"] names others; the first is required.
DEFAULT_MODELS = ("tuned", "plain", "linear")


def model_builders(models, X, X_test, both, names, target, folds, params=None):
    """(label, build) of each learner named in `models`, in order; an unknown name is an
    error."""
    known = {
        "tuned": lambda: tuned_candidate(X, X_test, target, folds, params),
        **{
            name: (
                lambda shape=shape: tuned_candidate(
                    X, X_test, target, folds, {**(params or {}), **shape}
                )
            )
            for name, shape in TREE_SHAPES.items()
        },
        "plain": lambda: plain_candidate(both, names, target, folds),
        "linear": lambda: linear_candidate(X, X_test, target, folds),
        "expanded": lambda: linear_candidate(X, X_test, target, folds, expanded=True),
        "forest": lambda: trees_candidate(X, X_test, target, folds),
        "extra": lambda: trees_candidate(X, X_test, target, folds, extra=True),
        "knn": lambda: knn_candidate(X, X_test, target, folds),
        "lightgbm": lambda: lightgbm_candidate(X, X_test, target, folds),
    }
    unknown = [m for m in models if m not in known]
    if unknown:
        raise SystemExit(f"unknown models {unknown}; known: {sorted(known)}")
    return [(m, known[m]) for m in models]


def solve_target(
    y,
    task,
    metric,
    X,
    X_test,
    both,
    names,
    map_k=1,
    models=None,
    params=None,
    text=None,
    types=None,
    repeats=1,
):
    """One target's candidates on shared folds and their blend chosen by `metric`: (target,
    folds, blend, blended test prediction). `text` is the text features' matrix (train rows,
    then test rows) when some columns are free text (`types` says which): its candidates join
    the others. With `repeats` above 1 every candidate is built again on folds shuffled by
    another seed, and each one's out-of-fold and test predictions are the mean over the
    rounds: more models averaged, and blend weights chosen on steadier predictions."""
    target = fitting_target(y, task, metric, map_k)
    plan = cost_plan(len(X), X.shape[1], target, list(models or DEFAULT_MODELS))
    print(f"work {plan.work:,} (rows x columns x trees an iteration): {plan.folds} folds")
    for model, why in plan.left_out:
        print(f"candidate {model} left out: {why}")
    params = {**plan.params, **(params or {})}
    if plan.params:
        print(f"{len(X):,} rows: the tuned learner at learning rate {params['learning_rate']}")
    rounds = []
    for seed in range(max(1, int(repeats))):
        if seed:
            print(f"round {seed + 1} of {repeats}: folds shuffled by seed {seed}")
        folds = make_folds(target, plan.folds, seed)
        rounds.append(
            round_candidates(target, folds, plan, X, X_test, both, names, params, text, types)
        )
    candidates = mean_over_rounds(rounds)
    blend = choose_blend(candidates, target, folds)
    return target, folds, blend, blended_test_prediction(candidates, blend)


def mean_over_rounds(rounds):
    """{label: (out-of-fold, test)} averaged over `rounds`, for the labels every round built
    (every round validates the same rows: rows of a class seen once are never validated)."""
    labels = [k for k in rounds[0] if all(k in r for r in rounds)]
    return {
        k: tuple(np.mean([r[k][part] for r in rounds], axis=0) for part in (0, 1)) for k in labels
    }


def round_candidates(target, folds, plan, X, X_test, both, names, params, text, types):
    """{label: (out-of-fold, test predictions)} of every learner of `plan` on `folds`, the text
    model and its stacking included when there are text features."""
    required = plan.models[0]
    text_only = text is not None and only_text(names, types or {})
    if text_only:
        # Nothing but the text: the trees would only see its lengths, so the text model leads
        # and the linear model on the lengths is the only other candidate.
        builders = [text_builder(text, target, folds)]
        builders += model_builders(["linear"], X, X_test, both, names, target, folds)
        required = "text"
    else:
        builders = model_builders(plan.models, X, X_test, both, names, target, folds, params)
        if text is not None:
            builders.append(text_builder(text, target, folds))
    candidates = build_candidates(builders, target, folds, required=required)
    if text is not None and not text_only and "text" in candidates:
        if stacking_pays(candidates, target, folds):
            stack = lambda: stacked_candidate(  # noqa: E731 - built only when it pays
                X, X_test, candidates["text"], target, folds, params
            )
            candidates.update(build_candidates([("stacked", stack)], target, folds, None))
        else:
            print("stacked left out: the text model adds too little to the others")
    return candidates


def text_features(both, texts):
    """The text features' matrix of the `texts` columns, or None: no text column, or none with
    terms, or a table too large for them (said, and the other candidates go on alone)."""
    if not texts:
        return None
    try:
        matrix = text_matrix(both, texts)
    except ValueError as error:
        print(f"text features left out: {error}")
        return None
    print(f"text features: {matrix.shape[1]} terms of {', '.join(texts)}")
    return matrix


def constant_column(y, task):
    """The prediction of a training column that never varies: its value, or for a 0/1 label
    the probability of 1 (there is nothing a model could learn)."""
    value = y.iloc[0]
    if task == "binary":
        return float(str(value).lower() in ("1", "1.0", "true"))
    return value


# [images] (the generator keeps this section only for a competition of pictures: Pillow is in
# the WASI guest, not in the Docker image, and an import of it would keep any script off Docker)
# Images. When CONFIG["images"] says which file each row names (per role: a folder, the column
# whose values name the files and the suffix completing a value into a file name), each picture
# becomes a row of numbers the tabular candidates take like any others: the picture shrunk to
# IMAGE_SIDE x IMAGE_SIDE grey pixels (no larger than the pictures themselves), COLOUR_SIDE x
# COLOUR_SIDE pixels per colour channel when the pictures have colour, each channel's mean and
# spread, a HISTOGRAM_BINS-bin histogram of the grey levels, and the picture's own width and
# height. Work and memory stay bounded: a picture is decoded at most at MAX_IMAGE_PIXELS (Pillow
# refuses larger ones as decompression bombs; JPEGs are decoded already shrunk), features are
# float32, and above MAX_TRAIN_IMAGES training rows a seeded sample of them is used, so the
# pictures read are at most MAX_TRAIN_IMAGES plus the rows to predict, each row at most
# IMAGE_SIDE^2 + 3 COLOUR_SIDE^2 + HISTOGRAM_BINS + 8 numbers. A picture that cannot be read
# gets missing values, which the boosting handles, and is counted in what the script prints.
IMAGE_SIDE = 16
COLOUR_SIDE = 8
HISTOGRAM_BINS = 16
MAX_IMAGE_PIXELS = 40_000_000
MAX_TRAIN_IMAGES = 20_000


def image_paths(frame, role, input_dir):
    """The file of each row of `frame` for `role` ({"folder", "column", "suffix"})."""
    folder = f"{input_dir}/{role['folder']}" if role["folder"] else input_dir
    return [f"{folder}/{value}{role['suffix']}" for value in frame[role["column"]].astype(str)]


def image_geometry(paths, probe=20):
    """(grey side, whether to keep colour) for pictures like the first `probe` of `paths`: the
    grey side is IMAGE_SIDE, or the smallest picture's side when smaller (shrinking never
    enlarges); colour is kept when any probed picture has it."""
    from PIL import Image

    side, colour = IMAGE_SIDE, False
    for path in paths[:probe]:
        try:
            with Image.open(path) as image:
                side = min(side, *image.size)
                if not colour:
                    # Colour is what the pixels show, whatever the mode says (a grey JPEG
                    # saved as RGB, a palette of greys).
                    rgb = np.asarray(image.convert("RGB"), np.int16)
                    colour = bool((rgb != rgb[..., :1]).any())
        except (OSError, ValueError):
            continue
    return max(side, 1), colour


def image_feature_names(side, colour):
    """The names of the columns `image_features` makes."""
    names = [f"px_{i}" for i in range(side * side)]
    if colour:
        names += [f"rgb_{c}_{i}" for c in "rgb" for i in range(COLOUR_SIDE * COLOUR_SIDE)]
    names += ["grey_mean", "grey_std"]
    if colour:
        names += [f"{c}_{stat}" for c in "rgb" for stat in ("mean", "std")]
    names += [f"grey_hist_{i}" for i in range(HISTOGRAM_BINS)]
    return names + ["image_width", "image_height"]


def image_features(paths, side, colour):
    """(float32 matrix with a row of features per path, how many pictures could not be read)."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    width = len(image_feature_names(side, colour))
    out = np.full((len(paths), width), np.nan, dtype=np.float32)
    failed = 0
    for row, path in enumerate(paths):
        try:
            with Image.open(path) as image:
                size = image.size
                image.draft("RGB", (max(side, COLOUR_SIDE) * 2, max(side, COLOUR_SIDE) * 2))
                rgb = image.convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError):
            failed += 1
            continue
        grey = rgb.convert("L")
        parts = [np.asarray(grey.resize((side, side), Image.BILINEAR), np.float32).ravel() / 255]
        if colour:
            small = np.asarray(rgb.resize((COLOUR_SIDE, COLOUR_SIDE), Image.BILINEAR), np.float32)
            parts.append(small.transpose(2, 0, 1).ravel() / 255)
        levels = np.asarray(grey, np.float32) / 255
        parts.append(np.array([levels.mean(), levels.std()], np.float32))
        if colour:
            channels = np.asarray(rgb, np.float32).reshape(-1, 3) / 255
            stats = np.stack([channels.mean(axis=0), channels.std(axis=0)], axis=1)
            parts.append(stats.ravel().astype(np.float32))
        histogram, _ = np.histogram(levels, bins=HISTOGRAM_BINS, range=(0.0, 1.0))
        parts.append((histogram / max(levels.size, 1)).astype(np.float32))
        parts.append(np.array(size, np.float32))
        out[row] = np.concatenate(parts)
    return out, failed


def with_image_features(config, train, test, names, types, input_dir):
    """train and test with their pictures' features beside their columns, and the feature
    names and types with them; above MAX_TRAIN_IMAGES training rows, a seeded sample."""
    if len(train) > MAX_TRAIN_IMAGES:
        print(f"images: {MAX_TRAIN_IMAGES} of {len(train)} training rows used (a seeded sample)")
        train = train.sample(n=MAX_TRAIN_IMAGES, random_state=0).reset_index(drop=True)
    roles = config["images"]
    train_paths = image_paths(train, roles["train"], input_dir)
    test_paths = image_paths(test, roles["test"], input_dir)
    side, colour = image_geometry(train_paths)
    columns = image_feature_names(side, colour)
    frames = []
    for frame, paths in ((train, train_paths), (test, test_paths)):
        matrix, failed = image_features(paths, side, colour)
        if failed:
            print(f"images: {failed} of {len(paths)} pictures could not be read")
        pixels = pd.DataFrame(matrix, columns=columns, index=frame.index)
        frames.append(pd.concat([frame.drop(columns=columns, errors="ignore"), pixels], axis=1))
    print(
        f"images: {len(train_paths)} training and {len(test_paths)} to predict,"
        f" {side}x{side} grey{' and colour' if colour else ''}, {len(columns)} features"
    )
    # `features` adds the hundreds of pixel columns one at a time, which pandas warns about
    # for every frame; the cost is small next to the models'.
    warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
    names = [n for n in names if n not in columns] + columns
    types = {**types, **dict.fromkeys(columns, "float")}
    return frames[0], frames[1], names, types


# [/images]
def main(config, input_dir="/input", output_dir="/output"):
    """The whole pipeline for `config` (the analysis's facts, as the generator writes them):
    reads the tables from `input_dir` and writes `output_dir`/submission.csv."""
    train, test, sample = read_tables(config, input_dir)
    train, test = join_side_tables((train, test), config.get("joins", []), input_dir)
    names, types = config["features"], config["types"]
    # [images]
    if config.get("images"):
        train, test, names, types = with_image_features(
            config, train, test, names, types, input_dir
        )
    # [/images]
    both = pd.concat([train[names], test[names]], ignore_index=True)
    X, X_test = feature_matrices(train, test, both, names, types)
    if config.get("encoding") == "frequency":
        X, X_test = with_frequencies(X, X_test)
    metric = column_metric(config["metric"])
    text = text_features(both, text_columns(names, types))
    plan = target_plan(config)
    columns, scores, folds_used = {}, [], fold_count(len(X))
    for column, train_column, task in plan:
        y = train[train_column]
        if column is not None and y.nunique() < 2:
            print(f"target {column}: one value in every training row; predicted as it is")
            columns[column] = constant_column(y, task)
            continue
        target, folds, blend, prediction = solve_target(
            y,
            task,
            metric,
            X,
            X_test,
            both,
            names,
            config.get("map_k", 1),
            config.get("models"),
            config.get("params"),
            text,
            types,
            config.get("repeats", 1),
        )
        chosen = ", ".join(f"{k} {w:.2f}" for k, w in blend.mix.items())
        if column is not None:
            print(f"target {column}: {blend.metric} {blend.value:.5f} ({chosen})")
        scores.append((blend.metric, blend.value, chosen))
        folds_used = len(folds.splits)
        columns.update(prediction_columns(prediction, blend, target, config, column))

    if len(plan) == 1:
        name, value, chosen = scores[0]
        print(f"validation {name}: {value:.5f} over {folds_used} hold-outs ({chosen})")
    elif scores:
        # The competition's score is the mean over the columns of each column's metric.
        name = scores[0][0]
        mean = float(np.mean([value for _, value, _ in scores]))
        print(
            f"validation {MEAN_METRICS.get(name, 'mean_' + name)}: {mean:.5f} over"
            f" {folds_used} hold-outs (mean of {len(scores)} columns)"
        )
    submission = submission_frame(columns, config, test, sample)
    path = f"{output_dir}/submission.csv"
    submission.to_csv(path, index=False)
    print(f"wrote {path} with {len(submission)} rows")


if __name__ == "__main__":
    main(CONFIG)  # noqa: F821 - the generator writes CONFIG above this template
