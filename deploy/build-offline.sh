#!/usr/bin/env bash
# Builds the service's images without a container registry, the way the sandbox image is built:
# a Debian bookworm rootfs made by mmdebstrap from the host's Debian mirror, turned into a base
# image by `docker import`; the three images are that base plus one program each, added by
# `docker build` from the local base (FROM a local image needs no registry):
#   kaggle-solver/service:<TAG>  the kaggle-solver binary, its policy presets and the pinned
#                                guest runtime (compiled modules are keyed to the CPU, so they
#                                are built on first start, into the KS_HOME volume)
#   kaggle-solver/redis:<TAG>    Debian's redis-server, with the append-only file on
#   kaggle-solver/s3:<TAG>       the s3s-fs S3-compatible server over a folder
# Inputs: the binary (KS_BINARY, default target/debug/kaggle-solver), the installed runtime
# (KS_HOME's runtime/, from `kaggle-solver runtime install`), the s3s-fs binary (KS_S3S_FS,
# default target/s3s-fs/bin/s3s-fs). Idempotent per image: one that exists is kept unless
# KS_REBUILD=1. Hosts with a registry can use ./Dockerfile instead.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
TAG="$(tr -d '[:space:]' <"$here/TAG")"
SUITE=bookworm
BASE="kaggle-solver/base:$TAG"
binary="${KS_BINARY:-$root/target/debug/kaggle-solver}"
s3s_fs="${KS_S3S_FS:-$root/target/s3s-fs/bin/s3s-fs}"
ks_home="${KS_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/kaggle-solver}"

exists() { [ "${KS_REBUILD:-0}" != 1 ] && docker image inspect "$1" >/dev/null 2>&1; }
need() { [ -e "$1" ] || { echo "build-offline: $2 is missing at $1 ($3)" >&2; exit 1; }; }

need "$binary" "the kaggle-solver binary" "cargo build"
need "$s3s_fs" "the s3s-fs binary" "cargo install s3s-fs --version 0.14.1 --features binary --locked --root target/s3s-fs"
# Every installed part of the runtime (the interpreter, matplotlib's data, ...), each with its
# INSTALLED marker; the install lock stays behind.
runtime_parts="$(find "$ks_home/runtime" -mindepth 2 -maxdepth 2 -name INSTALLED -printf '%h\n' 2>/dev/null || true)"
need "$ks_home/runtime/$(awk -F'"' '/^package/ { n = $2 } /^version/ { v = $2 } END { print n "-" v }' "$root/guest-runtime/runtime.lock.toml" 2>/dev/null)/INSTALLED" \
  "the guest runtime" "kaggle-solver runtime install"

start=$SECONDS
work="$(mktemp -d "${TMPDIR:-/var/tmp}/ks-service-image.XXXXXX")"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
trap '$SUDO rm -rf "$work"' EXIT

if ! exists "$BASE"; then
  command -v mmdebstrap >/dev/null || { echo "build-offline: mmdebstrap is missing (apt-get install mmdebstrap)" >&2; exit 1; }
  # The Debian mirrors the host's apt uses (one-line and deb822 sources), pinned to $SUITE.
  uris="$({
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; break } }'
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '$1 == "URIs:" { for (i = 2; i <= NF; i++) print $i }'
  } | sed 's:/*$::' | awk '!seen[$0]++')"
  mirror="${KS_DEBIAN_MIRROR:-$(grep -E '/debian$' <<<"$uris" | head -n1 || true)}"
  security="${KS_DEBIAN_SECURITY_MIRROR:-$(grep -E '/debian-security$' <<<"$uris" | head -n1 || true)}"
  mirror="${mirror:-http://deb.debian.org/debian}"
  security="${security:-http://deb.debian.org/debian-security}"
  echo "build-offline: [1/2] $BASE: mmdebstrap from $mirror ($SUITE)"
  # ca-certificates: the service calls Kaggle and LLM providers over TLS.
  # shellcheck disable=SC2016
  $SUDO mmdebstrap --variant=apt --include=ca-certificates,redis-server \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*' \
    "$SUITE" "$work/rootfs.tar" \
    "deb $mirror $SUITE main" "deb $mirror $SUITE-updates main" "deb $security $SUITE-security main"
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "LABEL ks.image.tag=$TAG ks.image.recipe=offline-mmdebstrap-1" \
    --message "kaggle-solver service base $TAG (deploy/build-offline.sh)" \
    "$work/rootfs.tar" "$BASE" >/dev/null
  rm -f "$work/rootfs.tar"
fi

echo "build-offline: [2/2] the service, redis and s3 images from $BASE"
# Each image is built from a context holding only what it copies.
build() {
  local name="$1" dockerfile="$2" context="$work/$1"
  if exists "kaggle-solver/$name:$TAG"; then
    echo "build-offline: kaggle-solver/$name:$TAG already exists"
    return
  fi
  mkdir -p "$context"
  shift 2
  for item in "$@"; do cp -a "$item" "$context/"; done
  # The legacy builder (no buildx on Debian's docker.io) warns on every build: its output is
  # shown only when the build fails.
  if ! docker build --quiet --build-arg BASE="$BASE" -t "kaggle-solver/$name:$TAG" \
    -f "$here/$dockerfile" "$context" >"$work/$name.log" 2>&1; then
    cat "$work/$name.log" >&2
    echo "build-offline: kaggle-solver/$name:$TAG failed (log above)" >&2
    exit 1
  fi
  echo "build-offline: kaggle-solver/$name:$TAG built"
}
# The binary without its debug sections (line tables only help a debugger).
cp "$binary" "$work/kaggle-solver"
strip --strip-debug "$work/kaggle-solver" 2>/dev/null || cp "$binary" "$work/kaggle-solver"
mkdir -p "$work/service-policies"
cp "$root"/policies/*.toml "$work/service-policies/"
# The home as KS_HOME lays it out, holding only the runtime (no compiled modules: those are
# this CPU's, built on first start).
mkdir -p "$work/home/runtime"
for part in $runtime_parts; do cp -a "$part" "$work/home/runtime/"; done
build service service.Dockerfile "$work/kaggle-solver" "$work/service-policies" "$work/home"
build redis redis.Dockerfile
build s3 s3.Dockerfile "$s3s_fs"
echo "build-offline: done in $((SECONDS - start)) s"
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep "^kaggle-solver/\(base\|service\|redis\|s3\):$TAG "
