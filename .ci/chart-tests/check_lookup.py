#!/usr/bin/env python3
"""certs.mode=helm keeps its certificate across upgrades (Helm `lookup`), tested offline.

usage: check_lookup.py HELM CHART_DIR NAMESPACE

Serves a fake API server (fake_apiserver.py) holding the TLS Secret of an earlier render and
runs `helm template --dry-run=server` against it, which is what `helm upgrade` renders:
  1. the existing Secret is reused: same ca.crt/tls.crt/tls.key, and caBundle == its ca.crt;
  2. an existing Secret whose SAN hash annotation differs (the service was renamed) is replaced;
  3. an existing Secret without tls.key is replaced.
"""
import copy
import os
import subprocess
import sys
import tempfile
import threading
from http.server import ThreadingHTTPServer

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_apiserver  # noqa: E402

RELEASE = "deployguard"


def render(helm, chart, ns, server=None):
    cmd = [helm, "template", RELEASE, chart, "-n", ns]
    if server:
        cmd += ["--dry-run=server", "--kube-apiserver", server]
        if "v4." in subprocess.run([helm, "version", "--short"], capture_output=True, text=True).stdout:
            cmd.append("--disable-openapi-validation")  # the fake server has no OpenAPI document
    env = dict(os.environ, KUBECONFIG=os.devnull, HELM_CACHE_HOME=tempfile.gettempdir())
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    if out.returncode != 0:
        raise SystemExit(f"helm failed: {' '.join(cmd)}\n{out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def tls(docs):
    secret = next(d for d in docs if d["kind"] == "Secret")
    bundles = [w["clientConfig"]["caBundle"] for d in docs if d["kind"].endswith("WebhookConfiguration") for w in d["webhooks"]]
    return secret, bundles


def main():
    helm, chart, ns = sys.argv[1:4]
    first, _ = tls(render(helm, chart, ns))
    # what the cluster holds after `helm install`: Helm's ownership metadata added
    first["metadata"].setdefault("annotations", {}).update(
        {"meta.helm.sh/release-name": RELEASE, "meta.helm.sh/release-namespace": ns})
    first["metadata"]["labels"]["app.kubernetes.io/managed-by"] = "Helm"

    stale_san = copy.deepcopy(first)
    stale_san["metadata"]["annotations"]["deployguard.io/san-hash"] = "0000000000000000"
    no_key = copy.deepcopy(first)
    del no_key["data"]["tls.key"]

    failures = []
    for name, existing, expect_reuse in (("existing Secret", first, True),
                                         ("Secret with other SANs", stale_san, False),
                                         ("Secret without tls.key", no_key, False)):
        fake_apiserver.OBJECTS.clear()
        fake_apiserver.OBJECTS[(ns, "Secret", existing["metadata"]["name"])] = existing
        server = ThreadingHTTPServer(("127.0.0.1", 0), fake_apiserver.Handler)
        fake_apiserver.Handler.log_message = lambda *a: None
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            secret, bundles = tls(render(helm, chart, ns, f"http://127.0.0.1:{server.server_address[1]}"))
        finally:
            server.shutdown()
        reused = secret["data"] == {k: v for k, v in first["data"].items()}
        if expect_reuse:
            if not reused:
                failures.append(f"{name}: not reused on upgrade (the certificate would rotate)")
            if not bundles or any(b != first["data"]["ca.crt"] for b in bundles):
                failures.append(f"{name}: caBundle differs from the existing ca.crt")
        else:
            if secret["data"].get("tls.crt") == first["data"]["tls.crt"]:
                failures.append(f"{name}: reused, expected a new certificate")
            if not bundles or any(b != secret["data"]["ca.crt"] for b in bundles):
                failures.append(f"{name}: caBundle differs from the new ca.crt")
    for f in failures:
        print(f"    {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
