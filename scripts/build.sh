#!/usr/bin/env bash
# Configures and builds pageio. Usage: scripts/build.sh [BUILD_DIR] [extra cmake args...]
# Installs missing Debian packages first (scripts/setup.sh). PAGEIO_BUILD_TARGETS
# (space-separated) builds only those targets.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${1:-"$root/build"}
shift || true

"$root/scripts/setup.sh"
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${PAGEIO_BUILD_TYPE:-Release}" "$@" >/dev/null
# shellcheck disable=SC2086  # a list of target names
cmake --build "$build_dir" ${PAGEIO_BUILD_TARGETS:+--target $PAGEIO_BUILD_TARGETS}
