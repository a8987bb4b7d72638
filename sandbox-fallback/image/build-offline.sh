#!/usr/bin/env bash
# Builds the Docker backend's native image, kaggle-solver/native:<TAG>, without a
# container registry: a Debian bookworm rootfs made by mmdebstrap from the host's Debian mirror,
# turned into an image by `docker import`. Debian gives python3 and the C/C++ runtimes; the
# Python packages are the PyPI wheels pinned in ./requirements.txt, installed by
# ./install-wheels.sh (pip, from the index pip is configured for). For CI and offline machines;
# users with a registry can use the equivalent ./Dockerfile instead. The tag lives in ./TAG
# (also read by the Rust code). Idempotent: exits at once when the image exists. Needs a running
# daemon (scripts/docker-up), mmdebstrap, python3 with pip, and root (or sudo).
# Mirror override: KS_DEBIAN_MIRROR, KS_DEBIAN_SECURITY_MIRROR (default: taken from the host).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
TAG="$(tr -d '[:space:]' <"$here/TAG")"
IMAGE="kaggle-solver/native:$TAG"
SUITE=bookworm
# libgomp1: LightGBM's OpenMP runtime (xgboost ships its own, catboost links none).
PACKAGES=python3,libgomp1,libstdc++6
SITE=/usr/local/lib/python3.11/dist-packages
# What the image is checked to import once built: the list of ./modules.txt.
IMPORTS="$(grep -v '^#' "$here/modules.txt" | paste -sd, -)"

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "build-offline: $IMAGE already exists"
  exit 0
fi
command -v mmdebstrap >/dev/null || { echo "build-offline: mmdebstrap is missing (apt-get install mmdebstrap)" >&2; exit 1; }
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

# The Debian mirrors the host's apt uses (one-line and deb822 sources), pinned to $SUITE.
host_uris() {
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; break } }'
  cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '$1 == "URIs:" { for (i = 2; i <= NF; i++) print $i }'
}
uris="$(host_uris | sed 's:/*$::' | awk '!seen[$0]++')"
mirror="${KS_DEBIAN_MIRROR:-$(grep -E '/debian$' <<<"$uris" | head -n1 || true)}"
security="${KS_DEBIAN_SECURITY_MIRROR:-$(grep -E '/debian-security$' <<<"$uris" | head -n1 || true)}"
mirror="${mirror:-http://deb.debian.org/debian}"
security="${security:-http://deb.debian.org/debian-security}"

start=$SECONDS
work="$(mktemp -d "${TMPDIR:-/var/tmp}/ks-native-image.XXXXXX")"
trap '$SUDO rm -rf "$work"' EXIT
echo "build-offline: building $IMAGE from $mirror ($SUITE) + $security, in $work"

echo "build-offline: [1/3] the pinned wheels (downloads ~190 MB the first time)"
bash "$here/install-wheels.sh" "$work/site"
# The versions the image carries, for its label: python3's from dpkg, the wheels' from the pins.
wheels="$(awk '/^[a-z0-9]/ { print $1 }' "$here/requirements.txt" | sed 's/==/=/' | paste -sd' ' -)"

echo "build-offline: [2/3] mmdebstrap (downloads ~30 MB and installs; a minute or two)"
# merged-usr hook: merged /usr as debootstrap makes it, instead of the usrmerge package (+perl).
# The hooks are single-quoted on purpose: mmdebstrap runs them with the rootfs as $1.
# shellcheck disable=SC2016
$SUDO mmdebstrap --variant=apt --include="$PACKAGES" --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
  --customize-hook="mkdir -p \"\$1$SITE\"" \
  --customize-hook="sync-in $work/site $SITE" \
  --customize-hook="chroot \"\$1\" python3 -m compileall -q -j0 $SITE" \
  --customize-hook="chroot \"\$1\" python3 -c 'import $IMPORTS'" \
  --customize-hook='chroot "$1" dpkg-query -W -f="\${Package}=\${Version} " python3 > "$1/etc/ks-image-packages"' \
  --customize-hook="echo '$wheels' >> \"\$1/etc/ks-image-packages\"" \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/cache/debconf/*-old "$1"/var/log/*' \
  "$SUITE" "$work/rootfs.tar" \
  "deb $mirror $SUITE main" "deb $mirror $SUITE-updates main" "deb $security $SUITE-security main"
echo "build-offline: rootfs done after $((SECONDS - start)) s ($(du -h "$work/rootfs.tar" | cut -f1) tar)"

echo "build-offline: [3/3] docker import"
packages="$(tar -xOf "$work/rootfs.tar" ./etc/ks-image-packages | tr -s " \n" "  ")"
docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV PYTHONDONTWRITEBYTECODE=1' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV HOME=/tmp' \
  --change 'WORKDIR /tmp' \
  --change 'USER 65534:65534' \
  --change 'CMD ["python3"]' \
  --change "LABEL ks.image.tag=$TAG ks.image.recipe=offline-mmdebstrap-2 ks.image.packages=\"${packages% }\"" \
  --message "kaggle-solver native image $TAG (build-offline.sh)" \
  "$work/rootfs.tar" "$IMAGE" >/dev/null
echo "build-offline: $IMAGE built in $((SECONDS - start)) s, $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"
