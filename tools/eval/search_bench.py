#!/usr/bin/env python3
"""Single shot versus the search on the local competitions, in one run, against the reference.

Usage:
    python3 tools/eval/search_bench.py [--comps DIR] [--only SLUG,...] [--bin PATH]
                                       [--budget DURATION] [--folds N] [--json FILE]

For each competition: `kaggle-solver solve DIR/<slug>/public --generator baseline` twice, with
`[search] candidates = 1` (today's single shot) and with the default `[search]` (its time budget
overridden by --budget and its folds by --folds when given), each submission graded by grade.py
(or grade_shapes.py); the reference (tools/eval/reference_hgb.py) runs through run_eval.py on
the same competitions.
Prints per competition the three scores, each side's error reduction relative to the reference
and the wall time of each solve, then the averages and a JSON summary.

Error is 1 - score for accuracy, ROC AUC, F1, kappa, R², Pearson and MAP@K, and the score
itself for losses; a reference with zero error counts as no gain. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
from run_eval import grader_for  # noqa: E402


def error(higher: bool, score: float) -> float:
    """1 - score for a score (every one the graders know is at most 1), the loss itself."""
    return 1.0 - score if higher else score


def reduction(higher: bool, ours: float | None, reference: float | None) -> float | None:
    """Relative error reduction against the reference: 0 when the reference's error is zero."""
    if ours is None or reference is None:
        return None
    ref = error(higher, reference)
    if ref <= 0:
        return 0.0
    return (ref - error(higher, ours)) / ref


def solve(args, slug: str, policy: Path, out: Path) -> dict:
    started = time.monotonic()
    proc = subprocess.run(
        [
            str(args.bin),
            "solve",
            str(args.comps / slug / "public"),
            "--out",
            str(out),
            "--generator",
            "baseline",
            "--policy",
            str(policy),
        ],
        capture_output=True,
        text=True,
    )
    res = {"seconds": round(time.monotonic() - started, 1), "score": None, "valid": False}
    # The whole log beside the submission: each candidate's host score and what was submitted.
    out.mkdir(parents=True, exist_ok=True)
    (out / "solve.log").write_text(proc.stderr, encoding="utf-8")
    tail = proc.stderr.strip().splitlines()[-3:]
    res["log_tail"] = tail
    sub = out / "submission.csv"
    if proc.returncode != 0 or not sub.is_file():
        res["error"] = f"solve exit {proc.returncode}: {' | '.join(tail)}"
        return res
    g = subprocess.run(
        [
            sys.executable,
            str(grader_for(args.comps, slug)),
            slug,
            str(sub),
            "--comps",
            str(args.comps),
        ],
        capture_output=True,
        text=True,
    )
    graded = json.loads(g.stdout.strip().splitlines()[-1])
    res.update(score=graded["score"], valid=graded["valid"], error=graded["error"])
    return res


def reference_scores(args, slugs: list[str], work: Path) -> dict:
    out = work / "reference.json"
    subprocess.run(
        [
            sys.executable,
            str(HERE / "run_eval.py"),
            str(HERE / "reference_hgb.py"),
            "--comps",
            str(args.comps),
            "--only",
            ",".join(slugs),
            "--bin",
            str(args.bin),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    summary = json.loads(out.read_text(encoding="utf-8"))
    return {r["slug"]: r["A"] for r in summary["results"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--comps", type=Path, default=REPO / "target" / "eval-comps")
    ap.add_argument("--only", help="comma-separated slugs (default: every competition)")
    ap.add_argument("--bin", type=Path, default=REPO / "target" / "debug" / "kaggle-solver")
    ap.add_argument(
        "--budget", help="the search's time budget, e.g. \"10m\" (default: the policy's)"
    )
    ap.add_argument(
        "--folds", type=int, help="the folds each candidate is scored on (default: the policy's)"
    )
    ap.add_argument("--json", type=Path, help="also write the summary JSON here")
    args = ap.parse_args()
    slugs = sorted(p.parent.name for p in args.comps.glob("*/config.json"))
    if args.only:
        wanted = args.only.split(",")
        slugs = [s for s in wanted if s in slugs]
    work = Path(tempfile.mkdtemp(prefix="ks-search-bench-"))
    single = work / "single.toml"
    single.write_text("[search]\ncandidates = 1\n", encoding="utf-8")
    search = work / "search.toml"
    budget = f'time-budget = "{args.budget}"\n' if args.budget else ""
    folds = f"folds = {args.folds}\n" if args.folds else ""
    search.write_text(f"[search]\n{budget}{folds}", encoding="utf-8")

    reference = reference_scores(args, slugs, work)
    rows = []
    print(
        f"{'competition':24s} {'metric':10s} {'reference':>10s} {'single':>10s} {'search':>10s}"
        f" {'gain 1':>7s} {'gain S':>7s} {'s 1':>6s} {'s S':>6s}",
        flush=True,
    )
    for slug in slugs:
        cfg = json.loads((args.comps / slug / "config.json").read_text(encoding="utf-8"))
        metric, higher = cfg["metric"], cfg["higher_is_better"]
        one = solve(args, slug, single, work / "single" / slug)
        many = solve(args, slug, search, work / "search" / slug)
        ref = reference.get(slug, {})
        ref_score = ref.get("score") if ref.get("valid") else None
        row = {
            "slug": slug,
            "metric": metric,
            "higher_is_better": higher,
            "reference": ref_score,
            "single": one,
            "search": many,
            "single_reduction": reduction(
                higher, one["score"] if one["valid"] else None, ref_score
            ),
            "search_reduction": reduction(
                higher, many["score"] if many["valid"] else None, ref_score
            ),
        }
        rows.append(row)

        def show(x):
            return f"{x:10.5f}" if isinstance(x, float) else f"{'-':>10s}"

        def pct(x):
            return f"{100 * x:6.1f}%" if x is not None else f"{'-':>7s}"

        print(
            f"{slug:24s} {metric:10s} {show(ref_score)} {show(one['score'])} {show(many['score'])}"
            f" {pct(row['single_reduction'])} {pct(row['search_reduction'])}"
            f" {one['seconds']:6.0f} {many['seconds']:6.0f}",
            flush=True,
        )
        for name, side in (("single", one), ("search", many)):
            if side.get("error"):
                print(f"    {name}: {side['error']}", flush=True)

    def mean(key):
        values = [r[key] for r in rows if r[key] is not None]
        return sum(values) / len(values) if values else None

    summary = {
        "comps": str(args.comps),
        "budget": args.budget,
        "folds": args.folds,
        "results": rows,
        "single_mean_reduction": mean("single_reduction"),
        "search_mean_reduction": mean("search_reduction"),
        "single_seconds": round(sum(r["single"]["seconds"] for r in rows), 1),
        "search_seconds": round(sum(r["search"]["seconds"] for r in rows), 1),
    }
    print(
        "mean error reduction vs the reference: single shot"
        f" {100 * (summary['single_mean_reduction'] or 0):.1f}%,"
        f" search {100 * (summary['search_mean_reduction'] or 0):.1f}%;"
        f" wall time {summary['single_seconds']:.0f} s / {summary['search_seconds']:.0f} s",
        flush=True,
    )
    print(json.dumps(summary))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
