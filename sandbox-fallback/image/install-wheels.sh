#!/usr/bin/env bash
# Installs the image's Python packages into DEST, the folder that becomes the image's
# /usr/local/lib/python3.11/dist-packages: the PyPI wheels of ./requirements.txt, each checked
# against its pinned SHA-256 by pip's hash-checking mode, for CPython 3.11 on x86_64 glibc
# (Debian bookworm's python3). build-offline.sh runs it on the host, the Dockerfile in a builder
# stage: both install exactly these files the same way. It only unpacks; the image's own
# python3 compiles the bytecode afterwards, so the host's Python version does not matter.
# Usage: install-wheels.sh DEST [CACHE]. CACHE keeps the downloaded wheels between builds
# (default: $KS_WHEEL_CACHE, else ~/.cache/kaggle-solver/wheels); pip's index settings apply.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="${1:?usage: install-wheels.sh DEST [CACHE]}"
cache="${2:-${KS_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kaggle-solver/wheels}}"
python="${KS_PYTHON:-python3}"
if [ "$(uname -m)" != x86_64 ]; then
  echo "install-wheels: the pinned wheels are for x86_64; this machine is $(uname -m)" >&2
  exit 1
fi
target=(--only-binary=:all: --python-version 3.11 --implementation cp --abi cp311
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64)
common=(--no-deps --require-hashes --disable-pip-version-check --progress-bar off --no-input)
mkdir -p "$cache"
"$python" -m pip download "${common[@]}" "${target[@]}" -d "$cache" -r "$here/requirements.txt"
"$python" -m pip install "${common[@]}" "${target[@]}" --no-index --find-links "$cache" \
  --no-compile --target "$dest" -r "$here/requirements.txt"
# Console scripts and catboost's Jupyter widget, which pip puts beside the packages under
# --target, are of no use in a sandbox.
rm -rf "$dest/bin" "$dest/etc" "$dest/share"
