#!/usr/bin/env bash
# Latency that deployguard adds to requests through a real API server (the end-to-end
# tests' control plane, tests/e2e/cluster), measured A/B in one run: Pod creations in a
# namespace deployguard's webhooks judge and in one they do not (the release's
# namespaceSelector leaves it out), alternated in rounds; then a Deployment scaled from 0
# to REPLICAS in each, alternated, timed until all its Pods exist.
#
# usage: bench/apiserver.sh     (ROUNDS=5 PER_ROUND=100 CONCURRENCY=4 REPLICAS=200)
# Needs what tests/e2e/run needs (Go, helm or PyPI). DEPLOYGUARD_BIN: the binary to serve
# (default: a release build). Prints a table; raw figures go to bench/out/apiserver/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
OUT="$ROOT/bench/out/apiserver"
ROUNDS="${ROUNDS:-5}"; PER_ROUND="${PER_ROUND:-100}"; CONCURRENCY="${CONCURRENCY:-4}"; REPLICAS="${REPLICAS:-200}"
rm -rf "$OUT"; mkdir -p "$OUT"
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
  tests/e2e/cluster down "$OUT/cluster" >/dev/null 2>&1 || true
}
trap cleanup EXIT

if [ -z "${DEPLOYGUARD_BIN:-}" ]; then
  cargo build --release --locked --quiet
  DEPLOYGUARD_BIN="$ROOT/target/release/deployguard"
fi
if [ -z "${HELM:-}" ]; then
  if command -v helm >/dev/null; then HELM=$(command -v helm)
  else bash "${SHARED_DIR:-$ROOT/../shared}/tools/install-helm.sh" "$OUT/tools" >/dev/null; HELM="$OUT/tools/helm"; fi
fi
tests/e2e/cluster up "$OUT/cluster"
set -a; . "$OUT/cluster/env"; set +a
K() { "$KUBECTL" "$@"; }
(cd tests/e2e/controlplane && GOTOOLCHAIN=local go build -o "$OUT/apiload" ./apiload)

# deployguard from the host, as the end-to-end tests run it (webhooks.url, the chart's
# certificate, policy and ServiceAccount token, the LimitRange watch on).
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
NS=deployguard-bench
K create namespace "$NS" >/dev/null
"$HELM" install "$NS" charts/deployguard -n "$NS" --set webhooks.url="https://127.0.0.1:$PORT" \
  --set webhooks.namespaceSelector.matchLabels.deployguard-bench=on >/dev/null
K -n "$NS" get secret "$NS-tls" -o jsonpath='{.data.tls\.crt}' | base64 -d >"$OUT/tls.crt"
K -n "$NS" get secret "$NS-tls" -o jsonpath='{.data.tls\.key}' | base64 -d >"$OUT/tls.key"
K -n "$NS" get configmap "$NS-policy" -o jsonpath='{.data.policy\.yaml}' >"$OUT/policy.yaml"
TOKEN=$(K -n "$NS" create token "$NS")
cat >"$OUT/sa.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: "$API_SERVER", certificate-authority: "$CLUSTER_CA"}}]
users: [{name: sa, user: {token: "$TOKEN"}}]
contexts: [{name: sa, context: {cluster: e2e, user: sa}}]
current-context: sa
KC
KUBECONFIG="$OUT/sa.kubeconfig" "$DEPLOYGUARD_BIN" serve --listen "127.0.0.1:$PORT" --metrics-listen 127.0.0.1:0 \
  --tls-cert "$OUT/tls.crt" --tls-key "$OUT/tls.key" --config "$OUT/policy.yaml" --limit-ranges watch \
  --log-format json >"$OUT/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do grep -q '"deployguard ready"' "$OUT/serve.log" && break; sleep 0.1; done

K create namespace bench-on >/dev/null; K label namespace bench-on deployguard-bench=on >/dev/null
K create namespace bench-off >/dev/null
for ns in bench-on bench-off; do
  until K -n "$ns" get serviceaccount default >/dev/null 2>&1; do sleep 0.2; done
done
cat >"$OUT/pod.json" <<'JSON'
{"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "bench-", "labels": {"app": "bench"}},
 "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1",
   "ports": [{"name": "http", "containerPort": 8080}],
   "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
   "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}},
   "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}}]}}
JSON
load() { "$OUT/apiload" pods -kubeconfig-dir "$OUT/cluster" -namespace "$1" -count "$PER_ROUND" -concurrency "$CONCURRENCY" -body "$OUT/pod.json"; }
load bench-on >/dev/null; load bench-off >/dev/null   # warm-up: connections, caches
for round in $(seq "$ROUNDS"); do
  load bench-on >>"$OUT/pods-on.us"
  load bench-off >>"$OUT/pods-off.us"
done
# Every judged creation reached deployguard (twice: /mutate and /validate).
reviews=$(grep -c '"message":"review".*"namespace":"bench-on"' "$OUT/serve.log" || true)

# Scale-up: a Deployment per side and round, 0 to REPLICAS.
for round in 1 2; do
  for side in on off; do
    name="scale-$side-$round"
    K -n "bench-$side" apply -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: $name}
spec:
  replicas: 0
  selector: {matchLabels: {app: $name}}
  template:
    metadata: {labels: {app: $name}}
    spec:
      containers:
      - name: app
        image: registry.example.com/app:1
        ports: [{name: http, containerPort: 8080}]
        livenessProbe: {httpGet: {path: /healthz, port: http}}
        readinessProbe: {httpGet: {path: /readyz, port: http}}
        resources: {requests: {cpu: 10m, memory: 128Mi}, limits: {cpu: '1', memory: 512Mi}}
YAML
    "$OUT/apiload" scale -kubeconfig-dir "$OUT/cluster" -namespace "bench-$side" -deployment "$name" -replicas "$REPLICAS" >>"$OUT/scale-$side.s"
  done
done

python3 - "$OUT" "$reviews" "$ROUNDS" "$PER_ROUND" "$CONCURRENCY" "$REPLICAS" <<'PY'
import statistics, sys
out, reviews, rounds, per_round, concurrency, replicas = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:])
def read(name): return [float(x) for x in open(f"{out}/{name}").read().split()]
def pct(xs, p): xs = sorted(xs); return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]
on, off = read("pods-on.us"), read("pods-off.us")
print(f"Pod creations through kube-apiserver v1.37.2, {rounds} alternated rounds of {per_round}, {concurrency} in flight ({len(on)} per side):")
print(f"  {'':24} {'p50 ms':>8} {'p99 ms':>8}")
for label, xs in (("webhooks (bench-on)", on), ("no webhooks (bench-off)", off)):
    print(f"  {label:24} {pct(xs,50)/1000:8.2f} {pct(xs,99)/1000:8.2f}")
for p in (50, 99):
    a, b = pct(on, p) / 1000, pct(off, p) / 1000
    print(f"  p{p} added: {a - b:+.2f} ms, ratio {a / b:.2f}")
print(f"  deployguard reviews logged for bench-on: {reviews} (2 per judged creation: /mutate and /validate)")
son, soff = read("scale-on.s"), read("scale-off.s")
print(f"Deployment scaled 0 -> {replicas}, until all Pods exist (2 alternated rounds):")
print(f"  webhooks: {', '.join(f'{x:.2f} s' for x in son)}; no webhooks: {', '.join(f'{x:.2f} s' for x in soff)}; ratio of means {statistics.mean(son) / statistics.mean(soff):.2f}")
PY
