#!/usr/bin/env python3
"""A built competition in Kaggle's other common file form: train and test as parquet.

Usage (a python3 with pyarrow; the make_competitions.py folder built first):
    target/eval-venv/bin/pip install pyarrow==26.0.1
    target/eval-venv/bin/python tools/eval/parquet_competition.py [--comps DIR] [--base SLUG]

Writes COMPS/<base>-parquet/: the base's rows, split, ids and answers, with `train.csv` and
`test.csv` shipped as `train.parquet` and `test.parquet` (zstd-compressed; integer, float and
string columns typed, empty cells as nulls), `sample_submission.csv` as it is, so grade.py and
the base's reference score apply. make_competitions.py stays standard-library only: parquet
needs a library, and pyarrow is the one Kaggle's own files are written with.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[2]


def column_type(values: list[str]) -> pa.DataType:
    """int64 when every non-empty cell is a whole number, float64 when a number, else string."""
    present = [v for v in values if v != ""]
    try:
        for v in present:
            int(v)
        return pa.int64()
    except ValueError:
        pass
    try:
        for v in present:
            float(v)
        return pa.float64()
    except ValueError:
        return pa.string()


def table_of(path: Path) -> pa.Table:
    """The CSV at `path` as a typed table, empty cells as nulls."""
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    arrays = []
    for j in range(len(header)):
        values = [r[j] for r in body]
        kind = column_type(values)
        cast = {pa.int64(): int, pa.float64(): float}.get(kind, str)
        arrays.append(pa.array([None if v == "" else cast(v) for v in values], type=kind))
    return pa.table(arrays, names=header)


def build(comps: Path, base: str) -> Path:
    """Writes COMPS/<base>-parquet from COMPS/<base>; returns its folder."""
    source, slug = comps / base, f"{base}-parquet"
    dest = comps / slug
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source / "private", dest / "private")
    (dest / "public").mkdir(parents=True)
    for name in ("train", "test"):
        table = table_of(source / "public" / f"{name}.csv")
        pq.write_table(table, dest / "public" / f"{name}.parquet", compression="zstd")
    shutil.copy(source / "public" / "sample_submission.csv", dest / "public")
    config = json.loads((source / "config.json").read_text())
    config["slug"] = slug
    config["info"]["form"] = "parquet"
    config["info"]["base"] = base
    (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    description = (source / "public" / "description.md").read_text()
    note = (
        "\n\n## Files in this form\n\nThe training and test tables are shipped as parquet, "
        "`train.parquet` and `test.parquet` (the same columns); `sample_submission.csv` is CSV.\n"
    )
    description = description.replace("train.csv", "train.parquet").replace(
        "test.csv", "test.parquet"
    )
    (dest / "public" / "description.md").write_text(description + note)
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--comps", type=Path, default=REPO / "target" / "eval-comps")
    ap.add_argument("--base", default="ontario-wages")
    args = ap.parse_args()
    print(f"wrote {build(args.comps, args.base)}")


if __name__ == "__main__":
    main()
