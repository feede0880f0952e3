#!/usr/bin/env bash
# Bounded coverage-guided fuzzing (cargo-fuzz, libFuzzer; nightly toolchain).
#   1. seeds fuzz/corpus/<target>/ from ../shared/corpus (fuzz/seeds.sh);
#   2. fuzzes every target for FUZZ_SECONDS (default 20) seconds;
#   3. replays each file in fuzz/regressions/<target>/ once: inputs that crashed before.
# One line per check, then "fuzz: N passed, M failed"; exit 1 on any failure.
# cargo-fuzz needs nightly compiler flags. Without a nightly toolchain (rustup cannot
# download one where only the package registries are reached) the stable compiler runs in
# nightly mode with RUSTC_BOOTSTRAP=1, as the Rust project documents for building on stable;
# it is never skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
# No sanitizer by default: the crate has no unsafe code, the build is ~75 s shorter and
# the targets run ~6x faster; overflow checks (debug assertions) stay on either way.
# FUZZ_SANITIZER=address brings ASan back.
SANITIZER="${FUZZ_SANITIZER:-none}"
TARGETS=(admission_review quantity gomemlimit documents mutate_document)
export CARGO_TERM_COLOR=never

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  TOOLCHAIN=(+nightly)
  echo "fuzz: nightly toolchain $(rustc +nightly --version)"
else
  TOOLCHAIN=()
  export RUSTC_BOOTSTRAP=1
  echo "fuzz: no nightly toolchain; $(rustc --version) with RUSTC_BOOTSTRAP=1"
fi
if ! cargo "${TOOLCHAIN[@]}" fuzz --version >/dev/null 2>&1; then
  start=$SECONDS
  cargo install cargo-fuzz --locked
  echo "fuzz: installed cargo-fuzz in $((SECONDS - start)) s"
fi

LOGS="$(mktemp -d)"
trap 'rm -rf "$LOGS"' EXIT

CORPUS_DIR="${SHARED_DIR:-$ROOT/../shared}/corpus" bash fuzz/seeds.sh

start=$SECONDS
(cd fuzz && cargo "${TOOLCHAIN[@]}" fuzz build -s "$SANITIZER") >"$LOGS/build.log" 2>&1 || {
  tail -n 40 "$LOGS/build.log"
  echo "fuzz: build failed"
  echo "fuzz: 0 passed, 1 failed"
  exit 1
}
echo "fuzz: built ${#TARGETS[@]} targets in $((SECONDS - start)) s"

passed=0
failed=0
# The panic message (or libFuzzer's own verdict) of a failed run.
why() {
  grep -m1 -A1 'panicked at' "$1" | tail -n 1 | cut -c1-300 ||
    grep -m1 -E 'ERROR: libFuzzer|SUMMARY' "$1" || echo "see log"
}

for target in "${TARGETS[@]}"; do
  extra=(-timeout=10)
  case "$target" in
    admission_review) extra+=(-dict=dicts/k8s.dict) ;;
    documents | mutate_document) extra+=(-dict=dicts/k8s.dict -max_len=8192) ;;
  esac
  log="$LOGS/$target.log"
  if (cd fuzz && cargo "${TOOLCHAIN[@]}" fuzz run -s "$SANITIZER" "$target" "corpus/$target" -- \
    -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -print_final_stats=1 "${extra[@]}") \
    >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
    echo "fuzz: $target: ok (${FUZZ_SECONDS} s, ${runs:-?} runs, ${rate:-?}/s, cov ${cov:-?})"
    passed=$((passed + 1))
  else
    artifact=$(grep -oE "artifacts/$target/[a-z]+-[0-9a-f]+" "$log" | head -n 1 || true)
    echo "fuzz: $target: FAILED: $(why "$log")${artifact:+ (input: fuzz/$artifact)}"
    failed=$((failed + 1))
  fi
done

for target in "${TARGETS[@]}"; do
  dir="fuzz/regressions/$target"
  [ -d "$dir" ] || continue
  for file in "$dir"/*; do
    [ -f "$file" ] || continue
    log="$LOGS/regression.log"
    if (cd fuzz && cargo "${TOOLCHAIN[@]}" fuzz run -s "$SANITIZER" "$target" "../$file" -- -runs=0) >"$log" 2>&1; then
      echo "fuzz: regression $target/$(basename "$file"): ok"
      passed=$((passed + 1))
    else
      echo "fuzz: regression $target/$(basename "$file"): FAILED: $(why "$log")"
      failed=$((failed + 1))
    fi
  done
done

echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
