#!/usr/bin/env bash
# Wire-level fuzzer wrapper: a venv with pyradamsa (and PyYAML for the YAML AdmissionReviews),
# a release build, then bench/wire_fuzz.py with all arguments passed through.
#
# usage: bench/wire_fuzz.sh [--count N] [wire_fuzz.py options...]
#   CI=1 bench/wire_fuzz.sh        # 3000 mutants (default under CI), well under a minute
#   bench/wire_fuzz.sh             # 100000 mutants (default by hand), about 6 minutes on 2 cores
# env: WIRE_FUZZ_VENV (venv location), WIRE_FUZZ_BUILD=0 (skip cargo build)
set -euo pipefail
cd "$(dirname "$0")/.."

# The venv lives outside the repository, like any tool cache; WIRE_FUZZ_VENV moves it.
VENV="${WIRE_FUZZ_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/deployguard-wire-fuzz-venv}"
if ! "$VENV/bin/python" -c 'import pyradamsa, yaml' 2>/dev/null; then
  python3 -m venv "$VENV"
  # If pyradamsa cannot be installed, wire_fuzz.py falls back to its own byte mutator and says so.
  "$VENV/bin/pip" install -q pyradamsa pyyaml || "$VENV/bin/pip" install -q pyyaml || true
fi

if [ "${WIRE_FUZZ_BUILD:-1}" != 0 ]; then
  cargo build --release --locked --quiet
fi

exec "$VENV/bin/python" bench/wire_fuzz.py "$@"
