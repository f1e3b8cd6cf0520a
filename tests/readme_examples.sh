#!/usr/bin/env bash
# Checks that every C++ block in the README is one of examples/ whole: each
# ```cpp block must follow a line "<!-- example: examples/NAME.cpp -->" and
# hold exactly that file's text, so what a reader copies is what CI builds
# and runs (examples/CMakeLists.txt, tests/consumer).
#
#   tests/readme_examples.sh [SOURCE_DIR]
set -euo pipefail
src=${1:-$(dirname "${BASH_SOURCE[0]}")/..}
readme="$src/README.md"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Split the README's blocks out: one file per block, named after its marker.
awk -v out="$work" '
  /^<!-- example: examples\/[A-Za-z0-9_]+\.cpp -->$/ { sub(/^<!-- example: /, ""); sub(/ -->$/, ""); want = $0; next }
  /^```cpp$/ {
    n++
    if (want == "") { printf "README.md:%d: a ```cpp block without an example marker before it\n", NR > "/dev/stderr"; bad = 1; want = "-" }
    file = sprintf("%s/%03d", out, n); print want > (file ".name"); close(file ".name")
    printf "" > file; inside = 1; start = NR; next
  }
  inside && /^```$/ { inside = 0; want = ""; close(file); next }
  inside { print >> file; next }
  NF { want = "" }
  END { exit bad }
' "$readme" || status=1

checked=0
for name_file in "$work"/*.name; do
  [ -e "$name_file" ] || break
  want=$(cat "$name_file")
  [ "$want" = "-" ] && continue
  if [ ! -f "$src/$want" ]; then
    echo "README.md: names $want, which does not exist" >&2
    status=1
  elif ! cmp -s "${name_file%.name}" "$src/$want"; then
    echo "README.md: the block marked $want differs from the file (copy the file into the README):" >&2
    diff "$src/$want" "${name_file%.name}" | head -20 >&2 || true
    status=1
  fi
  checked=$((checked + 1))
done
if [ "$checked" -eq 0 ]; then
  echo "README.md: no example blocks found" >&2
  exit 1
fi
[ "${status:-0}" -eq 0 ] && echo "README.md: $checked examples are their files in examples/, word for word"
exit "${status:-0}"
