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
With --limit-ranges=watch among the args, the in-cluster API is replaced by
fake_apiserver.py (--kube-api-url; no real API server is involved) holding one LimitRange
that defaults limits in namespace team-a, and also:
  - /readyz is 200 only after the watch listed the LimitRanges (deployguard_limit_ranges_synced 1);
  - the chart's Deployment without limits is allowed in team-a and denied in default, after a
    live read of default's LimitRanges;
  - every API request the server made is allowed by the rendered ClusterRole (verb and
    resource), and it made no other;
  - with the API unreachable, /healthz answers at once (liveness never waits), /readyz is 503
    until --limit-ranges-sync-timeout and 200 (without LimitRange data) soon after.
"""
import base64
import copy
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import ThreadingHTTPServer

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_apiserver  # noqa: E402

LIMIT_RANGE = {
    "apiVersion": "v1", "kind": "LimitRange",
    "metadata": {"name": "container-defaults", "namespace": "team-a", "uid": "0b5b6c1e-6f4e-4c59-9d3b-2d1c7f0c9a11",
                 "resourceVersion": "1"},
    "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m", "memory": "256Mi"},
                         "defaultRequest": {"cpu": "100m", "memory": "64Mi"}}]},
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rbac_verb(method, path, query):
    """(verb, resource) of a request as the API server's authorizer sees it, or None for
    non-resource URLs everyone may read (discovery)."""
    parts = path.strip("/").split("/")
    if method == "GET" and path.rstrip("/") in ("/api", "/api/v1", "/apis", "/version") or parts[0] == "openapi":
        return None
    verbs = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
    if parts[:2] == ["api", "v1"]:
        rest = parts[2:]
        if rest[:1] == ["namespaces"] and len(rest) >= 3:
            rest = rest[2:]
        if method == "GET" and query.get("watch", [""])[0] in ("true", "1"):
            return "watch", rest[0]
        if method == "GET" and len(rest) == 1:
            return "list", rest[0]
        return verbs.get(method, method.lower()), rest[0] if rest else ""
    return verbs.get(method, method.lower()), path


def allowed_by(rules, verb, resource):
    return any(("" in r.get("apiGroups", []) or "*" in r.get("apiGroups", []))
               and (resource in r.get("resources", []) or "*" in r.get("resources", []))
               and (verb in r.get("verbs", []) or "*" in r.get("verbs", []))
               and not r.get("resourceNames")
               for r in rules)


class Server:
    """`deployguard serve` with the pod's args (plus extra), on free loopback ports."""

    def __init__(self, binary, root, pod, c, extra, ctx, host):
        self.port, self.mport = free_port(), free_port()
        self.ctx, self.host, self.pod = ctx, host, pod
        args = []
        for a in c["args"]:
            a = a.replace("=/etc/", f"={root}/etc/")
            if a.startswith("--listen="):
                a = f"--listen=127.0.0.1:{self.port}"
            elif a.startswith("--metrics-listen="):
                a = f"--metrics-listen=127.0.0.1:{self.mport}"
            elif a.startswith("--drain-delay="):
                a = "--drain-delay=0"
            args.append(a)
        env = dict(os.environ)
        env.update({e["name"]: e["value"] for e in c.get("env", []) if "value" in e})
        self.log = tempfile.TemporaryFile("w+", dir=root)
        # the image's ENTRYPOINT is ["/deployguard", "serve"]; the chart sets only args
        self.proc = subprocess.Popen([binary, "serve", *args, *extra], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.started = time.time()

    def https(self, method, path, body=None):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=5)
        conn.sock = self.ctx.wrap_socket(sock, server_hostname=self.host)  # verify against the service DNS name
        headers = {"Content-Type": "application/json"} if body else {}
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()

    def metrics(self):
        m = http.client.HTTPConnection("127.0.0.1", self.mport, timeout=5)
        m.request("GET", "/metrics")
        r = m.getresponse()
        return r.status, r.read().decode()

    def wait_listening(self, deadline):
        last = None
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                return self.https("GET", "/healthz")
            except (OSError, ssl.SSLError) as e:
                last = e
            if time.time() > deadline:
                raise RuntimeError(f"no TLS answer on /healthz within the deadline (last error: {last!r})")
            time.sleep(0.1)

    def wait_ready(self, seconds):
        deadline, last = time.time() + seconds, None
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                status, body = self.https("GET", "/readyz")
                if status == 200:
                    return body
                last = (status, body)
            except (OSError, ssl.SSLError) as e:
                last = e
            if time.time() > deadline:
                raise RuntimeError(f"/readyz not 200 within {seconds} s (last answer: {last!r})")
            time.sleep(0.2)

    def review(self, obj, namespace):
        review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": str(uuid.uuid4()), "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "namespace": namespace, "name": obj["metadata"]["name"], "operation": "CREATE",
            "userInfo": {"username": "smoke-test"}, "object": dict(obj, metadata=dict(obj["metadata"], namespace=namespace)),
            "oldObject": None, "dryRun": False}}
        status, body = self.https("POST", "/validate", json.dumps(review).encode())
        resp = json.loads(body).get("response", {}) if status == 200 else {}
        if status != 200 or resp.get("uid") != review["request"]["uid"]:
            raise RuntimeError(f"/validate: {status} {body[:300]!r}")
        return resp

    def stop(self, failures):
        grace = self.pod.get("terminationGracePeriodSeconds", 30)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                failures.append(f"server did not exit within {grace} s of SIGTERM")

    def tail(self):
        self.log.seek(0)
        return self.log.read().splitlines()[-15:]


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
    watch = "--limit-ranges=watch" in c["args"]
    sync_timeout = next((int(a.split("=", 1)[1]) for a in c["args"] if a.startswith("--limit-ranges-sync-timeout=")), 10)

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

    ca = base64.b64decode(vwc["webhooks"][0]["clientConfig"]["caBundle"]).decode()
    ctx = ssl.create_default_context(cadata=ca)

    api = None
    extra = []
    if watch:
        fake_apiserver.OBJECTS.clear()
        fake_apiserver.REQUESTS.clear()
        fake_apiserver.OBJECTS[("team-a", "LimitRange", LIMIT_RANGE["metadata"]["name"])] = LIMIT_RANGE
        fake_apiserver.Handler.log_message = lambda *a: None
        api = ThreadingHTTPServer(("127.0.0.1", 0), fake_apiserver.Handler)
        threading.Thread(target=api.serve_forever, daemon=True).start()
        extra = [f"--kube-api-url=http://127.0.0.1:{api.server_address[1]}"]

    failures, logs = [], []
    server = Server(binary, root, pod, c, extra, ctx, host)
    try:
        server.wait_ready(20)
        status, _ = server.https("GET", "/healthz")
        if status != 200:
            failures.append(f"/healthz answered {status}")
        status, metrics = server.metrics()
        if status != 200:
            failures.append("/metrics did not answer 200")
        resp = server.review(dep, "default")
        if resp.get("allowed") is not True:
            failures.append(f"/validate of the chart's own Deployment: not allowed: {resp}")
        if watch:
            if "deployguard_limit_ranges_synced 1" not in metrics:
                failures.append("ready, but deployguard_limit_ranges_synced is not 1: the watch did not list the LimitRanges")
            limitless = copy.deepcopy(dep)
            for ctr in limitless["spec"]["template"]["spec"]["containers"]:
                ctr["resources"].pop("limits", None)
            resp = server.review(limitless, "team-a")
            if resp.get("allowed") is not True:
                failures.append(f"Deployment without limits in team-a (LimitRange defaults them) not allowed: {resp.get('status')}")
            resp = server.review(limitless, "default")
            if resp.get("allowed") is not False:
                failures.append("Deployment without limits in default (no LimitRange) allowed")
            requests = list(fake_apiserver.REQUESTS)
            if not any(m == "GET" and p == "/api/v1/namespaces/default/limitranges" for m, p, _ in requests):
                failures.append("no live read of default's LimitRanges before the denial")
            rules = kind("ClusterRole")["rules"]
            used = set()
            for m, p, q in requests:
                vr = rbac_verb(m, p, q)
                if vr is None:
                    continue
                used.add(vr)
                if not allowed_by(rules, *vr):
                    failures.append(f"{m} {p} ({vr[0]} {vr[1]}) is not allowed by the ClusterRole {rules}")
            logs.append(f"API requests of the server, as RBAC sees them: {sorted(used)}")
            for need in (("list", "limitranges"), ("watch", "limitranges")):
                if need not in used:
                    failures.append(f"the server never made a {need[0]} of {need[1]}: the watch did not run against the API")
    except Exception as e:  # noqa: BLE001
        failures.append(str(e))
    finally:
        server.stop(failures)
        if api:
            api.shutdown()
    if failures:
        logs += ["server log (tail):", *("  " + line for line in server.tail())]

    if watch and not failures:
        # The API unreachable (nothing listens on the port): ready only after the sync timeout.
        server = Server(binary, root, pod, c, [f"--kube-api-url=http://127.0.0.1:{free_port()}"], ctx, host)
        try:
            status, _ = server.wait_listening(time.time() + 10)
            if status != 200:
                failures.append(f"unreachable API: /healthz answered {status} (liveness must not wait for the watch)")
            status, body = server.https("GET", "/readyz")
            waited = time.time() - server.started
            if status != 503 and waited < sync_timeout:
                failures.append(f"unreachable API: /readyz answered {status} {body!r} after {waited:.1f} s, before the sync timeout")
            body = server.wait_ready(sync_timeout + 5)
            ready_after = time.time() - server.started
            if ready_after < sync_timeout - 0.5:
                failures.append(f"unreachable API: ready after {ready_after:.1f} s, before the {sync_timeout} s sync timeout")
            status, metrics = server.metrics()
            if "deployguard_limit_ranges_synced 0" not in metrics:
                failures.append("unreachable API: deployguard_limit_ranges_synced is not 0 once ready")
            resp = server.review(dep, "default")
            if resp.get("allowed") is not True:
                failures.append(f"unreachable API: /validate of the chart's own Deployment not allowed: {resp}")
            logs.append(f"unreachable API: ready after {ready_after:.1f} s (sync timeout {sync_timeout} s): {body.decode().strip()[:120]}")
        except Exception as e:  # noqa: BLE001
            failures.append(f"unreachable API: {e}")
        finally:
            server.stop(failures)
        if failures:
            logs += ["server log (tail, unreachable API):", *("  " + line for line in server.tail())]

    for line in logs:
        print(f"    {line}")
    for f in failures:
        print(f"    {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
