#!/usr/bin/env bash
# The profile behind docs/profile.md: each path of the table run under
# `perf record`, and its biggest costs (self time) printed. Installs perf
# (Debian: linux-perf) and builds first, as run.sh does.
#   scripts/profile.sh [DATA_DIR]     (default: $PAGEIO_DATA_DIR or ./pageio-data)
# Each run is short (2-3 s); the figures that go in the table's ratio
# columns come from `pageio-bench compare`, which runs the references in
# the same session.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PAGEIO_EXTRA_PACKAGES="${PAGEIO_EXTRA_PACKAGES:-linux-perf}" "$root/scripts/build.sh" "$root/build" >/dev/null
dir=${1:-${PAGEIO_DATA_DIR:-./pageio-data}}
bench="$root/build/tools/pageio-bench/pageio-bench"
kv="$root/build/tools/pageio-kv/pageio-kv"
if ! command -v perf >/dev/null; then
  echo "profile.sh: perf is not on \$PATH (Debian package linux-perf)" >&2
  exit 1
fi
if [ "$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo 2)" -gt 1 ] && [ "$(id -u)" -ne 0 ]; then
  echo "profile.sh: perf needs root or kernel.perf_event_paranoid <= 1 to see kernel time" >&2
  exit 1
fi
[ -d "$dir" ] || mkdir -p "$dir"  # the default data directory, as pageio-bench makes it
out=$(mktemp -d)
trap 'rm -rf "$out" "$dir/profile-kv-get" "$dir/profile-kv-put"' EXIT

run() {  # name, then the command
  local name=$1
  shift
  echo "=== $name: $*"
  perf record -q -o "$out/$name.data" -F 2000 -g "$@" >"$out/$name.out" 2>&1
  grep -E "IOPS|CPU|commits/s|lookups/s|fetch|ops/sec" "$out/$name.out" | head -8 || true
  perf report -i "$out/$name.data" --no-children --sort symbol 2>/dev/null |
    grep -E "^ +[0-9]+\.[0-9]+%" | head -10 | sed -E 's/ +-? +-? *$//' | cut -c1-110 || true  # head ends the pipe early
}

run io-sync-qd1 "$bench" io --backend sync --rw randread --qd 1 -t 3 -d "$dir"
run io-aio-qd32 "$bench" io --backend aio --rw randread --qd 32 -t 3 -d "$dir"
run io-uring-qd32 "$bench" io --backend uring --rw randread --qd 32 -t 3 -d "$dir"
run io-uring-registered-qd32 "$bench" io --backend uring --uring-register --rw randread --qd 32 -t 3 -d "$dir"
run pool-misses-qd32-and-hit-cost "$bench" cache --backend uring --cache-mb 16 --inflight 32 -t 2 -d "$dir"
run pool-blocking-misses "$bench" cache --backend uring --cache-mb 16 --inflight 1 -t 2 --no-hit-cost -d "$dir"
run commit-1x100 "$bench" wal -w 1 --record-size 100 -t 3 -d "$dir"
run commit-8x100 "$bench" wal -w 8 --record-size 100 -t 3 -d "$dir"
run commit-8x64k "$bench" wal -w 8 --record-size 64k -t 3 -d "$dir"
run commit-64x100 "$bench" wal -w 64 --record-size 100 -t 3 -d "$dir"
common=(--num=1000000 --key_size=16 --value_size=100)
"$kv" bench --benchmarks=fillseq --db="$dir/profile-kv-get" --threads=1 "${common[@]}" --sync=0 >/dev/null
run kv-get-cached "$kv" bench --benchmarks=readseq,readrandom --db="$dir/profile-kv-get" --threads=1 "${common[@]}" \
  --use_existing_db=1 --duration=3 --cache_size=1073741824
run kv-put-1-thread "$kv" bench --benchmarks=fillrandom --db="$dir/profile-kv-put" --threads=1 "${common[@]}" --sync=1 \
  --duration=3
run kv-put-64-threads "$kv" bench --benchmarks=fillrandom --db="$dir/profile-kv-put" --threads=64 "${common[@]}" \
  --sync=1 --duration=3
