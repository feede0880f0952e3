#!/usr/bin/env bash
# Renders manifests/deployguard.yaml (the chart for `kubectl apply` users) to stdout.
# usage: render-manifests.sh HELM_BINARY
# Deterministic: certificates come from cert-manager, so nothing random is rendered.
set -euo pipefail
HELM="${1:?usage: render-manifests.sh HELM_BINARY}"
ROOT="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
cat <<'EOF'
# deployguard: plain manifests for `kubectl apply -f`.
# GENERATED from charts/deployguard by .ci/chart-tests/render-manifests.sh: do not edit.
# Requires Kubernetes 1.30 or later (the validating webhook uses matchConditions) and
# cert-manager (https://cert-manager.io), which issues the webhook certificate.
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
"$HELM" template deployguard "$ROOT/charts/deployguard" --namespace deployguard --set certs.mode=certManager
