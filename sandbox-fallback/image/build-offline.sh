#!/usr/bin/env bash
# Builds the Docker backend's native image, kaggle-solver/native:<TAG>, without a
# container registry: a Debian bookworm rootfs made by mmdebstrap from the host's Debian mirror,
# turned into an image by `docker import`. For CI and offline machines; users with a registry
# can use the equivalent ./Dockerfile instead. The tag lives in ./TAG (also read by the Rust code).
# Idempotent: exits at once when the image exists. Needs a running daemon (scripts/docker-up),
# mmdebstrap and root (or sudo).
# Mirror override: KS_DEBIAN_MIRROR, KS_DEBIAN_SECURITY_MIRROR (default: taken from the host).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
TAG="$(tr -d '[:space:]' <"$here/TAG")"
IMAGE="kaggle-solver/native:$TAG"
SUITE=bookworm
PACKAGES=python3,python3-numpy,python3-pandas,python3-sklearn,python3-scipy,python3-xgboost
# python3-lightgbm is not in bookworm, so it is not here.

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

# bookworm's python3-scipy Depends on python3-pythran, a build-time compiler that drags in g++,
# boost and python3-dev (~550 MB); scipy's compiled modules do not use it at run time. An empty
# package that Provides python3-pythran stands in for it (the Dockerfile does the same).
mkdir -p "$work/no-pythran/DEBIAN"
printf '%s\n' 'Package: ks-no-pythran' 'Version: 1.0' 'Architecture: all' 'Provides: python3-pythran' \
  'Maintainer: kaggle-solver' 'Description: stands in for python3-pythran (build-time only)' \
  >"$work/no-pythran/DEBIAN/control"
dpkg-deb --build "$work/no-pythran" "$work/ks-no-pythran.deb" >/dev/null

echo "build-offline: [1/2] mmdebstrap (downloads ~60 MB and installs; a few minutes)"
# merged-usr hook: merged /usr as debootstrap makes it, instead of the usrmerge package (+perl).
# The hooks are single-quoted on purpose: mmdebstrap runs them with the rootfs as $1.
# shellcheck disable=SC2016
$SUDO mmdebstrap --variant=apt --include="$PACKAGES" --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --essential-hook="copy-in $work/ks-no-pythran.deb /tmp" \
  --essential-hook='chroot "$1" dpkg -i /tmp/ks-no-pythran.deb && rm "$1/tmp/ks-no-pythran.deb"' \
  --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
  --customize-hook='chroot "$1" python3 -c "import numpy, pandas, sklearn, scipy.interpolate, scipy.optimize, scipy.signal, scipy.stats, xgboost"' \
  --customize-hook='chroot "$1" dpkg-query -W -f="\${Package}=\${Version} " python3 python3-numpy python3-pandas python3-sklearn python3-scipy python3-xgboost > "$1/etc/ks-image-packages"' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/cache/debconf/*-old "$1"/var/log/*' \
  "$SUITE" "$work/rootfs.tar" \
  "deb $mirror $SUITE main" "deb $mirror $SUITE-updates main" "deb $security $SUITE-security main"
echo "build-offline: rootfs done after $((SECONDS - start)) s ($(du -h "$work/rootfs.tar" | cut -f1) tar)"

echo "build-offline: [2/2] docker import"
packages="$(tar -xOf "$work/rootfs.tar" ./etc/ks-image-packages)"
docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV PYTHONDONTWRITEBYTECODE=1' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV HOME=/tmp' \
  --change 'WORKDIR /tmp' \
  --change 'USER 65534:65534' \
  --change 'CMD ["python3"]' \
  --change "LABEL ks.image.tag=$TAG ks.image.recipe=offline-mmdebstrap-1 ks.image.packages=\"${packages% }\"" \
  --message "kaggle-solver native image $TAG (build-offline.sh)" \
  "$work/rootfs.tar" "$IMAGE" >/dev/null
echo "build-offline: $IMAGE built in $((SECONDS - start)) s, $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"
