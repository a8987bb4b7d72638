#!/usr/bin/env python3
# Vendored from the project's shared/tools/grade_shapes.py: reformatted by ruff, zips made strict.
"""Grade a submission for one local competition, whatever its submission shape.

Usage:
    python3 grade.py <slug> <submission.csv> [--comps DIR]
    python3 grade.py --list
    python3 grade.py --selftest

Prints one JSON line:
    {"slug": ..., "metric": ..., "score": <float or null>, "valid": <bool>,
     "higher_is_better": <bool>, "error": <null or message>}
Exit status: 0 valid, 1 invalid submission, 2 usage error (unknown slug, missing files).

Standard library only (Python 3.11).  Submission shapes (config.json "prediction"):
    label                one column, a class label         (macro_f1, accuracy, qwk)
    probability          one column, P(target = 1)         (log_loss, roc_auc)
    class_probabilities  one column per class, P(class)    (multiclass_log_loss)
    numbers              one column per numeric target     (mcrmse, rmse)
    label_probabilities  one column per 0/1 target, P(1)   (mean_column_auc)
Each metric is written to agree with scikit-learn (test_grade.py checks this).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
EPS = 1e-15


class Invalid(Exception):
    """The submission does not meet the format; the message says why."""


# --------------------------------------------------------------------------------------
# Metrics (pure Python)
# --------------------------------------------------------------------------------------
def accuracy(y_true: list, y_pred: list) -> float:
    return sum(1 for t, p in zip(y_true, y_pred, strict=True) if t == p) / len(y_true)


def macro_f1(y_true: list[str], y_pred: list[str]) -> float:
    """Unweighted mean of per-class F1 over the classes present in y_true or y_pred
    (sklearn f1_score(average='macro', zero_division=0))."""
    labels = sorted(set(y_true) | set(y_pred))
    f1s = []
    for c in labels:
        tp = sum(1 for t, p in zip(y_true, y_pred, strict=True) if t == c and p == c)
        fp = sum(1 for t, p in zip(y_true, y_pred, strict=True) if t != c and p == c)
        fn = sum(1 for t, p in zip(y_true, y_pred, strict=True) if t == c and p != c)
        denom = 2 * tp + fp + fn
        f1s.append(0.0 if denom == 0 else 2 * tp / denom)
    return sum(f1s) / len(f1s)


def quadratic_weighted_kappa(y_true: list[int], y_pred: list[int], n_classes: int) -> float:
    """Cohen's kappa with quadratic weights on ratings 0..n_classes-1
    (sklearn cohen_kappa_score(weights='quadratic', labels=range(n_classes)))."""
    n = len(y_true)
    obs = [[0] * n_classes for _ in range(n_classes)]
    for t, p in zip(y_true, y_pred, strict=True):
        obs[t][p] += 1
    hist_t = [sum(row) for row in obs]
    hist_p = [sum(obs[i][j] for i in range(n_classes)) for j in range(n_classes)]
    num = den = 0.0
    for i in range(n_classes):
        for j in range(n_classes):
            w = (i - j) ** 2
            num += w * obs[i][j]
            den += w * hist_t[i] * hist_p[j] / n
    if den == 0.0:  # every actual and predicted rating identical: no disagreement possible
        return 1.0 if num == 0.0 else 0.0
    return 1.0 - num / den


def roc_auc(y_true: list[int], scores: list[float]) -> float:
    """Mann-Whitney U statistic with average ranks for ties (== sklearn roc_auc_score)."""
    n = len(scores)
    order = sorted(range(n), key=lambda i: scores[i])
    ranks = [0.0] * n
    i = 0
    while i < n:
        j = i
        while j + 1 < n and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        avg = (i + j) / 2.0 + 1.0
        for k in range(i, j + 1):
            ranks[order[k]] = avg
        i = j + 1
    n_pos = sum(1 for t in y_true if t == 1)
    n_neg = n - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("roc_auc needs both classes in the answers")
    rank_sum = math.fsum(r for r, t in zip(ranks, y_true, strict=True) if t == 1)
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def mean_column_auc(y_true: list[list[int]], scores: list[list[float]]) -> float:
    """Mean over columns of the ROC AUC (sklearn roc_auc_score(Y, P, average='macro')).
    Arguments are column-major: one list per target column."""
    return math.fsum(roc_auc(t, s) for t, s in zip(y_true, scores, strict=True)) / len(y_true)


def log_loss(y_true: list[int], probs: list[float], eps: float = EPS) -> float:
    """Binary log loss with p clipped to [eps, 1 - eps]."""
    total = []
    for t, p in zip(y_true, probs, strict=True):
        p = min(max(p, eps), 1 - eps)
        total.append(-math.log(p) if t == 1 else -math.log(1 - p))
    return math.fsum(total) / len(y_true)


def multiclass_log_loss(y_true: list[int], probs: list[list[float]], eps: float = EPS) -> float:
    """Kaggle's multi-class log loss: clip each probability to [eps, 1 - eps], divide each
    row by its sum, then -mean(log p[true class])."""
    total = []
    for t, row in zip(y_true, probs, strict=True):
        clipped = [min(max(p, eps), 1 - eps) for p in row]
        total.append(-math.log(clipped[t] / math.fsum(clipped)))
    return math.fsum(total) / len(y_true)


def rmse(y_true: list[float], y_pred: list[float]) -> float:
    return math.sqrt(
        math.fsum((p - t) ** 2 for t, p in zip(y_true, y_pred, strict=True)) / len(y_true)
    )


def mcrmse(y_true: list[list[float]], y_pred: list[list[float]]) -> float:
    """Mean column-wise RMSE; arguments are column-major (one list per target column)."""
    return math.fsum(rmse(t, p) for t, p in zip(y_true, y_pred, strict=True)) / len(y_true)


HIGHER_IS_BETTER = {
    "accuracy": True,
    "macro_f1": True,
    "qwk": True,
    "roc_auc": True,
    "mean_column_auc": True,
    "log_loss": False,
    "multiclass_log_loss": False,
    "rmse": False,
    "mcrmse": False,
}
METRICS_FOR = {
    "label": ("accuracy", "macro_f1", "qwk"),
    "probability": ("log_loss", "roc_auc"),
    "class_probabilities": ("multiclass_log_loss",),
    "numbers": ("mcrmse", "rmse"),
    "label_probabilities": ("mean_column_auc",),
}


# --------------------------------------------------------------------------------------
# Loading and validation
# --------------------------------------------------------------------------------------
def load_config(slug: str, comps: Path) -> dict:
    path = comps / slug / "config.json"
    if not path.is_file():
        known = (
            sorted(p.name for p in comps.iterdir() if (p / "config.json").is_file())
            if comps.is_dir()
            else []
        )
        raise FileNotFoundError(f"unknown competition {slug!r} (no {path}); known: {known}")
    cfg = json.loads(path.read_text(encoding="utf-8"))
    if cfg["metric"] not in METRICS_FOR.get(cfg["prediction"], ()):
        raise FileNotFoundError(
            f"{path}: metric {cfg['metric']!r} does not fit prediction {cfg['prediction']!r}"
        )
    return cfg


def read_answers(cfg: dict, comps: Path) -> dict[str, list[str]]:
    """id -> list of target values, in cfg['target_columns'] order."""
    path = comps / cfg["slug"] / "private" / "answers.csv"
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    ii = header.index(cfg["id_column"])
    tix = [header.index(t) for t in cfg["target_columns"]]
    return {r[ii]: [r[k] for k in tix] for r in body}


_NAN_WORDS = {
    "nan",
    "-nan",
    "+nan",
    "na",
    "n/a",
    "null",
    "none",
    "inf",
    "+inf",
    "-inf",
    "infinity",
    "+infinity",
    "-infinity",
}


def _parse_float(value: str, what: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise Invalid(f"{what}: {value!r} is not a number") from None
    if not math.isfinite(x):
        raise Invalid(f"{what}: {value!r} is not a finite number")
    return x


def _parse_prob(value: str, what: str) -> float:
    p = _parse_float(value, what)
    if not 0.0 <= p <= 1.0:
        raise Invalid(f"{what} is {p}; probabilities must lie in [0, 1]")
    return p


def _normalize_label(value: str, labels: list[str]) -> str | None:
    """Map a submitted label onto the canonical label set, tolerating case differences
    and 1.0 for 1.  None when it matches nothing."""
    if value in labels:
        return value
    low = value.lower()
    for lab in labels:
        if lab.lower() == low:
            return lab
    try:
        x = float(value)
    except ValueError:
        return None
    for lab in labels:
        try:
            if float(lab) == x:
                return lab
        except ValueError:
            pass
    return None


def read_submission(cfg: dict, path: Path, answers: dict) -> dict[str, list[str]]:
    """id -> list of raw values, in cfg['submission_columns'] order."""
    idc, cols = cfg["id_column"], cfg["submission_columns"]
    if not path.is_file():
        raise Invalid(f"submission file {path} does not exist")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError as e:
        raise Invalid(f"submission is not UTF-8 text: {e}") from None
    except csv.Error as e:
        raise Invalid(f"submission is not a readable CSV: {e}") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise Invalid("submission is empty (no header row)")
    header = [h.strip() for h in rows[0]]
    expected = [idc] + cols
    if sorted(header) != sorted(expected):
        missing = [c for c in expected if c not in header]
        extra = [c for c in header if c not in expected]
        parts = []
        if missing:
            parts.append(f"missing column(s) {missing}")
        if extra:
            parts.append(f"unexpected column(s) {extra}")
        if not parts:
            parts.append("duplicate columns")
        shown = expected if len(expected) <= 8 else expected[:8] + ["..."]
        raise Invalid(
            f"header must be exactly {shown} (any order): "
            + "; ".join(parts)
            + f"; got {header if len(header) <= 12 else header[:12] + ['...']}"
        )
    ii = header.index(idc)
    cix = [header.index(c) for c in cols]
    body = rows[1:]
    if len(body) != len(answers):
        raise Invalid(f"expected {len(answers)} data rows (one per test {idc}), got {len(body)}")
    sub: dict[str, list[str]] = {}
    for n, r in enumerate(body, start=2):
        if len(r) != len(header):
            raise Invalid(f"line {n}: expected {len(header)} fields, got {len(r)}")
        rid = r[ii].strip()
        if rid in sub:
            raise Invalid(f"line {n}: duplicate {idc} {rid!r}")
        vals = [r[k].strip() for k in cix]
        for c, v in zip(cols, vals, strict=True):
            if v == "" or v.lower() in _NAN_WORDS:
                raise Invalid(f"line {n}: {c} for {idc} {rid!r} is empty/NaN ({v!r})")
        sub[rid] = vals
    unknown = [k for k in sub if k not in answers]
    if unknown:
        missing = [k for k in answers if k not in sub]
        raise Invalid(
            f"{len(unknown)} {idc} value(s) not in test.csv, e.g. {unknown[:5]}; "
            f"{len(missing)} test {idc} value(s) missing, e.g. {missing[:5]}"
        )
    return sub


def score_submission(cfg: dict, answers: dict[str, list[str]], sub: dict[str, list[str]]) -> float:
    metric, kind, idc = cfg["metric"], cfg["prediction"], cfg["id_column"]
    cols = cfg["submission_columns"]
    ids = list(answers)

    if kind == "label":
        labels, tgt = cfg["labels"], cols[0]
        preds = []
        for i in ids:
            lab = _normalize_label(sub[i][0], labels)
            if lab is None:
                raise Invalid(f"{tgt} for {idc} {i!r} is {sub[i][0]!r}; must be one of {labels}")
            preds.append(lab)
        truth = [answers[i][0] for i in ids]
        if metric == "qwk":
            rank = {lab: k for k, lab in enumerate(labels)}
            return quadratic_weighted_kappa(
                [rank[t] for t in truth], [rank[p] for p in preds], len(labels)
            )
        return (macro_f1 if metric == "macro_f1" else accuracy)(truth, preds)

    if kind == "probability":
        probs = [_parse_prob(sub[i][0], f"{cols[0]} for {idc} {i!r}") for i in ids]
        truth = [int(answers[i][0]) for i in ids]
        return (log_loss if metric == "log_loss" else roc_auc)(truth, probs)

    if kind == "class_probabilities":
        rank = {lab: k for k, lab in enumerate(cols)}
        probs = [
            [_parse_prob(v, f"{c} for {idc} {i!r}") for c, v in zip(cols, sub[i], strict=True)]
            for i in ids
        ]
        truth = [rank[answers[i][0]] for i in ids]
        return multiclass_log_loss(truth, probs)

    if kind == "label_probabilities":
        t_cols, p_cols = [], []
        for j, c in enumerate(cols):
            p_cols.append([_parse_prob(sub[i][j], f"{c} for {idc} {i!r}") for i in ids])
            t_cols.append([int(answers[i][j]) for i in ids])
        return mean_column_auc(t_cols, p_cols)

    if kind == "numbers":
        t_cols, p_cols = [], []
        for j, c in enumerate(cols):
            p_cols.append([_parse_float(sub[i][j], f"{c} for {idc} {i!r}") for i in ids])
            t_cols.append([float(answers[i][j]) for i in ids])
        return mcrmse(t_cols, p_cols)

    raise ValueError(f"unknown prediction kind {kind!r}")


def grade(slug: str, submission: str | Path, comps: str | Path | None = None) -> dict:
    """Return the result dict; raises FileNotFoundError for an unknown slug."""
    comps = Path(comps) if comps else HERE / "comps"
    cfg = load_config(slug, comps)
    answers = read_answers(cfg, comps)
    result = {
        "slug": slug,
        "metric": cfg["metric"],
        "score": None,
        "valid": False,
        "higher_is_better": cfg["higher_is_better"],
        "error": None,
    }
    try:
        sub = read_submission(cfg, Path(submission), answers)
        result["score"] = score_submission(cfg, answers, sub)
        result["valid"] = True
    except Invalid as e:
        result["error"] = str(e)
    return result


# --------------------------------------------------------------------------------------
# Self-test of the metric code on hand-checked values
# --------------------------------------------------------------------------------------
def selftest(quiet: bool = False) -> int:
    def close(a, b, tol=1e-12):
        return abs(a - b) <= tol

    checks = [
        ("accuracy", close(accuracy(["a", "b", "a", "c"], ["a", "b", "b", "c"]), 0.75)),
        # a: tp1 fp0 fn1 -> 2/3 ; b: tp1 fp1 fn0 -> 2/3
        ("macro_f1", close(macro_f1(["a", "a", "b"], ["a", "b", "b"]), 2 / 3)),
        ("macro_f1 missing class", close(macro_f1(["a", "b"], ["a", "a"]), (2 / 3 + 0) / 2)),
        ("qwk perfect", close(quadratic_weighted_kappa([0, 1, 2, 3], [0, 1, 2, 3], 4), 1.0)),
        ("qwk constant", close(quadratic_weighted_kappa([0, 1, 2, 3], [1, 1, 1, 1], 4), 0.0)),
        # O = [[1,0],[1,0]] -> num = 1 ; E = [[1,0],[1,0]] -> den = 1 -> 0
        ("qwk 2x2", close(quadratic_weighted_kappa([0, 1], [0, 0], 2), 0.0)),
        # reversed ratings: maximal disagreement
        ("qwk reversed", quadratic_weighted_kappa([0, 1, 2], [2, 1, 0], 3) < 0),
        ("roc_auc", close(roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 0.75)),
        ("roc_auc ties", close(roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]), 0.5)),
        (
            "mean_column_auc",
            close(mean_column_auc([[0, 1], [1, 0]], [[0.1, 0.9], [0.1, 0.9]]), 0.5),
        ),
        ("log_loss", close(log_loss([1, 0], [0.5, 0.5]), math.log(2))),
        ("log_loss clip", close(log_loss([1], [0.0]), -math.log(EPS))),
        (
            "mlogloss uniform",
            close(multiclass_log_loss([0, 2], [[1, 1, 1], [2, 2, 2]]), math.log(3)),
        ),
        ("mlogloss rescale", close(multiclass_log_loss([1], [[0.2, 0.6]]), -math.log(0.75))),
        ("mlogloss zero row", close(multiclass_log_loss([0], [[0.0, 0.0]]), math.log(2))),
        ("rmse", close(rmse([1.0, 2.0, 3.0], [1.0, 2.0, 5.0]), math.sqrt(4 / 3))),
        (
            "mcrmse",
            close(
                mcrmse([[0.0, 0.0], [1.0, 1.0]], [[1.0, 1.0], [1.0, 3.0]]), (1.0 + math.sqrt(2)) / 2
            ),
        ),
        ("label 1.0", _normalize_label("1.0", ["0", "1"]) == "1"),
        ("label case", _normalize_label("vf", ["VF", "F", "M", "L"]) == "VF"),
        ("label bad", _normalize_label("XL", ["VF", "F", "M", "L"]) is None),
    ]
    bad = [name for name, ok in checks if not ok]
    if not quiet:
        for name, ok in checks:
            print(f"{'ok  ' if ok else 'FAIL'} {name}")
        print(f"{len(checks) - len(bad)} passed, {len(bad)} failed")
    return 1 if bad else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Grade a submission for a local competition (any submission shape)."
    )
    ap.add_argument("slug", nargs="?")
    ap.add_argument("submission", nargs="?")
    ap.add_argument(
        "--comps",
        type=Path,
        default=HERE / "comps",
        help="competitions folder (default: comps/ next to this script)",
    )
    ap.add_argument("--list", action="store_true", help="list competitions and exit")
    ap.add_argument("--selftest", action="store_true", help="check the metric code and exit")
    args = ap.parse_args(argv)
    if args.selftest:
        return selftest()
    if args.list:
        for p in sorted(args.comps.glob("*/config.json")):
            c = json.loads(p.read_text(encoding="utf-8"))
            print(f"{c['slug']:20s} {c['task']:24s} {c['metric']}")
        return 0
    if not args.slug or not args.submission:
        ap.print_usage(sys.stderr)
        print("grade.py: error: need <slug> and <submission.csv>", file=sys.stderr)
        return 2
    try:
        result = grade(args.slug, args.submission, args.comps)
    except FileNotFoundError as e:
        print(
            json.dumps(
                {
                    "slug": args.slug,
                    "metric": None,
                    "score": None,
                    "valid": False,
                    "higher_is_better": None,
                    "error": str(e),
                }
            )
        )
        return 2
    print(json.dumps(result))
    return 0 if result["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
