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
# Defaults read as typed, not as the nearest binary fraction's 17 digits.
for want in "learning-rate arg (=0.05)" "momentum arg (=0.9)"; do
  if "$eraser" train --help | grep -qF -- "--$want"; then
    echo "ok: train --help shows --$want"
  else
    echo "FAIL: train --help lacks --$want"
    fail=1
  fi
done
# An address is checked before the token rule; localhost is 127.0.0.1.
"$eraser" serve --store /nonexistent --listen nonsense >"$out" 2>&1
if grep -q "must be host:port" "$out"; then
  echo "ok: a malformed --listen is named"
else
  echo "FAIL: a malformed --listen is not named"
  cat "$out"
  fail=1
fi
"$eraser" serve --store /nonexistent --listen LOCALHOST:0 >"$out" 2>&1
if grep -q "give an IP address" "$out"; then
  echo "FAIL: --listen LOCALHOST:0 refused as a host name"
  cat "$out"
  fail=1
else
  echo "ok: --listen takes localhost in any case"
fi
# A directory without a store: exit 1, named, and left as it was (RocksDB's
# open left its LOCK file in it).
empty=$(mktemp -d)
check 1 "serve on a directory without a store" \
  "$eraser" serve --store "$empty" --listen 127.0.0.1:0 --metrics-listen ''
if grep -q "holds no eraser store" "$out" && [ -z "$(ls -A "$empty")" ]; then
  echo "ok: it says so and writes nothing there"
else
  echo "FAIL: serve on an empty directory: $(ls -A "$empty")"
  cat "$out"
  fail=1
fi
rm -rf "$empty"
exit $fail
