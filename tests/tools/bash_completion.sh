#!/bin/sh
# A tool's bash completion script, sourced in bash: completing the first
# word offers the tool's commands that start with the prefix typed, and a
# command's options and option values come out as the tool lists them.
#   bash_completion.sh <script> <tool> <prefix> <expected command> [<command> <words> <expected>]...
# where <words> are the words typed after the command, the last one being
# completed ("--ram", or "--backend " to complete the option's value).
set -u
script=$1
tool=$2
prefix=$3
expected=$4
shift 4
if [ ! -s "$script" ]; then
  echo "FAIL: no completion script at $script (was the target pageio-tools-docs built?)"
  exit 1
fi
# complete WORD...: the words of the line, the last being completed; prints COMPREPLY one per line.
run() {
  bash -c '
    source "$1" || exit 3
    shift
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="$*"
    COMP_POINT=${#COMP_LINE}
    func=$(complete -p "${COMP_WORDS[0]}" | sed "s/.*-F \([^ ]*\).*/\1/")
    [ -n "$func" ] || exit 4
    "$func" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf "%s\n" "${COMPREPLY[@]}"
  ' sh "$script" "$@"
}
fail=0
got=$(run "$tool" "$prefix")
if [ "$got" = "$expected" ]; then
  echo "ok   $tool $prefix<TAB> -> $got"
else
  echo "FAIL: $tool $prefix<TAB> gave '$got', not '$expected'"
  fail=1
fi
while [ $# -ge 3 ]; do
  cmd=$1
  opt=$2
  want=$3
  shift 3
  # The words after the command; a trailing space completes an empty word (an option's value).
  case "$opt" in
    *" ") got=$(run "$tool" "$cmd" ${opt% } "") ;;
    *) got=$(run "$tool" "$cmd" $opt) ;;
  esac
  if printf '%s\n' "$got" | grep -qx -- "$want"; then
    echo "ok   $tool $cmd $opt<TAB> offers $want"
  else
    echo "FAIL: $tool $cmd $opt<TAB> gave '$(echo $got)', without '$want'"
    fail=1
  fi
done
exit "$fail"
