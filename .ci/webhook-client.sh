#!/usr/bin/env bash
# The server called as kube-apiserver calls it: ../shared/tools/webhook-client (Go's net/http,
# HTTP/2 over TLS, one shared client reused by several goroutines) sends every AdmissionReview
# of the examples and the corpus to /validate and /mutate and checks each answer as the API
# server's admission dispatcher does (status, apiVersion/kind, uid, patchType, patch applies).
# usage: .ci/webhook-client.sh BINARY     (root on Debian: build.sh installs Go with apt)
set -euo pipefail
BIN="$(realpath "${1:?usage: .ci/webhook-client.sh BINARY}")"
cd "$(dirname "$0")/.."
ROOT="$PWD"
SHARED="${SHARED_DIR:-$ROOT/../shared}"
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() { [ -z "$SERVER_PID" ] || kill "$SERVER_PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

bash "$SHARED/tools/webhook-client/build.sh" "$WORK/webhook-client"
# shellcheck source=bench/certs.sh
. "$ROOT/bench/certs.sh"
make_certs "$WORK" webhook-client-ca

# Every AdmissionReview the CLI answers (bare AdmissionRequests wrapped); the few corpus
# bodies refused as malformed (exit 2, a 400 from the server) are covered by the server tests.
mkdir "$WORK/reviews"
python3 - "$BIN" "$WORK/reviews" "$SHARED/corpus" "$ROOT/examples" <<'PY'
import json, pathlib, subprocess, sys
binary, out = sys.argv[1], pathlib.Path(sys.argv[2])
kept = 0
for directory in sys.argv[3:]:
    for path in sorted(pathlib.Path(directory).glob("*.json")):
        try:
            value = json.loads(path.read_text())
        except ValueError:
            continue
        if not isinstance(value, dict):
            continue
        if value.get("kind") != "AdmissionReview":
            if "uid" not in value or "operation" not in value:
                continue
            value = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": value}
        body = json.dumps(value).encode()
        answered = subprocess.run([binary, "review", "--endpoint", "validate", "-"], input=body,
                                  capture_output=True).returncode == 0
        if answered:
            (out / path.name).write_bytes(body)
            kept += 1
print(f"{kept} AdmissionReviews")
PY

# Port 0: the kernel picks free ports, and the log's ready line says which.
"$BIN" serve --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
  --tls-cert "$WORK/tls.crt" --tls-key "$WORK/tls.key" --drain-delay 0 --log-format json \
  >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
  grep -q '"deployguard ready"' "$WORK/server.log" && break
  sleep 0.1
done
PORT=$(grep '"deployguard ready"' "$WORK/server.log" | grep -o '"listen":"[^"]*"' | head -n 1 | cut -d'"' -f4)
PORT="${PORT##*:}"
[ -n "$PORT" ] || { cat "$WORK/server.log"; echo "webhook-client: the server did not start"; exit 1; }

for endpoint in validate mutate; do
  flags=(); [ "$endpoint" = mutate ] && flags=(-mutating)
  if ! "$WORK/webhook-client" -url "https://127.0.0.1:$PORT/$endpoint" -ca "$WORK/ca.crt" "${flags[@]}" \
      -workers 4 -rounds 5 "$WORK"/reviews/*.json > "$WORK/$endpoint.out"; then
    grep '"error"' "$WORK/$endpoint.out" | head -20 || true
    tail -1 "$WORK/$endpoint.out"
    echo "webhook-client: /$endpoint answers failed the API server's checks"; exit 1
  fi
  echo "/$endpoint: $(tail -1 "$WORK/$endpoint.out")"
done
