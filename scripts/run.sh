#!/usr/bin/env bash
# The main job: installs what is missing, builds, and compares every backend
# that starts here (and fio's engines, side by side) on a data file in
# ./pageio-data (or $PAGEIO_DATA_DIR). Extra arguments go to `pageio-bench compare`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Only what the comparison runs (pageio-bench, and pageio-kv for its key-value
# section); scripts/test.sh builds the rest. PAGEIO_BUILD_TARGETS= builds all.
PAGEIO_BUILD_TARGETS="${PAGEIO_BUILD_TARGETS-pageio-bench pageio-kv}" \
  PAGEIO_EXTRA_PACKAGES="${PAGEIO_EXTRA_PACKAGES:-gnuplot-nox rocksdb-tools}" "$root/scripts/build.sh" "$root/build"
exec "$root/build/tools/pageio-bench/pageio-bench" compare "$@"
