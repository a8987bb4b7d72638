"""The baseline's text features and text candidate on a large synthetic table: time and memory.

Usage (natively, with numpy, pandas, scipy and scikit-learn installed; the WASI guest is
several times slower):
    python3 tools/bench/text_features.py [ROWS]

Builds ROWS cells (default 100,000) of 60 Zipf-distributed words from a 20,000-word random
vocabulary, 5 random classes for the first three quarters, then times `text_matrix` (the
TF-IDF features, cells cut by the template's character budget) and `text_candidate` (the folds
and the refit) and prints the process's peak memory.
"""

import importlib.util
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

TEMPLATE = Path(__file__).resolve().parents[2] / "host/src/pipeline/generate/baseline_template.py"
spec = importlib.util.spec_from_file_location("baseline_template", TEMPLATE)
bt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bt)

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
rng = np.random.RandomState(0)
letters = list("abcdefghijklmnopqrstuvwxyz")
vocab = np.array(["".join(rng.choice(letters, size=rng.randint(3, 9))) for _ in range(20_000)])
cells = [" ".join(vocab[rng.zipf(1.3, size=60) % 20_000]) for _ in range(rows)]
labels = pd.Series(rng.choice(list("abcde"), size=int(rows * 0.75)))
both = pd.DataFrame({"t": cells})

start = time.time()
matrix = bt.text_matrix(both, ["t"])
features = time.time() - start
print(
    f"rows {rows}, {int(np.mean([len(c) for c in cells]))} characters a cell cut to "
    f"{bt.cell_limit(rows, 1)}: matrix {matrix.shape}, {matrix.nnz} non-zeros, "
    f"features {features:.1f} s",
    flush=True,
)
target = bt.fitting_target(labels, "multiclass", "accuracy")
folds = bt.make_folds(target, bt.fold_count(len(labels)))
start = time.time()
bt.text_candidate(matrix, target, folds)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(f"text candidate {time.time() - start:.1f} s ({len(folds.splits)} folds and the refit)")
print(f"peak memory {peak} MB")
