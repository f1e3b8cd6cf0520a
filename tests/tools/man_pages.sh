#!/bin/sh
# The man page help2man made of a tool exists, is a man page of that tool,
# and has a sub-section for each of the tool's commands.
#   man_pages.sh <man page> <tool> <command>...
set -u
page=$1
tool=$2
shift 2
if [ ! -s "$page" ]; then
  echo "FAIL: no man page at $page (was the target pageio-tools-docs built?)"
  exit 1
fi
fail=0
grep -q "^\.TH \"*$(echo "$tool" | tr a-z A-Z | sed 's/-/\\\\*-/g')" "$page" || {
  echo "FAIL: $page has no .TH line for $tool"
  fail=1
}
for cmd in "$@"; do
  # help2man writes a section header "TOOL CMD:" as .SS "TOOL CMD:" (with - maybe escaped).
  if grep -q "^\.SS \"$(echo "$tool" | sed 's/-/\\\\*-/g') $cmd:\"" "$page"; then
    echo "ok   $tool $cmd"
  else
    echo "FAIL: $page has no section for '$tool $cmd'"
    fail=1
  fi
done
[ "$fail" -eq 0 ] && echo "$page: every command of $tool has its section"
exit "$fail"
