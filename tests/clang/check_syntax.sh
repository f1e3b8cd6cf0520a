#!/usr/bin/env bash
# The public headers and the README's examples compile with clang as well as
# with the gcc that builds the project: every example, and public_api.cpp
# (every header, every Asio entry point instantiated), checked with
# clang++ -fsyntax-only. Templates are checked only where they are
# instantiated, and clang rejects things gcc accepts.
#   check_syntax.sh SOURCE_DIR BUILD_DIR [CLANG++]
# Exit 77 (a skip) when no clang++ is installed; scripts/test.sh installs it.
set -euo pipefail
src=$1
build=$2
cxx=${3:-clang++}
if ! command -v "$cxx" >/dev/null; then
  echo "$cxx is not installed: nothing checked (Debian: apt-get install clang)"
  exit 77
fi
flags=(-std=c++20 -fsyntax-only -Wall -Wextra
  -I"$src/engine/include" -I"$src/wal/include" -I"$src/pagecache/include" -I"$src/kv/include"
  -I"$build/engine/include")
"$cxx" --version | head -1
status=0
for f in "$src/tests/clang/public_api.cpp" "$src"/examples/*.cpp; do
  if "$cxx" "${flags[@]}" "$f"; then
    echo "ok      ${f#"$src"/}"
  else
    echo "FAILED  ${f#"$src"/}"
    status=1
  fi
done
exit "$status"
