# Sourced by the .ci check scripts: `check NAME COMMAND...` and the closing summary.
# Needs WORK (a scratch directory) set by the caller.
PASSED=0
FAILED=0
FAILED_NAMES=()

# check NAME COMMAND...: runs COMMAND in a subshell with errexit, prints PASS/FAIL and,
# on failure, the tail of its output.
check() {
  local name="$1"; shift
  local log="$WORK/check.log" rc
  set +e
  ( set -e; "$@" ) >"$log" 2>&1
  rc=$?
  set -e
  if [ "$rc" -eq 0 ]; then
    PASSED=$((PASSED + 1)); printf 'PASS  %s\n' "$name"
  else
    FAILED=$((FAILED + 1)); FAILED_NAMES+=("$name"); printf 'FAIL  %s\n' "$name"
    tail -n 30 "$log" | sed 's/^/      /'
  fi
}

# checks_summary: names the failed checks, prints "N passed, M failed", fails if any did.
checks_summary() {
  if [ "$FAILED" -ne 0 ]; then
    printf 'failed: %s\n' "${FAILED_NAMES[@]}"
  fi
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
