#!/usr/bin/env python3
"""Run a solution on every local competition inside the sandbox and grade it.

Usage:
    python3 tools/eval/run_eval.py [SOLUTION] [--compare OTHER] [--comps DIR] [--only SLUG,...]
                                   [--policy FILE] [--bin PATH] [--keep DIR] [--json FILE]
                                   [--native PYTHON] [--solve-policy FILE]

SOLUTION and OTHER are each either one Python script, run on every competition, or a folder
holding one script per competition, `<slug>.py` (e.g. the baseline generator's output); a
competition without a script there is reported as missing.  SOLUTION defaults to
tools/eval/reference_hgb.py.  With --compare, both are run and the better score per
competition is named, respecting the metric's direction (an invalid or missing submission
loses to a valid one).  SOLUTION (or OTHER) may also be the word `baseline`: each competition is
then solved end to end, `kaggle-solver solve DIR/<slug>/public --generator baseline --policy
SOLVE_POLICY` (default tools/eval/single-shot.toml: a single shot on the WASI guest), and that
solve's wall time is the side's time (--keep keeps its solution.py beside the submission).

With --native PYTHON, reference_hgb.py is also run natively, `PYTHON reference_hgb.py
DIR/<slug>/public TMP` with one thread (OMP_NUM_THREADS=1, as in the guest), and each side's
line gains its time over that native time (`x native`): the cost of a solution against the
reference's own.  PYTHON needs numpy, pandas and scikit-learn (the guest's versions: 2.x, 3.0,
1.9).

Each run is `kaggle-solver sandbox run --policy POLICY --input DIR/<slug>/public --output TMP
SCRIPT`, then `python3 grade.py <slug> TMP/submission.csv --comps DIR` with the grade.py next to
this file.  One line is printed per competition while it runs, and a JSON summary at the end
(also written to --json FILE).  Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Vendored next to this script, so the tool runs from any checkout.
GRADE = Path(__file__).resolve().parent / "grade.py"
# The grader of every submission shape, for a competition whose config names its columns.
GRADE_SHAPES = Path(__file__).resolve().parent / "grade_shapes.py"


def grader_for(comps: Path, slug: str) -> Path:
    try:
        config = json.loads((comps / slug / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return GRADE
    return GRADE_SHAPES if "submission_columns" in config else GRADE


# The side that solves each competition with the baseline generator instead of running a script.
BASELINE = Path("baseline")


def resolved(side: Path) -> Path:
    return BASELINE if side == BASELINE else side.resolve()


def script_for(solution: Path, slug: str) -> Path | None:
    if solution.is_dir():
        p = solution / f"{slug}.py"
        return p if p.is_file() else None
    return solution


def run_one(args, solution: Path, slug: str, outdir: Path) -> dict:
    res = {
        "slug": slug,
        "score": None,
        "valid": False,
        "seconds": None,
        "cpu_seconds": None,
        "sandbox_seconds": None,
        "error": None,
        "peak_memory_mb": None,
        "script": None,
    }
    script = script_for(solution, slug)
    if script is None:
        res["error"] = f"no script {solution}/{slug}.py"
        return res
    res["script"] = str(script)
    fresh(outdir)
    cmd = [
        str(args.bin),
        "sandbox",
        "run",
        "--policy",
        str(args.policy),
        "--input",
        str(args.comps / slug / "public"),
        "--output",
        str(outdir),
        str(script),
    ]
    proc = timed(cmd, args.timeout, res)
    if proc is None:
        return res
    line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    try:
        sandbox = json.loads(line)
    except json.JSONDecodeError:
        res["error"] = f"sandbox exit {proc.returncode}: {(proc.stderr or line)[-500:]}"
        return res
    res["sandbox_seconds"] = round((sandbox.get("wall_ms") or 0) / 1000, 1)
    res["peak_memory_mb"] = round((sandbox.get("peak_memory_bytes") or 0) / 2**20)
    res["stdout_tail"] = (sandbox.get("stdout") or "")[-300:]
    if sandbox.get("exit_code") != 0:
        err = sandbox.get("error") or {}
        what = (
            sandbox.get("limit")
            and f"limit {sandbox['limit']}"
            or (err and f"{err.get('type')}: {err.get('message')} (line {err.get('line')})")
            or sandbox.get("trap")
            or sandbox.get("stderr", "")[-300:]
        )
        res["error"] = f"sandbox exit {sandbox.get('exit_code')}: {what}"
        return res
    return grade(args, slug, outdir / "submission.csv", res)


def timed(cmd: list[str], timeout, res: dict, env=None):
    """`cmd`'s completed process, with its wall time (`seconds`) and the CPU time it and its
    children used (`cpu_seconds`: on a shared machine the steadier of the two) in `res`; None
    when it timed out (`res["error"]` says so)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        proc = None
        res["error"] = f"timed out after {timeout}s"
    res["seconds"] = round(time.monotonic() - t0, 1)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    res["cpu_seconds"] = round(cpu, 1)
    return proc


def grade(args, slug: str, submission: Path, res: dict) -> dict:
    """`res` with the score of `submission` by the competition's grader."""
    g = subprocess.run(
        [
            sys.executable,
            str(grader_for(args.comps, slug)),
            slug,
            str(submission),
            "--comps",
            str(args.comps),
        ],
        capture_output=True,
        text=True,
    )
    try:
        graded = json.loads(g.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        res["error"] = f"grade.py exit {g.returncode}: {g.stderr[-300:]}"
        return res
    res.update(score=graded["score"], valid=graded["valid"], error=graded["error"])
    return res


def fresh(outdir: Path) -> None:
    if outdir.exists():
        shutil.rmtree(outdir)
    outdir.mkdir(parents=True)


def solve_one(args, slug: str, outdir: Path) -> dict:
    """The baseline generator's whole solve of `slug`, timed, and its submission graded."""
    res = {"slug": slug, "score": None, "valid": False, "seconds": None, "error": None}
    res["script"] = str(outdir / "solution.py")
    fresh(outdir)
    cmd = [
        str(args.bin),
        "solve",
        str(args.comps / slug / "public"),
        "--out",
        str(outdir),
        "--generator",
        "baseline",
        "--policy",
        str(args.solve_policy),
    ]
    proc = timed(cmd, args.timeout, res)
    if proc is None:
        return res
    if proc.returncode != 0:
        res["error"] = f"solve exit {proc.returncode}: {proc.stderr[-500:]}"
        return res
    return grade(args, slug, outdir / "submission.csv", res)


def native_one(args, slug: str, outdir: Path) -> dict:
    """reference_hgb.py run natively by `args.native` on one thread, timed and graded."""
    res = {"slug": slug, "score": None, "valid": False, "seconds": None, "error": None}
    fresh(outdir)
    script = Path(__file__).resolve().parent / "reference_hgb.py"
    cmd = [str(args.native), str(script), str(args.comps / slug / "public"), str(outdir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = timed(cmd, args.timeout, res, env)
    if proc is None:
        return res
    if proc.returncode != 0:
        res["error"] = f"native exit {proc.returncode}: {proc.stderr[-500:]}"
        return res
    return grade(args, slug, outdir / "submission.csv", res)


def ratio(side: dict, native: dict | None, key: str = "seconds") -> float | None:
    """A side's time (`key`: wall or CPU seconds) over the reference's native time."""
    if not native or not native.get(key) or side.get(key) is None:
        return None
    return round(side[key] / native[key], 1)


def better(a: dict, b: dict, higher: bool) -> str:
    if a["valid"] and not b["valid"]:
        return "A"
    if b["valid"] and not a["valid"]:
        return "B"
    if not a["valid"]:
        return "-"
    if a["score"] == b["score"]:
        return "tie"
    return "A" if (a["score"] > b["score"]) == higher else "B"


def fmt(r: dict) -> str:
    score = f"{r['score']:.5f}" if r["score"] is not None else "-"
    secs = f"{r['seconds']:.1f}s" if r["seconds"] is not None else "-"
    cpu = f" cpu {r['cpu_seconds']:.1f}s" if r.get("cpu_seconds") is not None else ""
    return f"{score:>11s} {'valid' if r['valid'] else 'INVALID':7s} {secs:>7s}{cpu}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "solution",
        nargs="?",
        type=Path,
        default=REPO / "tools" / "eval" / "reference_hgb.py",
        help="a script, a folder of <slug>.py, or `baseline` (default: reference_hgb.py)",
    )
    ap.add_argument(
        "--compare", type=Path, help="a second script, folder or `baseline` to compare with"
    )
    ap.add_argument(
        "--native",
        type=Path,
        help="a python3 with numpy, pandas and scikit-learn: also time reference_hgb.py natively",
    )
    ap.add_argument(
        "--solve-policy",
        type=Path,
        default=Path(__file__).resolve().parent / "single-shot.toml",
        help="the policy of `baseline` solves (default: tools/eval/single-shot.toml)",
    )
    ap.add_argument("--comps", type=Path, default=REPO / "target" / "eval-comps")
    ap.add_argument("--only", help="comma-separated slugs (default: every competition)")
    ap.add_argument("--policy", type=Path, default=REPO / "policies" / "large.toml")
    ap.add_argument("--bin", type=Path, default=REPO / "target" / "debug" / "kaggle-solver")
    ap.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds per sandbox run (default: the policy's own limit)",
    )
    ap.add_argument("--keep", type=Path, help="keep submissions in KEEP/{A,B}/<slug>/")
    ap.add_argument("--json", type=Path, help="also write the summary JSON here")
    args = ap.parse_args(argv)
    args.comps, args.policy, args.bin, args.solve_policy = (
        args.comps.resolve(),
        args.policy.resolve(),
        args.bin.resolve(),
        args.solve_policy.resolve(),
    )

    slugs = sorted(p.parent.name for p in args.comps.glob("*/config.json"))
    if args.only:
        wanted = args.only.split(",")
        unknown = [s for s in wanted if s not in slugs]
        if unknown:
            ap.error(f"unknown competition(s) {unknown}; known: {slugs}")
        slugs = [s for s in slugs if s in wanted]
    if not slugs:
        ap.error(f"no competitions in {args.comps} (run tools/eval/make_competitions.py)")
    if args.native and shutil.which(str(args.native)) is None:
        ap.error(f"--native {args.native} is not an executable")
    sides = {"A": resolved(args.solution)}
    if args.compare:
        sides["B"] = resolved(args.compare)
    for name, path in sides.items():
        if path != BASELINE and not path.exists():
            ap.error(f"{path} does not exist")
        print(f"# {name} = {path}", flush=True)

    work = Path(tempfile.mkdtemp(prefix="ks-eval-"))
    rows = []
    try:
        for slug in slugs:
            cfg = json.loads((args.comps / slug / "config.json").read_text(encoding="utf-8"))
            row = {
                "slug": slug,
                "task": cfg.get("task", cfg["prediction"]),
                "metric": cfg["metric"],
                "higher_is_better": cfg["higher_is_better"],
            }
            for name, path in sides.items():
                out = (args.keep / name / slug) if args.keep else work / name / slug
                if path == BASELINE:
                    row[name] = solve_one(args, slug, out)
                else:
                    row[name] = run_one(args, path, slug, out)
            if args.native:
                out = (args.keep / "native" / slug) if args.keep else work / "native" / slug
                row["native"] = native_one(args, slug, out)
            line = f"{slug:24s} {cfg['metric']:9s} {fmt(row['A'])}"
            for name in sides:
                row[name]["x_native"] = ratio(row[name], row.get("native"))
                row[name]["x_native_cpu"] = ratio(row[name], row.get("native"), "cpu_seconds")
            if args.native:
                line += f" {row['A']['x_native'] or '-'}x ({row['A']['x_native_cpu'] or '-'}x cpu)"
            if "B" in sides:
                row["better"] = better(row["A"], row["B"], cfg["higher_is_better"])
                line += f" | {fmt(row['B'])}"
                if args.native:
                    line += (
                        f" {row['B']['x_native'] or '-'}x ({row['B']['x_native_cpu'] or '-'}x cpu)"
                    )
                line += f" | better: {row['better']}"
            if args.native:
                line += f" | native {fmt(row['native'])}"
            print(line, flush=True)
            for name in [*sides, "native"]:
                if row.get(name) and row[name]["error"]:
                    print(f"    {name}: {row[name]['error']}", flush=True)
            rows.append(row)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    if args.native:
        summary_native = round(sum(r["native"]["seconds"] or 0 for r in rows), 1)
    summary = {
        "comps": str(args.comps),
        "policy": str(args.policy),
        "sides": {k: str(v) for k, v in sides.items()},
        "results": rows,
    }
    for name in sides:
        rs = [r[name] for r in rows]
        summary[f"{name}_valid"] = sum(r["valid"] for r in rs)
        summary[f"{name}_seconds"] = round(sum(r["seconds"] or 0 for r in rs), 1)
    if args.native:
        summary["native_seconds"] = summary_native
    if "B" in sides:
        summary["wins"] = {k: sum(r["better"] == k for r in rows) for k in ("A", "B", "tie", "-")}
    text = json.dumps(summary)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0 if all(r[n]["valid"] for r in rows for n in sides) else 1


if __name__ == "__main__":
    sys.exit(main())
