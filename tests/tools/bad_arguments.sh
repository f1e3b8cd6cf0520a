#!/bin/sh
# Every tool, given a bad value or a bad command line: exit status 2, nothing
# on stdout, and on stderr exactly one line "<tool>: <what is wrong; the
# fix>" followed by the same hint; nothing created on disk (each case runs
# in an empty directory with no PAGEIO_DATA_DIR, where pageio-bench would
# otherwise make ./pageio-data).
#   bad_arguments.sh <pageio-bench or -> <pageio-kv> <pageio-wal> <scratch directory>
set -u
bench=$1
kv=$2
wal=$3
scratch=$4
hint="Run with --help for more information."
rm -rf "$scratch"
mkdir -p "$scratch"
unset PAGEIO_DATA_DIR
fail=0
cases=0
check() {  # tool binary, then its arguments
  tool=$1
  shift
  name=$(basename "$tool")
  cases=$((cases + 1))
  work="$scratch/case"
  rm -rf "$work"
  mkdir "$work"
  (cd "$work" && "$tool" "$@" >"$scratch/out" 2>"$scratch/err")
  rc=$?
  what="$name $*"
  failed=0
  if [ "$rc" -ne 2 ]; then
    echo "FAIL $what: exit $rc, not 2"
    failed=1
  fi
  if [ -s "$scratch/out" ]; then
    echo "FAIL $what: wrote to stdout: $(cat "$scratch/out")"
    failed=1
  fi
  lines=$(wc -l <"$scratch/err")
  first=$(sed -n 1p "$scratch/err")
  second=$(sed -n 2p "$scratch/err")
  if [ "$lines" -ne 2 ] || [ "$second" != "$hint" ]; then
    echo "FAIL $what: stderr is not one line and the hint:"
    cat "$scratch/err"
    failed=1
  fi
  case "$first" in
    "$name: "?*) ;;
    *) echo "FAIL $what: the message does not start with '$name: ': $first"; failed=1 ;;
  esac
  if [ -n "$(ls -A "$work")" ]; then
    echo "FAIL $what: created $(ls -A "$work")"
    failed=1
  fi
  if [ "$failed" -eq 0 ]; then echo "ok   $what: $first"; else fail=1; fi
}

if [ "$bench" != "-" ]; then
  check "$bench"
  check "$bench" frob
  check "$bench" io --warmup -1
  check "$bench" io --seconds 0
  check "$bench" io --seconds 8d
  check "$bench" io --runtime 10x
  check "$bench" io --ramp_time -1s
  check "$bench" io --qd 0
  check "$bench" io --iodepth abc
  check "$bench" io --qd 2 --iodepth 4
  check "$bench" io --bs 4x
  check "$bench" io --size 0
  check "$bench" io --size 4k --bs 8k
  check "$bench" io --numjobs 0
  check "$bench" io --numjobs 2 --api asio
  check "$bench" io --numjobs 4 --size 8k
  check "$bench" io --backend nope
  check "$bench" io --backend libaio
  check "$bench" io --ioengine posixaio
  check "$bench" io --json-out missing/x.json
  check "$bench" io --cpu -1
  check "$bench" io --rw randx
  check "$bench" cache --policy lru
  check "$bench" fio --backend nope
  check "$bench" fio --backend sync --qd 4
  check "$bench" fio --runtime 0
  check "$bench" fio --backend aio --uring-register
  check "$bench" wal --seconds 0
  check "$bench" wal --writers 0
  check "$bench" wal --record-size 1x
  check "$bench" wal --segment-size 4k
  check "$bench" wal --segment-size 12289
  check "$bench" wal --backend nope
  check "$bench" wal --checkpoint-ms -5
  check "$bench" cache --zipf-theta 5
  check "$bench" cache --cache-mb 0
  check "$bench" cache --threads 0
  check "$bench" cache --warmup -1
  check "$bench" cache --ioengine nope
  check "$bench" compare --rounds 0
  check "$bench" compare --backends sync,nope
  check "$bench" compare --kv-seconds 0
  check "$bench" compare --quick --rounds 5
  check "$bench" compare --runtime 2x
  # A file system in RAM is refused by every benchmark, before anything is written there.
  if [ -d /dev/shm ] && [ "$(stat -f -c %T /dev/shm)" = tmpfs ]; then
    check "$bench" io --dir /dev/shm --seconds 1
    check "$bench" wal --dir /dev/shm --seconds 1
    check "$bench" cache --dir /dev/shm --seconds 1
  fi
fi
check "$kv"
if [ -d /dev/shm ] && [ "$(stat -f -c %T /dev/shm)" = tmpfs ]; then
  check "$kv" bench --db /dev/shm/pageio-kv-bad-arguments --num 10
fi
check "$kv" frob
check "$kv" get
check "$kv" scan -d db --limit many
check "$kv" bench --backend nope
check "$kv" bench --duration -1
check "$kv" bench --threads 0
check "$kv" bench --num -5
check "$kv" bench --write_buffer_size -2
check "$kv" bench --write_buffer_size lots
check "$wal"
check "$wal" verify
check "$wal" verify missing
check "$wal" dump . --from abc
check "$wal" stats . -d .
rm -rf "$scratch"
[ "$fail" -eq 0 ] && echo "all $cases bad command lines: exit 2, one line and the hint, nothing created"
exit "$fail"
