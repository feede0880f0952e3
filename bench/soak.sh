#!/usr/bin/env bash
# Soak test, run by hand: deployguard at a fixed request rate for a long time, watching for
# memory growth and for any failed or non-2xx request.
#
# usage: bench/soak.sh [--rate N] [--duration S] [--warmup S] [--no-build]
#   env: RATE (default 500 req/s in total), DURATION (600 s), WARMUP (60 s),
#        MAX_GROWTH_PCT (5), CLIENTS (connections per endpoint, 5), H2LOAD_PROTO (h2 | h1),
#        SOAK_PORT / SOAK_METRICS_PORT (18543 / 19190), SHARED_DIR (../shared)
#
# Half the rate is a Pod CREATE to /mutate, half a Deployment CREATE to /validate, from two
# h2load processes running side by side. deployguard is pinned to core 0 and the load to
# core 1, so that the generator does not steal the server's CPU. VmRSS, VmHWM, threads and
# open file descriptors are sampled every 5 s into bench/out/soak/rss.csv.
# Fails (exit 1) when VmRSS grew by MAX_GROWTH_PCT % or more from the first sample after
# the warm-up to the end of the load, when any request failed or was not 2xx, when fewer
# requests were sent than planned, or when deployguard panicked or died.
# h2load does not verify the server certificate (bench/wire_fuzz.py does). Do not run this
# beside bench/load.sh: both use the same two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

RATE="${RATE:-500}"
DURATION="${DURATION:-600}"
WARMUP="${WARMUP:-60}"
MAX_GROWTH_PCT="${MAX_GROWTH_PCT:-5}"
CLIENTS="${CLIENTS:-5}"
PROTO="${H2LOAD_PROTO:-h2}"
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) RATE="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "soak: unknown argument $1" >&2; exit 2 ;;
  esac
done
INTERVAL=5
# Not bench/load.sh's ports (18443/19090), so both can be run on one machine (not at once:
# they would share the cores and skew each other).
PORT="${SOAK_PORT:-18543}"
MPORT="${SOAK_METRICS_PORT:-19190}"
SHARED="${SHARED_DIR:-$ROOT/../shared}"
OUT="$ROOT/bench/out/soak"
rm -rf "$OUT"; mkdir -p "$OUT"

PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# Each endpoint gets half the rate, spread over CLIENTS connections: h2load's --rps is per
# connection. -n fixes the number of requests, so the run lasts DURATION at that rate and we
# know exactly how many answers to expect.
PER_ENDPOINT=$((RATE / 2))
PER_CLIENT=$(awk -v r="$PER_ENDPOINT" -v c="$CLIENTS" 'BEGIN { printf "%g", r / c }')
N_PER_ENDPOINT=$((PER_ENDPOINT * DURATION))
[ "$PER_ENDPOINT" -gt 0 ] && [ "$WARMUP" -lt "$DURATION" ] || { echo "soak: need RATE >= 2 and WARMUP < DURATION" >&2; exit 2; }

need() { command -v "$1" >/dev/null 2>&1; }
if ! need h2load || ! need taskset || ! need openssl || ! need curl; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nghttp2-client util-linux openssl curl >/dev/null
fi

if [ "$BUILD" = 1 ]; then
  echo "== build (release)"
  cargo build --release --locked --quiet
fi
BIN="$ROOT/target/release/deployguard"

echo "== certificates"
# shellcheck source=bench/certs.sh
. "$ROOT/bench/certs.sh"
make_certs "$OUT" soak-ca

POD="$SHARED/corpus/kubewarden_policy-server__tests__data__pod_without_privileged_containers.json"
DEPLOY="$SHARED/corpus/phenixblue_imageswap-webhook__testing__deployments__test-deploy04.json"
cp "$POD" "$OUT/pod.json"; cp "$DEPLOY" "$OUT/deploy.json"

echo "== start deployguard (core 0)"
# --drain-delay 0: nothing routes to us, so there is no reason to wait before exiting.
# The request log goes to a file: at 500 req/s it is ~150 MB over 10 minutes.
taskset -c 0 "$BIN" serve --listen "127.0.0.1:$PORT" --metrics-listen "127.0.0.1:$MPORT" \
  --tls-cert "$OUT/tls.crt" --tls-key "$OUT/tls.key" --log-format json --drain-delay 0 \
  > "$OUT/deployguard.log" 2>&1 &
DG_PID=$!; PIDS+=("$DG_PID")
for _ in $(seq 300); do
  curl -sf --cacert "$OUT/ca.crt" "https://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$DG_PID" 2>/dev/null || { echo "soak: deployguard did not start"; cat "$OUT/deployguard.log"; exit 1; }
  sleep 0.1
done
# A wrong body or endpoint would make the whole soak measure error paths: check both first.
for pair in "pod:/mutate" "deploy:/validate"; do
  name="${pair%%:*}"; path="${pair#*:}"
  code=$(curl -s -o "$OUT/$name.response.json" -w '%{http_code}' --cacert "$OUT/ca.crt" \
    -H 'content-type: application/json' --data-binary @"$OUT/$name.json" "https://127.0.0.1:$PORT$path")
  [ "$code" = 200 ] || { echo "soak: $path answered $code: $(head -c 300 "$OUT/$name.response.json")"; exit 1; }
done

# sample SECONDS_SINCE_START PHASE -> one CSV row from /proc (empty if the process is gone)
sample() {
  local status
  status=$(cat "/proc/$DG_PID/status" 2>/dev/null) || return 0
  awk -v t="$1" -v phase="$2" -v fds="$(ls "/proc/$DG_PID/fd" 2>/dev/null | wc -l)" '
    /^VmRSS/ {rss=$2} /^VmHWM/ {hwm=$2} /^Threads/ {thr=$2}
    END {print t "," phase "," rss "," hwm "," thr "," fds}' <<< "$status"
}

echo "== load: $RATE req/s for ${DURATION}s ($PROTO, 2 × $CLIENTS connections × $PER_CLIENT req/s; load on core 1)"
H2_ARGS=(-c "$CLIENTS" -m 1 -n "$N_PER_ENDPOINT" --rps="$PER_CLIENT" -N 10 -H 'content-type: application/json')
[ "$PROTO" = h1 ] && H2_ARGS+=(--h1)
echo "elapsed_s,phase,vmrss_kib,vmhwm_kib,threads,fds" > "$OUT/rss.csv"
sample 0 idle >> "$OUT/rss.csv"
START=$(date +%s)
taskset -c 1 h2load "${H2_ARGS[@]}" -d "$OUT/pod.json" --log-file "$OUT/mutate.h2.log" \
  "https://127.0.0.1:$PORT/mutate" > "$OUT/mutate.h2.txt" 2>&1 &
MUT_PID=$!; PIDS+=("$MUT_PID")
taskset -c 1 h2load "${H2_ARGS[@]}" -d "$OUT/deploy.json" --log-file "$OUT/validate.h2.log" \
  "https://127.0.0.1:$PORT/validate" > "$OUT/validate.h2.txt" 2>&1 &
VAL_PID=$!; PIDS+=("$VAL_PID")

# Sample on a fixed 5 s grid until both load generators are done (or the server died).
next=$INTERVAL
while kill -0 "$MUT_PID" 2>/dev/null || kill -0 "$VAL_PID" 2>/dev/null; do
  now=$(( $(date +%s) - START ))
  if [ "$now" -ge "$next" ]; then
    sample "$now" load >> "$OUT/rss.csv"
    next=$((next + INTERVAL))
    if [ $((now % 60)) -lt "$INTERVAL" ]; then
      echo "   ${now}s: $(tail -1 "$OUT/rss.csv")"
    fi
  fi
  kill -0 "$DG_PID" 2>/dev/null || break
  sleep 0.5
done
ELAPSED=$(( $(date +%s) - START ))
# One more sample once the load generators have closed their connections: memory that
# stays after that is not connection state.
sleep 1
AFTER_ROW=$(sample "$(( $(date +%s) - START ))" after)
[ -n "$AFTER_ROW" ] && echo "$AFTER_ROW" >> "$OUT/rss.csv"
MUT_RC=0; wait "$MUT_PID" || MUT_RC=$?
VAL_RC=0; wait "$VAL_PID" || VAL_RC=$?

FAIL=()
kill -0 "$DG_PID" 2>/dev/null || FAIL+=("deployguard died during the soak (see $OUT/deployguard.log)")
[ "$MUT_RC" = 0 ] && [ "$VAL_RC" = 0 ] || FAIL+=("h2load exited with $MUT_RC / $VAL_RC")

# counts NAME -> "done 2xx bad p50_ms p99_ms" from h2load's summary and per-request log.
# bad = planned - 2xx: failed, errored and timed-out streams, non-2xx answers and requests
# never sent all count once (h2load's own "failed" and "errored" overlap).
counts() {
  python3 - "$OUT/$1.h2.txt" "$OUT/$1.h2.log" "$N_PER_ENDPOINT" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
planned = int(sys.argv[3])
req = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, \d+ succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", text)
st = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
if not req or not st:
    print(f"0 0 {planned} nan nan"); sys.exit()
done, ok = int(req.group(2)), int(st.group(1))
bad = planned - ok
lat = sorted(int(l.split("\t")[2]) for l in open(sys.argv[2]) if l.strip() and l.split("\t")[1].startswith("2"))
pct = lambda p: lat[min(len(lat) - 1, int(len(lat) * p / 100))] / 1000 if lat else float("nan")
print(f"{done} {ok} {bad} {pct(50):.2f} {pct(99):.2f}")
PY
}
read -r M_DONE M_OK M_BAD M_P50 M_P99 <<< "$(counts mutate)"
read -r V_DONE V_OK V_BAD V_P50 V_P99 <<< "$(counts validate)"
ERRORS=$((M_BAD + V_BAD))
[ "$ERRORS" = 0 ] || FAIL+=("$ERRORS failed, non-2xx or unsent requests (mutate $M_BAD, validate $V_BAD)")

# Growth: first sample at or after the warm-up vs. the last one under load (both with the
# same connections open). The warm-up lets allocator arenas, TLS buffers and connection
# state reach their working size.
read -r WARM_T WARM_KB END_T END_KB PEAK_KB THR0 THR1 FD0 FD1 <<< "$(awk -F, -v w="$WARMUP" '
  $2 != "load" { next }
  !warm && $1 >= w { warm = 1; wt = $1; wkb = $3; thr0 = $5; fd0 = $6 }
  { et = $1; end = $3; peak = $4; thr1 = $5; fd1 = $6 }
  END { print wt, wkb, et, end, peak, thr0, thr1, fd0, fd1 }' "$OUT/rss.csv")"
AFTER_KB=$(echo "$AFTER_ROW" | cut -d, -f3)
if [ -z "$WARM_KB" ] || [ -z "$END_KB" ]; then
  FAIL+=("no RSS sample after the ${WARMUP}s warm-up")
  GROWTH=nan
else
  GROWTH=$(awk -v a="$WARM_KB" -v b="$END_KB" 'BEGIN { printf "%.2f", (b - a) * 100 / a }')
  awk -v g="$GROWTH" -v m="$MAX_GROWTH_PCT" 'BEGIN { exit !(g >= m) }' \
    && FAIL+=("RSS grew ${GROWTH}% (limit ${MAX_GROWTH_PCT}%)")
fi

if kill -0 "$DG_PID" 2>/dev/null; then
  curl -s "http://127.0.0.1:$MPORT/metrics" > "$OUT/metrics.txt" || true
  PANICS=$(awk '$1 == "deployguard_panics_total" {print $2}' "$OUT/metrics.txt")
  [ "${PANICS:-missing}" = 0 ] || FAIL+=("deployguard_panics_total is ${PANICS:-missing}")
  curl -sf --cacert "$OUT/ca.crt" "https://127.0.0.1:$PORT/healthz" >/dev/null || FAIL+=("/healthz did not answer 200 after the soak")
fi

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ACHIEVED=$(awk -v n=$((M_DONE + V_DONE)) -v t="$ELAPSED" 'BEGIN { printf "%.0f", n / t }')
{
  echo "soak: ${ELAPSED}s at $RATE req/s planned ($ACHIEVED achieved, $PROTO), $((M_DONE + V_DONE)) requests of $((2 * N_PER_ENDPOINT)), $((M_OK + V_OK)) 2xx, $ERRORS errors"
  echo "soak: latency p50/p99 ms: Pod /mutate $M_P50/$M_P99, Deployment /validate $V_P50/$V_P99"
  echo "soak: RSS at ${WARM_T}s (after warm-up) $(mib "$WARM_KB") MiB, at ${END_T}s (end of load) $(mib "$END_KB") MiB, growth ${GROWTH}%; peak (VmHWM) $(mib "$PEAK_KB") MiB; after the load $(mib "${AFTER_KB:-0}") MiB; threads $THR0 -> $THR1, fds $FD0 -> $FD1"
} | tee "$OUT/summary.txt"
for f in "${FAIL[@]}"; do echo "soak: FAIL $f" | tee -a "$OUT/summary.txt"; done
[ "${#FAIL[@]}" = 0 ] || exit 1
echo "soak: OK (samples in $OUT/rss.csv)"
