"""Reference solution for text: scikit-learn's default TF-IDF into a default logistic regression.

Runs inside the kaggle-solver sandbox, like reference_hgb.py:
    kaggle-solver sandbox run --policy policies/large.toml --input <slug>/public \
        --output OUT tools/eval/reference_tfidf.py
It reads /input/train.csv, /input/test.csv and /input/sample_submission.csv and writes
/output/submission.csv.  It is the bar the baseline must meet on text, so it stays plain:

- id column = the sample's first column; target(s) = the sample's other column(s), found as
  reference_hgb.py finds them;
- text = every non-numeric feature column, joined with spaces into one string per row, into
  `TfidfVectorizer()` with every default (word unigrams, raw term counts, no minimum
  frequency), fitted on the training rows;
- numeric columns (booleans as 0/1) beside it, missing values replaced by the training mean,
  standardised;
- `LogisticRegression()` with every default but max_iter=1000 (so it converges) for classes,
  `Ridge()` for values; classification as in reference_hgb.py (not numeric, or integer-valued
  with at most 20 distinct values);
- probabilities when the sample holds probabilities (one per class with several columns that
  are not training columns), labels otherwise; one model per column for several targets that
  are training columns.
"""

import time

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge

t0 = time.time()
train = pd.read_csv("/input/train.csv")
test = pd.read_csv("/input/test.csv")
sample = pd.read_csv("/input/sample_submission.csv")
id_col = sample.columns[0]
targets = list(sample.columns[1:])

per_column = len(targets) > 1 and all(t in train.columns for t in targets)
if (len(targets) == 1 and targets[0] in train.columns) or per_column:
    label_col = targets[0]
else:  # one column per class: the label is the train column that test lacks
    extra = [c for c in train.columns if c not in test.columns and c not in targets]
    label_col = extra[0]
features = [
    c
    for c in train.columns
    if c in test.columns and c != id_col and c != label_col and c not in targets
]


def is_number(col):
    a, b = train[col], test[col]
    return all(ptypes.is_numeric_dtype(s) or ptypes.is_bool_dtype(s) for s in (a, b))


numbers = [c for c in features if is_number(c)]
texts = [c for c in features if c not in numbers]


def joined(frame):
    if not texts:
        return [""] * len(frame)
    return frame[texts].fillna("").astype(str).agg(" ".join, axis=1).tolist()


parts, parts_test = [], []
if texts:
    vectorizer = TfidfVectorizer()
    parts.append(vectorizer.fit_transform(joined(train)))
    parts_test.append(vectorizer.transform(joined(test)))
if numbers:
    a = train[numbers].astype(float)
    b = test[numbers].astype(float)
    mean, spread = a.mean(), a.std().replace(0, 1).fillna(1)
    parts.append(sparse.csr_matrix(((a.fillna(mean) - mean) / spread).fillna(0).to_numpy()))
    parts_test.append(sparse.csr_matrix(((b.fillna(mean) - mean) / spread).fillna(0).to_numpy()))
X = sparse.hstack(parts).tocsr()
Xt = sparse.hstack(parts_test).tocsr()


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
    for t in targets:
        known = train[t].notna().to_numpy()
        yt = train[t][known]
        if set(np.unique(yt)) <= {0, 1}:
            model = LogisticRegression(max_iter=1000).fit(X[known], yt)
            out[t] = model.predict_proba(Xt)[:, -1]
        else:
            out[t] = Ridge().fit(X[known], yt).predict(Xt)
    kind = "one model per column"
else:
    y = train[label_col]
    keep = y.notna().to_numpy()
    X, y = X[keep], y[keep]
    if is_classification(y) or len(targets) > 1:
        model = LogisticRegression(max_iter=1000).fit(X, y)
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
        pred = Ridge().fit(X, y).predict(Xt)
        if y.min() >= 0:
            pred = np.clip(pred, 0, None)
        out[targets[0]] = pred
        kind = "regression"

out.to_csv("/output/submission.csv", index=False)
print(
    f"reference_tfidf: {kind}, {len(texts)} text and {len(numbers)} numeric columns, "
    f"{X.shape[1]} features, {len(train)} train rows, {len(test)} test rows, "
    f"{time.time() - t0:.1f}s"
)
