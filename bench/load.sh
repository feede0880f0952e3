#!/usr/bin/env bash
# Load test: deployguard against a fixed-response nginx over the same TLS setup, measured
# in one run on this machine. Each server is pinned to core 0, the load generator to core 1.
#
# usage: bench/load.sh [--no-write]     (root on Debian: installs wrk, h2load and nginx)
# Prints a table; appends the figures to BENCHMARKS.md unless --no-write.
# Raw outputs go to bench/out/load/ (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
SHARED="${SHARED_DIR:-$ROOT/../shared}"
OUT="$ROOT/bench/out/load"
WRITE=1
[ "${1:-}" = "--no-write" ] && WRITE=0
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONNECTIONS=32
FIXED_RATE=2000
DG_PORT=18443; DG_METRICS=19090; NGINX_PORT=28443
rm -rf "$OUT"; mkdir -p "$OUT"
START=$SECONDS
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

need() { command -v "$1" >/dev/null 2>&1; }
APT_PID=""
if ! need wrk || ! need h2load || ! need nginx || ! need taskset || ! need openssl; then
  # In the background: the download overlaps the build.
  { apt-get update -qq &&
    apt-get install -y -qq --no-install-recommends wrk nghttp2-client nginx-light util-linux openssl curl
  } > "$OUT/apt.log" 2>&1 &
  APT_PID=$!
fi

echo "== build (release)"
cargo build --release --locked --quiet
if [ -n "$APT_PID" ]; then
  wait "$APT_PID" || { echo "load: apt-get failed"; cat "$OUT/apt.log"; exit 1; }
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
BIN="$ROOT/target/release/deployguard"

echo "== certificates"
# shellcheck source=bench/certs.sh
. "$ROOT/bench/certs.sh"
make_certs "$OUT" bench-ca

# Two real bodies from the corpus: a Pod CREATE to /mutate, a multi-container Deployment
# CREATE to /validate.
POD="$SHARED/corpus/kubewarden_policy-server__tests__data__pod_without_privileged_containers.json"
DEPLOY="$SHARED/corpus/phenixblue_imageswap-webhook__testing__deployments__test-deploy04.json"
cp "$POD" "$OUT/pod.json"; cp "$DEPLOY" "$OUT/deploy.json"
"$BIN" review --endpoint mutate "$OUT/pod.json" > "$OUT/pod.response.json"
"$BIN" review --endpoint validate "$OUT/deploy.json" > "$OUT/deploy.response.json"

echo "== start deployguard (core 0)"
READY=$(python3 "$ROOT/bench/start_to_ready.py" --ca "$OUT/ca.crt" --port "$DG_PORT" \
  --log "$OUT/deployguard.log" -- taskset -c 0 "$BIN" serve --listen "127.0.0.1:$DG_PORT" \
  --metrics-listen "127.0.0.1:$DG_METRICS" --tls-cert "$OUT/tls.crt" --tls-key "$OUT/tls.key" \
  --log-format json) || { cat "$OUT/deployguard.log"; exit 1; }
read -r DG_PID READY_MS <<< "$READY"
PIDS+=("$DG_PID")
sleep 1
RSS_IDLE_KB=$(awk '/^VmRSS/ {print $2}' "/proc/$DG_PID/status")

echo "== start nginx with a fixed response (core 0)"
mkdir -p "$OUT/nginx"
python3 - "$OUT" "$NGINX_PORT" <<'PY'
import sys
out, port = sys.argv[1], sys.argv[2]
import os
os.makedirs(f"{out}/nginx/www", exist_ok=True)
for name, path in (("pod", "mutate"), ("deploy", "validate")):
    text = open(f"{out}/{name}.response.json").read().rstrip("\n")
    open(f"{out}/nginx/www/{path}", "w").write(text)
open(f"{out}/nginx/nginx.conf", "w").write(f"""worker_processes 1;
pid {out}/nginx/nginx.pid;
error_log {out}/nginx/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_buffer_size 64k;
  server {{
    # nginx 1.22 (Debian 12) spells HTTP/2 on the listen line; 1.25+ also accepts it.
    listen 127.0.0.1:{port} ssl http2;
    ssl_certificate {out}/tls.crt;
    ssl_certificate_key {out}/tls.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    keepalive_requests 1000000;
    # Without this nginx 1.22 fails every HTTP/2 stream after ~2,300 requests on a
    # connection whose bodies it discarded; with it, a handful per 100,000 still fail
    # (and curl's HTTP/2 uploads stall, hence --http1.1 in the checks below).
    http2_body_preread_size 0;
    # Static files, so that nginx reads (and discards) the request body like a real
    # server: `return 200` answers before reading it, which breaks HTTP/2 flow control
    # after a few thousand requests. POST to a file is 405, turned into a 200 GET.
    root {out}/nginx/www;
    default_type application/json;
    error_page 405 =200 $uri;
    location = /mutate {{ }}
    location = /validate {{ }}
  }}
}}
""")
PY
taskset -c 0 "$NGINX" -c "$OUT/nginx/nginx.conf" -p "$OUT/nginx" -g 'daemon off;' &
NGINX_PID=$!; PIDS+=("$NGINX_PID")
until curl -sf --http1.1 --max-time 2 --cacert "$OUT/ca.crt" -X POST --data-binary @"$OUT/pod.json" "https://127.0.0.1:$NGINX_PORT/mutate" >/dev/null 2>&1; do
  kill -0 "$NGINX_PID" 2>/dev/null || { echo "nginx did not start"; exit 1; }
  sleep 0.05
done
for pair in "pod:/mutate" "deploy:/validate"; do
  name="${pair%%:*}"; path="${pair#*:}"
  cmp <(curl -s --http1.1 --max-time 2 --cacert "$OUT/ca.crt" -X POST --data-binary @"$OUT/$name.json" "https://127.0.0.1:$NGINX_PORT$path"; echo) \
    "$OUT/$name.response.json" || { echo "nginx's fixed $path response differs from deployguard's"; exit 1; }
done

cat > "$OUT/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open(os.getenv("BODY")):read("*a")
LUA

# wrk_run NAME URL BODY -> prints "rps p50 p90 p99 errors" (latencies in ms)
wrk_run() {
  local name="$1" url="$2" body="$3"
  BODY="$body" taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" -s "$OUT/post.lua" "$url" > /dev/null
  BODY="$body" taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$OUT/post.lua" "$url" > "$OUT/$name.wrk.txt"
  python3 - "$OUT/$name.wrk.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def ms(v):
    n, unit = float(re.match(r"([\d.]+)", v).group(1)), re.search(r"(us|ms|s)$", v).group(1)
    return n / 1000 if unit == "us" else n if unit == "ms" else n * 1000
lat = {p: ms(v) for p, v in re.findall(r"^\s+(50|90|99)%\s+(\S+)", text, re.M)}
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
bad = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, errors.groups())) if errors else 0)
print(f"{rps:.0f} {lat['50']:.3f} {lat['90']:.3f} {lat['99']:.3f} {bad}")
PY
}

# h2_run NAME URL BODY [EXTRA...] -> prints "rps p50 p90 p99 errors"
# h2load counts a fixed number of requests (-n): its timed mode (-D) records no requests
# against nginx, which answers before it has read the request body. The count is the
# warm-up's rate (or REQUESTS, for the fixed-rate runs) times DURATION.
h2_run() {
  local name="$1" url="$2" body="$3"; shift 3
  local h2=(taskset -c 1 h2load -c"$CONNECTIONS" -m1 -d "$body" -H 'content-type: application/json')
  local count="${REQUESTS:-}"
  if [ -z "$count" ]; then
    local rate
    rate=$("${h2[@]}" -n $((CONNECTIONS * 500)) "$@" "$url" | sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p')
    count=$(python3 -c "print(max(1000, int(float('${rate:-0}') * $DURATION)))")
  fi
  "${h2[@]}" -n "$count" --log-file "$OUT/$name.h2.log" "$@" "$url" > "$OUT/$name.h2.txt"
  python3 - "$OUT/$name.h2.txt" "$OUT/$name.h2.log" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
rows = [line.split("\t") for line in open(sys.argv[2]) if line.strip()]
lat = sorted(int(r[2]) / 1000 for r in rows)
def pct(p):
    return lat[min(len(lat) - 1, int(len(lat) * p / 100))] if lat else float("nan")
status = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
failed = re.search(r"requests: \d+ total, \d+ started, \d+ done, \d+ succeeded, (\d+) failed, (\d+) errored", text)
seconds = re.search(r"finished in ([\d.]+)(ms|s),", text)
elapsed = float(seconds.group(1)) / (1000 if seconds.group(2) == "ms" else 1)
bad = int(status.group(3)) + int(status.group(4)) + int(failed.group(1)) + int(failed.group(2))
print(f"{len(rows) / elapsed:.0f} {pct(50):.3f} {pct(90):.3f} {pct(99):.3f} {bad}")
PY
}

declare -A R
measure() {  # measure KEY TOOL PATH BODY [EXTRA...]
  local key="$1" tool="$2" path="$3" body="$4"; shift 4
  local file="${key//[ \/]/_}"
  R["$key/dg"]="$("${tool}_run" "$file-dg" "https://127.0.0.1:$DG_PORT$path" "$body" "$@")"
  R["$key/nginx"]="$("${tool}_run" "$file-nginx" "https://127.0.0.1:$NGINX_PORT$path" "$body" "$@")"
}

echo "== closed loop, $CONNECTIONS connections, ${DURATION}s after ${WARMUP}s warm-up"
measure "h1 pod /mutate" wrk /mutate "$OUT/pod.json"
measure "h1 deploy /validate" wrk /validate "$OUT/deploy.json"
measure "h2 pod /mutate" h2 /mutate "$OUT/pod.json"
measure "h2 deploy /validate" h2 /validate "$OUT/deploy.json"
RSS_PEAK_KB=$(awk '/^VmHWM/ {print $2}' "/proc/$DG_PID/status")

echo "== fixed rate $FIXED_RATE req/s (8 clients × $((FIXED_RATE / 8)) req/s)"
# h2load --rps paces each client; latency is measured per request.
fixed() {  # fixed KEY PATH BODY [EXTRA...]
  local key="$1" path="$2" body="$3"; shift 3
  local file="${key//[ \/]/_}"
  R["$key/dg"]="$(REQUESTS=$((FIXED_RATE * DURATION)) h2_run "$file-dg" "https://127.0.0.1:$DG_PORT$path" "$body" --rps=$((FIXED_RATE / 8)) "$@")"
}
CONNECTIONS_SAVED=$CONNECTIONS; CONNECTIONS=8
fixed "fixed h1 pod /mutate" /mutate "$OUT/pod.json" --h1
fixed "fixed h2 pod /mutate" /mutate "$OUT/pod.json"
fixed "fixed h2 deploy /validate" /validate "$OUT/deploy.json"
CONNECTIONS=$CONNECTIONS_SAVED
RSS_AFTER_KB=$(awk '/^VmRSS/ {print $2}' "/proc/$DG_PID/status")

COMMIT="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo '+dirty')"
DATE="$(date -u +%Y-%m-%d)"
MACHINE="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
TABLE="$OUT/table.md"
{
  echo "| run | deployguard req/s | nginx req/s | ratio | dg p50 / p90 / p99 ms | nginx p99 ms | non-2xx |"
  echo "|---|---|---|---|---|---|---|"
  for key in "h1 pod /mutate" "h1 deploy /validate" "h2 pod /mutate" "h2 deploy /validate"; do
    read -r drps d50 d90 d99 dbad <<< "${R[$key/dg]}"
    read -r nrps _ _ n99 nbad <<< "${R[$key/nginx]}"
    ratio=$(python3 -c "print(f'{$drps / $nrps:.2f}')")
    echo "| $key | $drps | $nrps | **$ratio** | $d50 / $d90 / $d99 | $n99 | $dbad / $nbad |"
  done
  for key in "fixed h1 pod /mutate" "fixed h2 pod /mutate" "fixed h2 deploy /validate"; do
    read -r drps d50 d90 d99 dbad <<< "${R[$key/dg]}"
    echo "| $key @ $FIXED_RATE/s | $drps | – | – | $d50 / $d90 / $d99 | – | $dbad |"
  done
  echo
  echo "deployguard: start to /readyz 200 in $READY_MS ms (polled in-process); RSS idle $((RSS_IDLE_KB / 1024)) MiB, peak $((RSS_PEAK_KB / 1024)) MiB, after the runs $((RSS_AFTER_KB / 1024)) MiB."
} > "$TABLE"
cat "$TABLE"

if [ "$WRITE" = 1 ]; then
  {
    echo "### Load test, $DATE, commit $COMMIT"
    echo
    echo "Machine: $MACHINE. Command: \`bench/load.sh\` (took $((SECONDS - START)) s)."
    echo
    cat "$TABLE"
    echo
  } > "$OUT/section.md"
  # New runs go above the marker, before the analysis that follows them.
  python3 - "$ROOT/BENCHMARKS.md" "$OUT/section.md" <<'PY'
import sys
path, section = sys.argv[1], open(sys.argv[2]).read()
text = open(path).read()
marker = "<!-- bench/load.sh inserts new runs above this line -->"
text = text.replace(marker, section + marker) if marker in text else text.rstrip("\n") + "\n\n" + section
open(path, "w").write(text)
PY
  echo "added to BENCHMARKS.md"
fi
