"""Reference solution: scikit-learn's default HistGradientBoosting on lightly encoded data.

Runs inside the kaggle-solver sandbox:
    kaggle-solver sandbox run --policy policies/large.toml --input <slug>/public \
        --output OUT tools/eval/reference_hgb.py
It reads /input/train.csv, /input/test.csv and /input/sample_submission.csv and writes
/output/submission.csv; natively, `python3 reference_hgb.py INPUT OUTPUT` reads and writes
those folders instead (how run_eval.py times the reference outside the sandbox). It is the bar
the baseline code generator must meet, so it stays deliberately plain:

- id column = the sample's first column; target(s) = the sample's other column(s);
- features = the columns shared by train and test, less the id and the target;
- numeric columns as they are (booleans as 0/1); every other column becomes pandas category
  codes, with the categories taken from train and test together (missing stays missing);
- classification when the target is not numeric, or is integer-valued with at most 20
  distinct values; regression otherwise;
- HistGradientBoostingClassifier / HistGradientBoostingRegressor with every default but
  random_state=0;
- probabilities when the sample's values look like probabilities (floats in [0, 1] that are
  not all integers), else labels; with several target columns that are not training columns,
  one probability per class;
- with several target columns that are training columns, one model per column: a classifier's
  probability of 1 for a 0/1 column, a regressor's value otherwise;
- regression predictions are clipped at 0 when the training target is never negative.
"""

import sys
import time

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

t0 = time.time()
INPUT, OUTPUT = sys.argv[1:3] if len(sys.argv) >= 3 else ("/input", "/output")
train = pd.read_csv(f"{INPUT}/train.csv")
test = pd.read_csv(f"{INPUT}/test.csv")
sample = pd.read_csv(f"{INPUT}/sample_submission.csv")
id_col = sample.columns[0]
targets = list(sample.columns[1:])

per_column = len(targets) > 1 and all(t in train.columns for t in targets)
if (len(targets) == 1 and targets[0] in train.columns) or per_column:
    label_col = targets[0]
else:  # one column per class: the label is the train column that test lacks
    extra = [c for c in train.columns if c not in test.columns and c not in targets]
    label_col = extra[0]
y = train[label_col]
features = [
    c
    for c in train.columns
    if c in test.columns and c != id_col and c != label_col and c not in targets
]
if per_column:
    # One model per target column, on the rows where it is known.
    label_col = None


def encode(col):
    a, b = train[col], test[col]
    if ptypes.is_bool_dtype(a) and ptypes.is_bool_dtype(b):
        return a.astype(float), b.astype(float)
    if ptypes.is_numeric_dtype(a) and ptypes.is_numeric_dtype(b):
        return a, b
    both = pd.concat([a, b], ignore_index=True).astype("category")
    codes = both.cat.codes.astype(float).replace(-1, np.nan)
    return codes.iloc[: len(a)].to_numpy(), codes.iloc[len(a) :].to_numpy()


X = pd.DataFrame(index=train.index)
Xt = pd.DataFrame(index=test.index)
for c in features:
    X[c], Xt[c] = encode(c)


def is_classification(y):
    if ptypes.is_bool_dtype(y) or not ptypes.is_numeric_dtype(y):
        return True
    v = y.dropna().to_numpy(dtype=float)
    return bool(np.all(v == np.round(v))) and len(np.unique(v)) <= 20


def looks_like_probability(s):
    if not ptypes.is_numeric_dtype(s) or ptypes.is_bool_dtype(s):
        return False
    v = s.dropna().to_numpy(dtype=float)
    return len(v) > 0 and bool(np.all((v >= 0) & (v <= 1))) and not np.all(v == np.round(v))


out = pd.DataFrame({id_col: test[id_col]})
if per_column:
    kinds = []
    for t in targets:
        known = train[t].notna().to_numpy()
        yt = train[t][known]
        if set(np.unique(yt)) <= {0, 1}:
            model = HistGradientBoostingClassifier(random_state=0).fit(X[known], yt)
            out[t] = model.predict_proba(Xt)[:, -1]
            kinds.append("probability")
        else:
            model = HistGradientBoostingRegressor(random_state=0).fit(X[known], yt)
            out[t] = model.predict(Xt)
            kinds.append("value")
    out.to_csv(f"{OUTPUT}/submission.csv", index=False)
    print(
        f"reference_hgb: one model per column ({', '.join(kinds)}), {len(features)} features, "
        f"{len(X)} train rows, {len(Xt)} test rows, {time.time() - t0:.1f}s"
    )
    raise SystemExit(0)
keep = y.notna().to_numpy()
X, y = X[keep], y[keep]
if is_classification(y) or len(targets) > 1:
    model = HistGradientBoostingClassifier(random_state=0).fit(X, y)
    proba_wanted = len(targets) > 1 or looks_like_probability(sample[targets[0]])
    if proba_wanted:
        proba = model.predict_proba(Xt)
        classes = [str(c) for c in model.classes_]
        if len(targets) == 1:  # binary: the probability of the positive (larger) class
            out[targets[0]] = proba[:, -1]
        else:
            for k, t in enumerate(targets):
                out[t] = proba[:, classes.index(t)] if t in classes else proba[:, k]
    else:
        out[targets[0]] = model.predict(Xt)
    kind = "classification (%s)" % ("probability" if proba_wanted else "label")
else:
    model = HistGradientBoostingRegressor(random_state=0).fit(X, y)
    pred = model.predict(Xt)
    if y.min() >= 0:
        pred = np.clip(pred, 0, None)
    out[targets[0]] = pred
    kind = "regression"

out.to_csv(f"{OUTPUT}/submission.csv", index=False)
print(
    f"reference_hgb: {kind}, {len(features)} features, {len(X)} train rows, {len(Xt)} test rows, "
    f"{model.n_iter_} iterations, {time.time() - t0:.1f}s"
)
