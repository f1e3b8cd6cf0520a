#!/bin/sh
# Writes the bash completion of one pageio tool, made from what the tool
# itself says in `TOOL --help-all` (tools/common/usage.cpp), so that it can
# never offer a command or an option the tool does not have:
#   - the commands, from the "Subcommands:" list;
#   - each command's options, from its "TOOL COMMAND:" section;
#   - an option's values: the choices its TYPE lists (NAME:{uring,aio,sync}),
#     file names for a FILE, directories for a DIR, nothing for other values;
#   - directories for a command's DIR argument.
#   make_bash_completion.sh <tool binary> <output file>
set -eu
tool=$1
out=$2
name=$(basename "$tool")
func=_$(printf '%s' "$name" | tr -c 'A-Za-z0-9_\n' '_')
tmp="$out.tmp"
"$tool" --help-all | awk -v name="$name" -v func="$func" '
function trim(s) { sub(/^ +/, "", s); sub(/ +$/, "", s); return s }
# One option line: "  -b,--backend NAME:{a,b}=x   description" (two spaces
# before the names, one before the TYPE, two or more before the description).
function option_line(line, cmd,    body, names, type, n, parts, i, choices) {
  body = substr(line, 3)
  names = body; sub(/ .*/, "", names)
  type = ""
  if (substr(body, length(names) + 1, 2) ~ /^ [^ ]/) {
    type = substr(body, length(names) + 2); sub(/ .*/, "", type)
  }
  if (names !~ /^-/) {            # a positional argument
    if (names == "DIR") positional_dir[cmd] = 1
    return
  }
  n = split(names, parts, ",")
  for (i = 1; i <= n; i++) {
    words[cmd] = words[cmd] " " parts[i]
    if (type == "") continue
    if (type ~ /\{.*\}/) {
      choices = type; sub(/^[^{]*\{/, "", choices); sub(/\}.*/, "", choices); gsub(/,/, " ", choices)
      values[cmd, parts[i]] = "W:" choices
    } else if (type ~ /^FILE/) {
      values[cmd, parts[i]] = "F"
    } else if (type ~ /^DIR/) {
      values[cmd, parts[i]] = "D"
    } else {
      values[cmd, parts[i]] = "-"
    }
    takes[cmd] = takes[cmd] " " parts[i]
  }
}
BEGIN { section = "" ; ncmds = 0 }
/^Options:$/ { section = "top"; next }
/^Subcommands:$/ { section = "list"; next }
$0 ~ "^" name " [^ ]+:$" { cmd = $2; sub(/:$/, "", cmd); section = "cmd"; next }
/^$/ { if (section == "top" || section == "list") section = ""; next }
section == "top" && /^  [^ ]/ { option_line($0, ""); next }
section == "list" && /^  [^ ]/ { c = trim($0); sub(/ .*/, "", c); cmds[++ncmds] = c; next }
section == "cmd" && /^  [^ ]/ { option_line($0, cmd); next }
END {
  print "# bash completion for " name ", made from `" name " --help-all` by"
  print "# tools/completion/make_bash_completion.sh when " name " was built."
  print func "() {"
  print "  local cur prev cmd i"
  print "  cur=${COMP_WORDS[COMP_CWORD]}"
  print "  prev=${COMP_WORDS[COMP_CWORD-1]}"
  print "  # --opt=value: bash splits at the =."
  print "  if [[ $cur == = ]]; then cur=; fi"
  print "  if [[ $prev == = ]]; then prev=${COMP_WORDS[COMP_CWORD-2]}; fi"
  print "  cmd="
  print "  for ((i = 1; i < COMP_CWORD; i++)); do"
  list = ""
  for (i = 1; i <= ncmds; i++) list = list (i > 1 ? "|" : "") cmds[i]
  print "    case ${COMP_WORDS[i]} in " list ") cmd=${COMP_WORDS[i]}; break ;; esac"
  print "  done"
  print "  case $cmd in"
  all = ""
  for (i = 1; i <= ncmds; i++) all = all " " cmds[i]
  print "    \"\") COMPREPLY=($(compgen -W \"" trim(all words[""]) "\" -- \"$cur\")); return ;;"
  for (i = 1; i <= ncmds; i++) {
    c = cmds[i]
    words[c] = words[c] " -h --help"
    print "    " c ")"
    print "      case $prev in"
    n = split(trim(takes[c]), opts, " ")
    for (j = 1; j <= n; j++) {
      v = values[c, opts[j]]
      if (v ~ /^W:/) action = "COMPREPLY=($(compgen -W \"" substr(v, 3) "\" -- \"$cur\"))"
      else if (v == "F") action = "COMPREPLY=($(compgen -f -- \"$cur\"))"
      else if (v == "D") action = "COMPREPLY=($(compgen -d -- \"$cur\"))"
      else action = "COMPREPLY=()"
      print "        " opts[j] ") " action "; return ;;"
    }
    print "      esac"
    if (positional_dir[c]) {
      print "      if [[ $cur != -* ]]; then COMPREPLY=($(compgen -d -- \"$cur\")); return; fi"
    }
    print "      COMPREPLY=($(compgen -W \"" trim(words[c]) "\" -- \"$cur\")) ;;"
  }
  print "  esac"
  print "}"
  print "complete -F " func " " name
}' > "$tmp"
# An empty list of commands means the help was not what this script reads.
grep -q ') cmd=' "$tmp" && ! grep -q 'in ) cmd=' "$tmp" || { echo "make_bash_completion.sh: no commands in $name --help-all" >&2; rm -f "$tmp"; exit 1; }
mv "$tmp" "$out"
