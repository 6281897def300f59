#!/usr/bin/env bash
# The eraser command line: help everywhere, clear usage errors.
set -u
eraser="$1"
fail=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
check() {  # check <expected exit code> <description> <command...>
  local want=$1 what=$2
  shift 2
  "$@" >"$out" 2>&1
  local got=$?
  if [ "$got" -ne "$want" ]; then
    echo "FAIL: $what: exit $got, expected $want"
    cat "$out"
    fail=1
  else
    echo "ok: $what"
  fi
}
check 0 "eraser --help" "$eraser" --help
check 2 "no command" "$eraser"
check 2 "unknown command" "$eraser" frobnicate
for cmd in $("$eraser" --help | awk '/^Commands:/{on=1; next} on && !NF {exit} on {print $1}'); do
  check 0 "eraser $cmd --help" "$eraser" "$cmd" --help
  check 2 "eraser $cmd with an unknown flag" "$eraser" "$cmd" --no-such-flag
done
check 2 "serve with the statistics route's name as the model's" \
  "$eraser" serve --store /nonexistent --model-name stats
check 1 "dataset from a missing directory" "$eraser" dataset --dataset-dir /nonexistent
exit $fail
