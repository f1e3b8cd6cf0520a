#!/usr/bin/env bash
# Installs what is missing, builds and runs the whole test suite.
#   scripts/test.sh           Release build in ./build
#   scripts/test.sh --asan    AddressSanitizer + UndefinedBehaviorSanitizer build in ./build-asan
#   scripts/test.sh --tsan    ThreadSanitizer build in ./build-tsan
# Arguments after the mode go to ctest (e.g. scripts/test.sh --tsan -L 'wal|pagecache').
# Two tests run at a time (PAGEIO_TEST_JOBS): most of them wait on the disk.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode=${1:-}
shift || true
if [[ "$mode" == -L || "$mode" == -R || "$mode" == -E ]]; then set -- "$mode" "$@"; mode=""; fi
case "$mode" in
  "") build_dir="$root/build"; args=()
      # clang: the clang.syntax test (the headers and examples compile with it too).
      export PAGEIO_EXTRA_PACKAGES="clang ${PAGEIO_EXTRA_PACKAGES:-}" ;;
  --asan) build_dir="$root/build-asan"; args=(-DPAGEIO_ASAN=ON -DPAGEIO_BUILD_BENCH=OFF -DPAGEIO_BUILD_EXAMPLES=OFF) ;;
  --tsan) build_dir="$root/build-tsan"; args=(-DPAGEIO_TSAN=ON -DPAGEIO_BUILD_BENCH=OFF -DPAGEIO_BUILD_EXAMPLES=OFF) ;;
  *) echo "usage: scripts/test.sh [--asan|--tsan]" >&2; exit 2 ;;
esac
if [[ "$mode" != "" ]]; then
  export PAGEIO_BUILD_TYPE=${PAGEIO_BUILD_TYPE:-RelWithDebInfo}
  # Sanitizer builds: -O1 and line tables (what a report's stack needs) build
  # much faster on two cores than RelWithDebInfo's -O2 -g.
  args+=("-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=${PAGEIO_SANITIZER_OPT:--O1 -g1 -DNDEBUG}")
fi
"$root/scripts/build.sh" "$build_dir" "${args[@]}"
cd "$build_dir"
ctest --output-on-failure -j"${PAGEIO_TEST_JOBS:-2}" "$@"
