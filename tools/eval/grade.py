#!/usr/bin/env python3
# Vendored from the project's shared/tools/grade.py: reformatted by ruff, zips made strict.
"""Grade a submission for one local competition (MLE-bench style layout).

Usage:
    python3 grade.py <slug> <submission.csv> [--comps DIR]
    python3 grade.py --list
    python3 grade.py --selftest

Prints one JSON line:
    {"slug": ..., "metric": ..., "score": <float or null>, "valid": <bool>,
     "higher_is_better": <bool>, "error": <null or message>}
Exit status: 0 valid, 1 invalid submission, 2 usage error (unknown slug, missing files).

Standard library only (Python 3.11).  Metrics: accuracy, roc_auc, rmse, rmsle, mae,
macro_f1, log_loss (binary), each written to agree with scikit-learn's definitions.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


class Invalid(Exception):
    """The submission does not meet the format; the message says why."""


# --------------------------------------------------------------------------------------
# Metrics (pure Python)
# --------------------------------------------------------------------------------------
def accuracy(y_true: list, y_pred: list) -> float:
    return sum(1 for t, p in zip(y_true, y_pred, strict=True) if t == p) / len(y_true)


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
    rank_sum = sum(r for r, t in zip(ranks, y_true, strict=True) if t == 1)
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def rmse(y_true: list[float], y_pred: list[float]) -> float:
    return math.sqrt(
        math.fsum((p - t) ** 2 for t, p in zip(y_true, y_pred, strict=True)) / len(y_true)
    )


def rmsle(y_true: list[float], y_pred: list[float]) -> float:
    return math.sqrt(
        math.fsum((math.log1p(p) - math.log1p(t)) ** 2 for t, p in zip(y_true, y_pred, strict=True))
        / len(y_true)
    )


def mae(y_true: list[float], y_pred: list[float]) -> float:
    return math.fsum(abs(p - t) for t, p in zip(y_true, y_pred, strict=True)) / len(y_true)


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


def log_loss(y_true: list[int], probs: list[float], eps: float = 1e-15) -> float:
    total = 0.0
    for t, p in zip(y_true, probs, strict=True):
        p = min(max(p, eps), 1 - eps)
        total += -math.log(p) if t == 1 else -math.log(1 - p)
    return total / len(y_true)


METRIC_FUNCS = {
    "accuracy": accuracy,
    "roc_auc": roc_auc,
    "rmse": rmse,
    "rmsle": rmsle,
    "mae": mae,
    "macro_f1": macro_f1,
    "log_loss": log_loss,
}
HIGHER_IS_BETTER = {
    "accuracy": True,
    "roc_auc": True,
    "macro_f1": True,
    "rmse": False,
    "rmsle": False,
    "mae": False,
    "log_loss": False,
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
    return json.loads(path.read_text(encoding="utf-8"))


def read_answers(cfg: dict, comps: Path) -> dict[str, str]:
    path = comps / cfg["slug"] / "private" / "answers.csv"
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    ii, ti = header.index(cfg["id_column"]), header.index(cfg["target_column"])
    return {r[ii]: r[ti] for r in body}


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


def _normalize_label(value: str, labels: list[str]) -> str | None:
    """Map a submitted label onto the canonical label set, tolerating 1.0 for 1 and
    true/false in any case (or 1/0) for True/False.  None when it matches nothing."""
    if value in labels:
        return value
    low = value.lower()
    if set(labels) == {"False", "True"}:
        if low in ("true", "1", "1.0"):
            return "True"
        if low in ("false", "0", "0.0"):
            return "False"
        return None
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


def read_submission(cfg: dict, path: Path, answers: dict[str, str]) -> dict[str, str]:
    idc, tgt = cfg["id_column"], cfg["target_column"]
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
    expected = [idc, tgt]
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
        raise Invalid(
            f"header must be exactly {expected} (any order): "
            + "; ".join(parts)
            + f"; got {header}"
        )
    ii, ti = header.index(idc), header.index(tgt)
    body = rows[1:]
    if len(body) != len(answers):
        raise Invalid(f"expected {len(answers)} data rows (one per test {idc}), got {len(body)}")
    sub: dict[str, str] = {}
    for n, r in enumerate(body, start=2):
        if len(r) != len(header):
            raise Invalid(f"line {n}: expected {len(header)} fields, got {len(r)}")
        rid, val = r[ii].strip(), r[ti].strip()
        if rid in sub:
            raise Invalid(f"line {n}: duplicate {idc} {rid!r}")
        if val == "" or val.lower() in _NAN_WORDS:
            raise Invalid(f"line {n}: {tgt} for {idc} {rid!r} is empty/NaN ({val!r})")
        sub[rid] = val
    unknown = [k for k in sub if k not in answers]
    if unknown:
        missing = [k for k in answers if k not in sub]
        raise Invalid(
            f"{len(unknown)} {idc} value(s) not in test.csv, e.g. {unknown[:5]}; "
            f"{len(missing)} test {idc} value(s) missing, e.g. {missing[:5]}"
        )
    return sub


def score_submission(cfg: dict, answers: dict[str, str], sub: dict[str, str]) -> float:
    metric, kind, tgt = cfg["metric"], cfg["prediction"], cfg["target_column"]
    ids = list(answers)
    if kind == "label":
        labels = cfg["labels"]
        preds = []
        for i in ids:
            lab = _normalize_label(sub[i], labels)
            if lab is None:
                raise Invalid(
                    f"{tgt} for {cfg['id_column']} {i!r} is {sub[i]!r}; must be one of {labels}"
                )
            preds.append(lab)
        truth = [answers[i] for i in ids]
        return METRIC_FUNCS[metric](truth, preds)
    if kind == "probability":
        probs = []
        for i in ids:
            p = _parse_float(sub[i], f"{tgt} for {cfg['id_column']} {i!r}")
            if not 0.0 <= p <= 1.0:
                raise Invalid(
                    f"{tgt} for {cfg['id_column']} {i!r} is {p}; probabilities must lie in [0, 1]"
                )
            probs.append(p)
        truth = [int(answers[i]) for i in ids]
        return METRIC_FUNCS[metric](truth, probs)
    preds = []
    for i in ids:
        x = _parse_float(sub[i], f"{tgt} for {cfg['id_column']} {i!r}")
        if metric == "rmsle" and x < 0:
            raise Invalid(
                f"{tgt} for {cfg['id_column']} {i!r} is {x}; rmsle needs non-negative predictions"
            )
        preds.append(x)
    truth = [float(answers[i]) for i in ids]
    return METRIC_FUNCS[metric](truth, preds)


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
        ("roc_auc", close(roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 0.75)),
        ("roc_auc ties", close(roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]), 0.5)),
        ("roc_auc tie mix", close(roc_auc([0, 1, 1], [0.2, 0.2, 0.9]), 0.75)),
        ("rmse", close(rmse([1.0, 2.0, 3.0], [1.0, 2.0, 5.0]), math.sqrt(4 / 3))),
        ("rmsle", close(rmsle([0.0, math.e - 1], [math.e - 1, 0.0]), 1.0)),
        ("mae", close(mae([1.0, 2.0, 3.0], [2.0, 2.0, 1.0]), 1.0)),
        # classes a: tp1 fp0 fn1 -> 2/3 ; b: tp1 fp1 fn0 -> 2/3 ; c: tp0 fp0 fn0 absent
        ("macro_f1", close(macro_f1(["a", "a", "b"], ["a", "b", "b"]), 2 / 3)),
        ("macro_f1 missing class", close(macro_f1(["a", "b"], ["a", "a"]), (2 / 3 + 0) / 2)),
        ("log_loss", close(log_loss([1, 0], [0.5, 0.5]), math.log(2))),
        ("log_loss clip", log_loss([1], [0.0]) < 40),
        ("label 1.0", _normalize_label("1.0", ["0", "1"]) == "1"),
        ("label true", _normalize_label("true", ["False", "True"]) == "True"),
        ("label bad", _normalize_label("maybe", ["False", "True"]) is None),
    ]
    bad = [name for name, ok in checks if not ok]
    if not quiet:
        for name, ok in checks:
            print(f"{'ok  ' if ok else 'FAIL'} {name}")
        print(f"{len(checks) - len(bad)} passed, {len(bad)} failed")
    return 1 if bad else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Grade a submission for a local competition.")
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
            print(f"{c['slug']:22s} {c['task']:10s} {c['metric']}")
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
                {"slug": args.slug, "metric": None, "score": None, "valid": False, "error": str(e)}
            )
        )
        return 2
    print(json.dumps(result))
    return 0 if result["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
