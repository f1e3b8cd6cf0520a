#!/bin/sh
# pageio-bench given a file or directory under a directory that does not
# exist: exit 2 with a message naming it, and nothing created on the way
# (no mkdir -p of a mistyped path).
#   bench_refuses_missing_dirs.sh <pageio-bench> <scratch directory>
set -u
bench=$1
scratch=$2
rm -rf "$scratch"
mkdir -p "$scratch"
fail=0
check() {  # name, then the command's arguments
  name=$1
  shift
  out=$("$bench" "$@" 2>&1)
  rc=$?
  if [ "$rc" -ne 2 ]; then
    echo "FAIL $name: exit $rc, not 2: $out"
    fail=1
  fi
  case "$out" in
    *"does not exist"*) ;;
    *) echo "FAIL $name: no 'does not exist' in: $out"; fail=1 ;;
  esac
  if [ -e "$scratch/missing" ]; then
    echo "FAIL $name: $scratch/missing was created"
    fail=1
    rm -rf "$scratch/missing"
  fi
}
check "io -f" io -f "$scratch/missing/deeper/x.dat" --seconds 0.1 --size 1m
check "wal --dir" wal --dir "$scratch/missing/deeper" --seconds 0.1
check "cache -f" cache -f "$scratch/missing/deeper/x.dat" --seconds 0.1
PAGEIO_DATA_DIR="$scratch/missing/deeper" check "io with PAGEIO_DATA_DIR" io --seconds 0.1 --size 1m
rm -rf "$scratch"
[ "$fail" -eq 0 ] && echo "pageio-bench refused every missing directory and made none"
exit "$fail"
