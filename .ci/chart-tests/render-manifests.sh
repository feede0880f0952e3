#!/usr/bin/env bash
# Renders the plain manifests (the chart for `kubectl apply` users) to stdout, in two parts:
#   render-manifests.sh HELM_BINARY install   -> manifests/deployguard.yaml
#   render-manifests.sh HELM_BINARY webhooks  -> manifests/deployguard-webhooks.yaml
# The webhook configurations are a file of their own, applied only once cert-manager has
# issued the certificate: applied together, a cluster without cert-manager (or one still
# issuing) would get a fail-closed webhook without a caBundle, refusing every Pod.
# Deterministic: certificates come from cert-manager, so nothing random is rendered.
set -euo pipefail
HELM="${1:?usage: render-manifests.sh HELM_BINARY install|webhooks}"
PART="${2:?usage: render-manifests.sh HELM_BINARY install|webhooks}"
ROOT="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
render() { "$HELM" template deployguard "$ROOT/charts/deployguard" --namespace deployguard --set certs.mode=certManager "$@"; }
case "$PART" in
  install)
    cat <<'EOF'
# deployguard: plain manifests for `kubectl apply -f`, step 1 of 2.
# GENERATED from charts/deployguard by .ci/chart-tests/render-manifests.sh: do not edit.
# Requires Kubernetes 1.30 or later (the validating webhook uses matchConditions) and
# cert-manager (https://cert-manager.io), which issues the webhook certificate: without it
# this apply fails on the Issuer and Certificate ("no matches for kind") and nothing
# intercepts any request. Step 2, once the certificate is issued:
#   kubectl -n deployguard wait --for=condition=Ready certificate/deployguard --timeout=5m
#   kubectl apply -f manifests/deployguard-webhooks.yaml
# Installs into the namespace "deployguard" with the chart's defaults (policy in enforce
# mode); to start in warn mode, edit defaultMode in the deployguard-policy ConfigMap.
# The LimitRange watch is on: a ClusterRole reads limitranges (get, list, watch) for the
# deployguard ServiceAccount, whose token is mounted. To turn it off, render the chart
# with limitRanges.watch=false (no RBAC, no token).
---
apiVersion: v1
kind: Namespace
metadata:
  name: deployguard
  labels:
    app.kubernetes.io/name: deployguard
    app.kubernetes.io/part-of: deployguard
EOF
    # Every document but the webhook configurations (templates/webhooks.yaml).
    render | awk '
      /^---$/ { if (doc != "" && !skip) printf "%s", doc; doc = $0 "\n"; skip = 0; next }
      /^# Source: deployguard\/templates\/webhooks.yaml$/ { skip = 1 }
      { doc = doc $0 "\n" }
      END { if (doc != "" && !skip) printf "%s", doc }'
    ;;
  webhooks)
    cat <<'EOF'
# deployguard: plain manifests for `kubectl apply -f`, step 2 of 2: the webhook
# configurations. GENERATED from charts/deployguard by .ci/chart-tests/render-manifests.sh.
# Apply only after manifests/deployguard.yaml, once cert-manager has issued the certificate
# and its cainjector can fill in the caBundle:
#   kubectl -n deployguard wait --for=condition=Ready certificate/deployguard --timeout=5m
#   kubectl apply -f manifests/deployguard-webhooks.yaml
# The validating entry validate.deployguard.io fails closed: while no deployguard Pod
# answers, the Pods and workloads it may deny cannot be created outside the excluded
# namespaces (SECURITY.md). `kubectl delete -f` this file first to uninstall.
EOF
    render --show-only templates/webhooks.yaml
    ;;
  *) echo "render-manifests.sh: unknown part $PART (install|webhooks)" >&2; exit 2 ;;
esac
