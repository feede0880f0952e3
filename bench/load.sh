#!/usr/bin/env bash
# Load test: deployguard against a fixed-response nginx over the same TLS setup, measured
# in one run on this machine. Each server is pinned to core 0, the load generator to core 1.
# Two nginx targets: one that reads (and discards) the request body like a real server, the
# bar deployguard is held to, and one that answers with `return 200` before reading it.
# Last, a second deployguard with the LimitRange watch on (against bench/fake_kube_api.py)
# gives the watch's own memory cost.
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
DG_PORT=18443; DG_METRICS=19090; NGINX_PORT=28443; RETURN_PORT=28444
WATCH_PORT=18444; WATCH_METRICS=19091; KUBE_PORT=18080; LIMIT_RANGES=50
rm -rf "$OUT"; mkdir -p "$OUT"
START=$SECONDS
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
for port in "$DG_PORT" "$DG_METRICS" "$NGINX_PORT" "$RETURN_PORT" "$WATCH_PORT" "$WATCH_METRICS" "$KUBE_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "load: port $port is in use (a server left from an earlier run? pkill -f 'deployguard serve')"; exit 1
  fi
done

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
  --drain-delay 0 --log-format json) || { cat "$OUT/deployguard.log"; exit 1; }
read -r DG_PID READY_MS <<< "$READY"
PIDS+=("$DG_PID")
sleep 1
RSS_IDLE_KB=$(awk '/^VmRSS/ {print $2}' "/proc/$DG_PID/status")

echo "== start nginx with a fixed response (core 0)"
mkdir -p "$OUT/nginx"
python3 - "$OUT" "$NGINX_PORT" "$RETURN_PORT" <<'PY'
import sys
out, port, return_port = sys.argv[1], sys.argv[2], sys.argv[3]
import os
os.makedirs(f"{out}/nginx/www", exist_ok=True)
answers = {}
for name, path in (("pod", "mutate"), ("deploy", "validate")):
    text = open(f"{out}/{name}.response.json").read().rstrip("\n")
    open(f"{out}/nginx/www/{path}", "w").write(text)
    # An nginx single-quoted string: backslash and quote escaped; `$` would be a variable.
    assert "$" not in text, "a $ in the answer cannot be written into nginx's return"
    answers[path] = text.replace("\\", "\\\\").replace("'", "\\'")
tls = f"""    ssl_certificate {out}/tls.crt;
    ssl_certificate_key {out}/tls.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    keepalive_requests 1000000;
    # Without this nginx 1.22 fails every HTTP/2 stream after ~2,300 requests on a
    # connection whose bodies it discarded; with it, a handful per 100,000 still fail
    # (and curl's HTTP/2 uploads stall, hence --http1.1 in the checks below).
    http2_body_preread_size 0;"""
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
{tls}    # Static files, so that nginx reads (and discards) the request body like a real
    # server: `return 200` answers before reading it, which breaks HTTP/2 flow control
    # after a few thousand requests. POST to a file is 405, turned into a 200 GET.
    root {out}/nginx/www;
    default_type application/json;
    error_page 405 =200 $uri;
    location = /mutate {{ }}
    location = /validate {{ }}
  }}
  server {{
    # Answers before reading the body: the most nginx can do, reported without a target.
    listen 127.0.0.1:{return_port} ssl http2;
{tls}    default_type application/json;
    location = /mutate {{ return 200 '{answers["mutate"]}'; }}
    location = /validate {{ return 200 '{answers["validate"]}'; }}
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
for port in "$NGINX_PORT" "$RETURN_PORT"; do
  for pair in "pod:/mutate" "deploy:/validate"; do
    name="${pair%%:*}"; path="${pair#*:}"
    cmp <(curl -s --http1.1 --max-time 2 --cacert "$OUT/ca.crt" -X POST --data-binary @"$OUT/$name.json" "https://127.0.0.1:$port$path"; echo) \
      "$OUT/$name.response.json" || { echo "nginx's fixed $path response on port $port differs from deployguard's"; exit 1; }
  done
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
  # -N: a stream that stalls (nginx's `return 200` over HTTP/2 can) fails its connection
  # after 5 s instead of hanging the run; it is counted in the errors column.
  local h2=(taskset -c 1 h2load -c"$CONNECTIONS" -m1 -N 5s -d "$body" -H 'content-type: application/json')
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
  R["$key/return"]="$("${tool}_run" "$file-return" "https://127.0.0.1:$RETURN_PORT$path" "$body" "$@")"
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

echo "== the LimitRange watch's memory: a second deployguard watching $LIMIT_RANGES LimitRanges"
python3 "$ROOT/bench/fake_kube_api.py" "$KUBE_PORT" "$LIMIT_RANGES" &
KUBE_PID=$!; PIDS+=("$KUBE_PID")
until curl -sf --max-time 1 "http://127.0.0.1:$KUBE_PORT/api/v1/limitranges" >/dev/null; do
  kill -0 "$KUBE_PID" 2>/dev/null || { echo "fake_kube_api.py did not start"; exit 1; }
  sleep 0.05
done
# /readyz answers 200 only once the LimitRange list has been read.
READY=$(python3 "$ROOT/bench/start_to_ready.py" --ca "$OUT/ca.crt" --port "$WATCH_PORT" \
  --log "$OUT/deployguard-watch.log" -- taskset -c 0 "$BIN" serve --listen "127.0.0.1:$WATCH_PORT" \
  --metrics-listen "127.0.0.1:$WATCH_METRICS" --tls-cert "$OUT/tls.crt" --tls-key "$OUT/tls.key" \
  --limit-ranges watch --kube-api-url "http://127.0.0.1:$KUBE_PORT" \
  --drain-delay 0 --log-format json) || { cat "$OUT/deployguard-watch.log"; exit 1; }
read -r WATCH_PID _ <<< "$READY"
PIDS+=("$WATCH_PID")
curl -s "http://127.0.0.1:$WATCH_METRICS/metrics" | grep -q '^deployguard_limit_ranges_synced 1' ||
  { echo "the watching server is ready but not synced"; exit 1; }
sleep 1
WATCH_IDLE_KB=$(awk '/^VmRSS/ {print $2}' "/proc/$WATCH_PID/status")
R["watch h1 pod /mutate/dg"]="$(wrk_run watch-h1-pod "https://127.0.0.1:$WATCH_PORT/mutate" "$OUT/pod.json")"
WATCH_PEAK_KB=$(awk '/^VmHWM/ {print $2}' "/proc/$WATCH_PID/status")

COMMIT="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo '+dirty')"
DATE="$(date -u +%Y-%m-%d)"
MACHINE="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
TABLE="$OUT/table.md"
{
  echo "| run | deployguard req/s | nginx req/s (reads body) | ratio | nginx \`return 200\` req/s | ratio | dg p50 / p90 / p99 ms | nginx p99 ms | non-2xx dg / nginx / return |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for key in "h1 pod /mutate" "h1 deploy /validate" "h2 pod /mutate" "h2 deploy /validate"; do
    read -r drps d50 d90 d99 dbad <<< "${R[$key/dg]}"
    read -r nrps _ _ n99 nbad <<< "${R[$key/nginx]}"
    read -r rrps _ _ _ rbad <<< "${R[$key/return]}"
    ratio=$(python3 -c "print(f'{$drps / $nrps:.2f}')")
    return_ratio=$(python3 -c "print(f'{$drps / $rrps:.2f}')")
    echo "| $key | $drps | $nrps | **$ratio** | $rrps | $return_ratio | $d50 / $d90 / $d99 | $n99 | $dbad / $nbad / $rbad |"
  done
  for key in "fixed h1 pod /mutate" "fixed h2 pod /mutate" "fixed h2 deploy /validate" "watch h1 pod /mutate"; do
    read -r drps d50 d90 d99 dbad <<< "${R[$key/dg]}"
    label="$key @ $FIXED_RATE/s"; [ "${key#watch}" = "$key" ] || label="$key (LimitRange watch on)"
    echo "| $label | $drps | – | – | – | – | $d50 / $d90 / $d99 | – | $dbad |"
  done
  echo
  echo "deployguard: start to /readyz 200 in $READY_MS ms (polled in-process); RSS idle $((RSS_IDLE_KB / 1024)) MiB, peak $((RSS_PEAK_KB / 1024)) MiB, after the runs $((RSS_AFTER_KB / 1024)) MiB (LimitRange watch off)."
  echo "With the LimitRange watch on ($LIMIT_RANGES LimitRanges): RSS idle $((WATCH_IDLE_KB / 1024)) MiB ($(python3 -c "print(f'{($WATCH_IDLE_KB - $RSS_IDLE_KB) / 1024:+.1f}')") MiB), peak $((WATCH_PEAK_KB / 1024)) MiB after one closed-loop HTTP/1.1 run."
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
