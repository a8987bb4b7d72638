"""Reference solution for image competitions: default HistGradientBoosting on raw resized pixels.

Runs inside the kaggle-solver sandbox:
    kaggle-solver sandbox run --policy policies/large.toml --input <slug>/public \
        --output OUT tools/eval/reference_pixels.py
It reads /input/train.csv (ids and labels) and /input/sample_submission.csv (the ids to
predict), finds each id's picture in /input/train/ or /input/test/ (the id is the file name or
its stem), and writes /output/submission.csv. It is the bar the baseline generator must meet
on pictures, so it stays deliberately plain:

- id column = the sample's first column; target = its second column, a training column;
- every picture converted to grey and resized (bilinear) to SIDE x SIDE; its pixels, 0 to 1,
  are the features, nothing else;
- HistGradientBoostingClassifier with every default but random_state=0; labels predicted.
"""

import os
import time

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.ensemble import HistGradientBoostingClassifier

SIDE = 16

t0 = time.time()
train = pd.read_csv("/input/train.csv", dtype=str)
sample = pd.read_csv("/input/sample_submission.csv", dtype=str)
id_col, target = sample.columns[0], sample.columns[1]


def picture(folder, name):
    for candidate in (name, f"{name}.png", f"{name}.jpg", f"{name}.jpeg"):
        path = f"/input/{folder}/{candidate}"
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"no picture for {name!r} in /input/{folder}")


def pixels(folder, ids):
    rows = []
    for name in ids:
        with Image.open(picture(folder, name)) as image:
            grey = image.convert("L").resize((SIDE, SIDE), Image.BILINEAR)
            rows.append(np.asarray(grey, np.float32).ravel() / 255)
    return np.stack(rows)


X = pixels("train", train[id_col])
X_test = pixels("test", sample[id_col])
model = HistGradientBoostingClassifier(random_state=0).fit(X, train[target])
out = pd.DataFrame({id_col: sample[id_col], target: model.predict(X_test)})
out.to_csv("/output/submission.csv", index=False)
print(f"reference_pixels: {len(X)} train, {len(X_test)} test, {time.time() - t0:.1f}s")
