#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (instrumented with ASan + UBSan) and
# runs the WAL reader fuzzer for SECONDS (default 60), starting from seed logs
# written by the log writer. Usage: scripts/fuzz.sh [SECONDS]
# A crash, hang or sanitizer report fails the run; libFuzzer leaves the input
# that caused it in the current directory (crash-*, timeout-*).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-60}
PAGEIO_EXTRA_PACKAGES="clang libclang-rt-14-dev ${PAGEIO_EXTRA_PACKAGES:-}" "$root/scripts/setup.sh"
build_dir="$root/build-fuzz"
CC=clang CXX=clang++ cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPAGEIO_FUZZ=ON -DPAGEIO_BUILD_TESTS=OFF -DPAGEIO_BUILD_TOOLS=OFF -DPAGEIO_BUILD_BENCH=OFF \
  -DPAGEIO_BUILD_EXAMPLES=OFF \
  "-DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" >/dev/null
cmake --build "$build_dir" --target wal_reader_fuzz make_wal_seed
corpus="$build_dir/corpus"
mkdir -p "$corpus"
"$build_dir/tests/fuzz/make_wal_seed" "$corpus"
echo "== fuzzing the WAL reader for ${seconds} s =="
"$build_dir/tests/fuzz/wal_reader_fuzz" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
  -print_final_stats=1 "$corpus"
