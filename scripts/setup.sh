#!/usr/bin/env bash
# Installs the Debian packages pageio needs to build, test and benchmark,
# skipping the ones already present. Safe to run again; needs root (or sudo).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libaio-dev liburing-dev libboost1.81-dev
  libgtest-dev googletest libgmock-dev libbenchmark-dev
  libcli11-dev libfmt-dev nlohmann-json3-dev help2man
  fio
)
# Extra packages a caller can ask for: PAGEIO_EXTRA_PACKAGES="gnuplot rocksdb-tools"
if [[ -n "${PAGEIO_EXTRA_PACKAGES:-}" ]]; then
  read -r -a extra <<<"${PAGEIO_EXTRA_PACKAGES}"
  packages+=("${extra[@]}")
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "pageio setup: installing ${missing[*]}" >&2
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then sudo_cmd=(sudo); else
    echo "pageio setup: need root or sudo to install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q >&2
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
