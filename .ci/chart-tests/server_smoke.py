#!/usr/bin/env python3
"""Runs the real server the way the chart's pod would, with the chart's certificate.

usage: server_smoke.py DEPLOYGUARD_BIN RENDERED.yaml

From a certs.mode=helm render: writes the TLS Secret and the policy ConfigMap where the
Deployment mounts them (under a temporary root), starts `deployguard serve` with the
Deployment's args and env (listen addresses moved to free loopback ports, drain delay 0),
then checks, as the API server and the kubelet would:
  - TLS verifies against the webhooks' caBundle for the service name <svc>.<ns>.svc;
  - GET /healthz and /readyz answer 200, GET /metrics on the metrics port answers 200;
  - POST /validate with an AdmissionReview of the chart's own Deployment is allowed;
  - SIGTERM stops the server within the pod's terminationGracePeriodSeconds.
"""
import base64
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid

import yaml


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    binary, rendered = sys.argv[1], sys.argv[2]
    docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
    kind = lambda k: next(d for d in docs if d["kind"] == k)  # noqa: E731
    dep, cm, secret = kind("Deployment"), kind("ConfigMap"), kind("Secret")
    vwc = kind("ValidatingWebhookConfiguration")
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    svc = vwc["webhooks"][0]["clientConfig"]["service"]
    host = f"{svc['name']}.{svc['namespace']}.svc"

    root = tempfile.mkdtemp(prefix="dg-pod-")
    vols = {v["name"]: v for v in pod["volumes"]}
    for m in c["volumeMounts"]:
        v = vols[m["name"]]
        d = root + m["mountPath"]
        os.makedirs(d, exist_ok=True)
        if "secret" in v:
            for item in v["secret"].get("items") or [{"key": k, "path": k} for k in secret["data"]]:
                open(os.path.join(d, item["path"]), "wb").write(base64.b64decode(secret["data"][item["key"]]))
        elif "configMap" in v:
            for k, val in cm["data"].items():
                open(os.path.join(d, k), "w").write(val)

    port, mport = free_port(), free_port()
    args = []
    for a in c["args"]:
        a = a.replace("=/etc/", f"={root}/etc/")
        if a.startswith("--listen="):
            a = f"--listen=127.0.0.1:{port}"
        elif a.startswith("--metrics-listen="):
            a = f"--metrics-listen=127.0.0.1:{mport}"
        elif a.startswith("--drain-delay="):
            a = "--drain-delay=0"
        args.append(a)
    env = dict(os.environ)
    env.update({e["name"]: e["value"] for e in c.get("env", []) if "value" in e})
    log = open(os.path.join(root, "server.log"), "w+")
    # the image's ENTRYPOINT is ["/deployguard", "serve"]; the chart sets only args
    proc = subprocess.Popen([binary, "serve", *args], env=env, stdout=log, stderr=subprocess.STDOUT)

    ca = base64.b64decode(vwc["webhooks"][0]["clientConfig"]["caBundle"]).decode()
    ctx = ssl.create_default_context(cadata=ca)

    def https(method, path, body=None):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=5)
        conn.sock = ctx.wrap_socket(sock, server_hostname=host)  # verify against the service DNS name
        headers = {"Content-Type": "application/json"} if body else {}
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()

    failures = []
    try:
        deadline = time.time() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            try:
                if https("GET", "/readyz")[0] == 200:
                    break
            except (OSError, ssl.SSLError) as e:
                last = e
            if time.time() > deadline:
                raise RuntimeError(f"/readyz not 200 within 20 s (last error: {last!r})")
            time.sleep(0.2)
        status, _ = https("GET", "/healthz")
        if status != 200:
            failures.append(f"/healthz answered {status}")
        m = http.client.HTTPConnection("127.0.0.1", mport, timeout=5)
        m.request("GET", "/metrics")
        if m.getresponse().status != 200:
            failures.append("/metrics did not answer 200")
        review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": str(uuid.uuid4()), "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "namespace": "default", "name": dep["metadata"]["name"], "operation": "CREATE",
            "userInfo": {"username": "smoke-test"}, "object": dict(dep, metadata=dict(dep["metadata"], namespace="default")),
            "oldObject": None, "dryRun": False}}
        status, body = https("POST", "/validate", json.dumps(review).encode())
        resp = json.loads(body).get("response", {}) if status == 200 else {}
        if status != 200 or resp.get("allowed") is not True or resp.get("uid") != review["request"]["uid"]:
            failures.append(f"/validate of the chart's own Deployment: {status} {body[:300]!r}")
    except Exception as e:  # noqa: BLE001
        failures.append(str(e))
    finally:
        grace = pod.get("terminationGracePeriodSeconds", 30)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                failures.append(f"server did not exit within {grace} s of SIGTERM")
    if failures:
        log.seek(0)
        for f in failures:
            print(f"    {f}")
        print("    server log (tail):")
        for line in log.read().splitlines()[-15:]:
            print(f"      {line}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
