# Baseline pipeline written by kaggle-solver's built-in generator.
#
# CONFIG above was filled in from the competition's analysis. The pipeline: read the tables from
# /input, turn dates and text into numbers, and build three candidate models on the same
# cross-validation folds, each giving out-of-fold predictions and test predictions:
#
# - "tuned": HistGradientBoosting with native categories, one model per fold early-stopped on
#   its own fold, refit on all the rows with the folds' mean best iteration count, the fold
#   models blended with the refit;
# - "plain": scikit-learn's default HistGradientBoosting on category codes, the simple
#   reference a baseline must not lose to;
# - "linear": a logistic or ridge regression on standardised numbers and one-hot categories,
#   which small or nearly linear problems favour.
#
# The blend weights (a grid in steps of a quarter, a single candidate included) and, for macro
# F1, the class-prior adjustment are chosen by the competition's own metric on the out-of-fold
# predictions, respecting its direction. The predictions are written in the sample submission's
# exact format to /output/submission.csv.
import math
import warnings

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import KFold, StratifiedKFold

INPUT = "/input/"
ID = CONFIG["id_column"]
TARGET = CONFIG["train_target"]
TASK = CONFIG["task"]
METRIC = CONFIG["metric"]
PROBABILITY = CONFIG["prediction"] == "probability"

train = pd.read_csv(INPUT + CONFIG["train"])
test = pd.read_csv(INPUT + CONFIG["test"])
sample = pd.read_csv(INPUT + CONFIG["sample_submission"])
train = train[train[TARGET].notna()].reset_index(drop=True)


def features(frame, reference):
    """Numeric and categorical columns HistGradientBoosting can take, built the same way for
    train and test (`reference` holds both, so categories agree)."""
    out = pd.DataFrame(index=frame.index)
    for name in CONFIG["features"]:
        kind = CONFIG["types"].get(name, "categorical")
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
            if len(counts) <= 250:
                categories = sorted(counts.index)
                out[name] = pd.Categorical(text, categories=categories)
            else:
                # Too many levels for native categories: frequency and a stable code.
                out[f"{name}_freq"] = text.map(counts).astype(float)
                codes = {value: i for i, value in enumerate(sorted(counts.index))}
                out[f"{name}_code"] = text.map(codes).astype(float)
    return out


both = pd.concat([train[CONFIG["features"]], test[CONFIG["features"]]], ignore_index=True)
X = features(train, both)
X_test = features(test, both)
constant = [c for c in X.columns if X[c].nunique(dropna=False) <= 1]
X, X_test = X.drop(columns=constant), X_test.drop(columns=constant)

y = train[TARGET]
if TASK == "regression":
    y = pd.to_numeric(y, errors="coerce").astype(float)
    log_target = METRIC == "rmsle" and (y >= 0).all()
    y_fit = np.log1p(y) if log_target else y
    classes = None
else:
    try:  # numeric labels in numeric order (2 < 10), others as text
        classes = np.array(sorted(y.unique()))
    except TypeError:
        classes = np.array(sorted(y.unique(), key=lambda v: str(v)))
    position = {c: i for i, c in enumerate(classes)}
    y_fit = y

n = len(X)
folds = 5 if n <= 30_000 else 3
learning_rate = 0.1
patience = 20


def make_model(seed, max_iter=2000, early_stopping=True):
    common = dict(
        learning_rate=learning_rate,
        max_iter=max_iter,
        max_leaf_nodes=31,
        min_samples_leaf=20,
        l2_regularization=1.0,
        categorical_features="from_dtype",
        early_stopping=early_stopping,
        n_iter_no_change=patience,
        random_state=seed,
    )
    if TASK == "regression":
        loss = "absolute_error" if METRIC == "mae" else "squared_error"
        return HistGradientBoostingRegressor(loss=loss, **common)
    # The log loss is scale-free, so a fixed tolerance stops folds that separate perfectly
    # instead of letting them creep on for thousands of iterations.
    return HistGradientBoostingClassifier(tol=1e-4, **common)


def predict(model, data):
    """Regression values, or one probability column per class of `classes` (a fold model may
    have seen fewer classes)."""
    if TASK == "regression":
        return model.predict(data)
    full = np.zeros((len(data), len(classes)))
    full[:, [position[c] for c in model.classes_]] = model.predict_proba(data)
    return full


def fold_indices():
    """(fit rows, validation rows) per fold. Rows of a class seen only once always stay in the
    fitting part, so no fold validates on a label its model has never seen."""
    rows = np.arange(n)
    if TASK == "regression":
        return list(KFold(folds, shuffle=True, random_state=0).split(rows))
    counts = y_fit.map(y_fit.value_counts())
    common = rows[(counts >= 2).to_numpy()]
    rare = rows[(counts < 2).to_numpy()]
    labels = np.asarray(y_fit)[common]
    # Stratified even when a class has fewer rows than folds (scikit-learn only warns then):
    # each of its rows lands in a different fold, so every fitting part still holds the class.
    kind = StratifiedKFold if pd.Series(labels).value_counts().max() >= folds else KFold
    splitter = kind(folds, shuffle=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pairs = list(splitter.split(common, labels))
    return [(np.concatenate([common[a], rare]), common[b]) for a, b in pairs]


splits = fold_indices()
seen = np.zeros(n, dtype=bool)
for _, val_rows in splits:
    seen[val_rows] = True
truth = np.asarray(y_fit)[seen]
if TASK != "regression":
    truth_index = np.array([position[c] for c in truth])


def cross_fit(fit, data, test_data):
    """Out-of-fold predictions of `fit(rows data, targets)` and its test predictions, fitted
    once more on every row."""
    target = np.asarray(y_fit)
    oof = None
    for fit_rows, val_rows in splits:
        model = fit(data[fit_rows], target[fit_rows])
        val = predict(model, data[val_rows])
        if oof is None:
            oof = np.zeros((n,) + val.shape[1:])
        oof[val_rows] = val
    return oof, predict(fit(data, target), test_data)


def tuned_candidate():
    """One early-stopped model per fold; a refit on every row for the folds' mean best
    iteration count, scaled up for the extra data, blended half and half with the folds."""
    oof, tests, best_iterations = None, [], []
    for seed, (fit_rows, val_rows) in enumerate(splits):
        model = make_model(seed)
        model.fit(X.iloc[fit_rows], y_fit.iloc[fit_rows], X_val=X.iloc[val_rows], y_val=y_fit.iloc[val_rows])
        stopped = model.n_iter_ < model.max_iter
        best_iterations.append(max(1, model.n_iter_ - (patience if stopped else 0)))
        val = predict(model, X.iloc[val_rows])
        if oof is None:
            oof = np.zeros((n,) + val.shape[1:])
        oof[val_rows] = val
        tests.append(predict(model, X_test))
    refit_iterations = max(10, int(round(np.mean(best_iterations) * folds / (folds - 1))))
    refit = make_model(len(splits), max_iter=refit_iterations, early_stopping=False)
    refit.fit(X, y_fit)
    return oof, 0.5 * np.mean(tests, axis=0) + 0.5 * predict(refit, X_test)


def plain_candidate():
    """scikit-learn's defaults on the simple encoding: numbers as they are, every other column
    category codes over train and test together (missing stays missing)."""
    columns = []
    for name in CONFIG["features"]:
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

    def fit(data, target):
        kind = HistGradientBoostingRegressor if TASK == "regression" else HistGradientBoostingClassifier
        try:
            return kind(random_state=0).fit(data, target)
        except ValueError:  # a class too rare for the automatic early-stopping split
            return kind(random_state=0, early_stopping=False).fit(data, target)

    return cross_fit(fit, matrix[:n], matrix[n:])


def linear_candidate():
    """Logistic or ridge regression: numbers standardised and clipped (missing -> median plus
    an indicator), the frequent levels of each category one-hot."""
    from sklearn.linear_model import LogisticRegression, Ridge

    joined = pd.concat([X, X_test], ignore_index=True)
    parts = []
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
            parts.append(values.to_numpy()[:, None])
    if not parts:
        raise ValueError("no columns")
    matrix = np.hstack(parts)
    # Bound its cost (lbfgs time grows with rows x columns x classes): at this size it takes
    # about as long as the boosting already does.
    work = n * matrix.shape[1] * (1 if TASK == "regression" else len(classes))
    if work > 30_000_000:
        raise ValueError(f"too large for the time budget ({n} rows x {matrix.shape[1]} columns)")

    def fit(data, target):
        if TASK == "regression":
            return Ridge(alpha=1.0).fit(data, target)
        return LogisticRegression(C=1.0, max_iter=300).fit(data, target)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings: the fit is still usable
        return cross_fit(fit, matrix[:n], matrix[n:])


def decide(probabilities, weights):
    return (probabilities * weights).argmax(axis=1)


def macro_f1(true_index, predicted_index):
    """scikit-learn's macro F1: the classes present in the truth or the predictions."""
    k = len(classes)
    confusion = np.bincount(true_index * k + predicted_index, minlength=k * k).reshape(k, k)
    denominator = confusion.sum(axis=0) + confusion.sum(axis=1)
    present = denominator > 0
    return float(np.mean(2 * np.diag(confusion)[present] / denominator[present]))


def evaluate(predicted):
    """(metric name, value, higher is better, class weights) of out-of-fold predictions (rows in
    `seen`, in the fitting space: log1p for a log target). For macro F1 the class weights divide
    the probabilities by the class shares to a power chosen here (0 = plain argmax, 1 = fully
    balanced), so the adjustment is only used when it helps out of fold."""
    if TASK == "regression":
        if METRIC == "mae":
            return "mae", float(np.mean(np.abs(predicted - truth))), False, None
        if METRIC == "rmsle" and not log_target:
            error = np.log1p(np.clip(predicted, 0, None)) - np.log1p(np.clip(truth, 0, None))
            return "rmsle", math.sqrt(np.mean(error**2)), False, None
        return ("rmsle" if log_target else "rmse"), math.sqrt(np.mean((predicted - truth) ** 2)), False, None
    ones = np.ones(len(classes))
    if METRIC == "log_loss":
        chosen = predicted[np.arange(len(truth_index)), truth_index]
        return "log_loss", float(-np.mean(np.log(np.clip(chosen, 1e-15, 1.0)))), False, ones
    if METRIC == "roc_auc" and len(classes) == 2:
        from sklearn.metrics import roc_auc_score

        return "roc_auc", float(roc_auc_score(truth_index == 1, predicted[:, 1])), True, ones
    if METRIC == "macro_f1":
        share = np.bincount(truth_index, minlength=len(classes)) / len(truth_index)
        share = np.clip(share, 1e-6, None)
        best = None
        for power in (0.0, 0.25, 0.5, 0.75, 1.0):
            weights = share**-power
            value = macro_f1(truth_index, decide(predicted, weights))
            if best is None or value > best[0] + 1e-12:
                best = (value, weights)
        return "macro_f1", best[0], True, best[1]
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


candidates = {}
for label, build in (("tuned", tuned_candidate), ("plain", plain_candidate), ("linear", linear_candidate)):
    try:
        candidates[label] = build()
    except Exception as error:  # noqa: BLE001 - a failing extra candidate is only left out
        if label == "tuned":
            raise
        print(f"candidate {label} left out: {error!r}")
        continue
    name, value, _, _ = evaluate(candidates[label][0][seen])
    print(f"out-of-fold {label}: {name} {value:.5f}")

labels = list(candidates)
best = None
for blend in blend_grid(len(labels)):
    mixed = sum(w * candidates[k][0][seen] for w, k in zip(blend, labels) if w > 0)
    name, value, higher, weights = evaluate(mixed)
    key = value if higher else -value
    if best is None or key > best[0] + 1e-12:
        best = (key, blend, name, value, weights)
_, blend, name, value, weights = best
prediction = sum(w * candidates[k][1] for w, k in zip(blend, labels) if w > 0)
chosen = ", ".join(f"{k} {w:.2f}" for w, k in zip(blend, labels) if w > 0)
print(f"validation {name}: {value:.5f} over {len(splits)} hold-outs ({chosen})")

result = pd.DataFrame({ID: test[ID].values})
targets = CONFIG["target_columns"]
if TASK == "regression":
    values = np.expm1(prediction) if log_target else prediction
    if METRIC == "rmsle":
        values = np.clip(values, 0, None)
    result[targets[0]] = values
elif PROBABILITY and len(targets) == 1:
    positive = len(classes) - 1
    result[targets[0]] = np.clip(prediction[:, positive], 0.0, 1.0)
elif PROBABILITY:
    by_name = {str(c): i for i, c in enumerate(classes)}
    for column in targets:
        index = by_name.get(column)
        result[column] = prediction[:, index] if index is not None else 0.0
else:
    result[targets[0]] = classes[decide(prediction, weights)]

submission = sample[[ID]].merge(result, on=ID, how="left")
missing = submission[targets].isna().any(axis=1)
if missing.any():
    raise SystemExit(f"{int(missing.sum())} sample ids have no prediction: is {ID} the test id?")
submission[[ID, *targets]].to_csv("/output/submission.csv", index=False)
print(f"wrote /output/submission.csv with {len(submission)} rows")
