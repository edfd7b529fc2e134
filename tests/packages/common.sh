# shellcheck shell=bash
# Sourced by the package tests (CTest label `packages`): strict mode, a temp dir removed on
# exit however the script exits, background processes stopped, and cleanup hooks (the .deb
# purge) run even after a failed step.
set -euo pipefail

tmp=$(mktemp -d "${TMPDIR:-/tmp}/grayroute-package-XXXXXX")
pids=()            # background processes to stop
exit_hooks=()      # functions to run at exit; a failing hook fails the test

finish() {
  local rc=$? pid hook
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for hook in "${exit_hooks[@]}"; do "$hook" || rc=1; done
  rm -rf "$tmp"
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

step() { echo "--- $*"; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# run LOG COMMAND...: runs a tool with its output in LOG, shown when it fails.
run() {
  local log=$1
  shift
  if ! "$@" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    fail "$*"
  fi
}

# expect FILE REGEX WHAT: FILE must have a line matching REGEX.
expect() {
  if ! grep -Eq -- "$2" "$1"; then
    tail -n 40 "$1" >&2
    fail "$3"
  fi
}

# The line the consumer programs print (packaging/consumer/main.cpp).
routed_line() { echo "grayroute $1: 10.1.2.3 -> gray \\(list\\)"; }
