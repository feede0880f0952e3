#!/usr/bin/env python3
"""A minimal read-only Kubernetes API stand-in, so Helm's `lookup` and the server's
LimitRange watch can be tested offline.

usage: fake_apiserver.py PORTFILE [OBJECT.yaml ...]

Serves discovery for the groups the chart renders and GET of the given objects (by
namespace, kind, name); every other GET gets an empty list or a 404 Status. LimitRanges are
also listed cluster-wide (GET /api/v1/limitranges), and watched there (?watch=true): the
watch sends no event and ends after WATCH_HOLD_SECONDS, as a server-side timeout would.
Writes get 405. Every request is recorded in REQUESTS as (method, path, query). Writes the
chosen port to PORTFILE and logs each request path to stderr. Helm runs `helm template
--dry-run=server --kube-apiserver http://127.0.0.1:PORT` against it.
"""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import yaml

OBJECTS = {}
REQUESTS = []  # (method, path, {query key: [values]}), in arrival order
WATCH_HOLD_SECONDS = 5
# group/version -> {kind: (resource, namespaced)}: what the chart renders in certs.mode=helm.
DISCOVERY = {
    "v1": {"Secret": ("secrets", True), "ConfigMap": ("configmaps", True), "Service": ("services", True),
           "ServiceAccount": ("serviceaccounts", True), "Namespace": ("namespaces", False),
           "LimitRange": ("limitranges", True)},
    "apps/v1": {"Deployment": ("deployments", True)},
    "policy/v1": {"PodDisruptionBudget": ("poddisruptionbudgets", True)},
    "networking.k8s.io/v1": {"NetworkPolicy": ("networkpolicies", True)},
    "rbac.authorization.k8s.io/v1": {"ClusterRole": ("clusterroles", False),
                                     "ClusterRoleBinding": ("clusterrolebindings", False)},
    "admissionregistration.k8s.io/v1": {
        "MutatingWebhookConfiguration": ("mutatingwebhookconfigurations", False),
        "ValidatingWebhookConfiguration": ("validatingwebhookconfigurations", False)},
}
RESOURCES = {k: r for k, (r, _) in DISCOVERY["v1"].items()}


def resource_list(gv):
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": [
        {"name": r, "singularName": k.lower(), "namespaced": n, "kind": k, "verbs": ["get", "list", "create", "update"]}
        for k, (r, n) in DISCOVERY[gv].items()]}


def status(code, reason, msg):
    return code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": msg, "reason": reason, "code": code}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write("fake-apiserver: " + (fmt % args) + "\n")

    def route(self):
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/version":
            return 200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0", "platform": "linux/amd64"}
        if path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"],
                         "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}
        if path == "/apis":
            groups = []
            for gv in DISCOVERY:
                if "/" in gv:
                    g, v = gv.split("/")
                    ver = {"groupVersion": gv, "version": v}
                    groups.append({"name": g, "versions": [ver], "preferredVersion": ver})
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
        if path == "/api/v1":
            return 200, resource_list("v1")
        if path.startswith("/apis/") and path[len("/apis/"):] in DISCOVERY:
            return 200, resource_list(path[len("/apis/"):])
        parts = path.strip("/").split("/")
        # /api/v1/limitranges: every namespace's (the watch's list)
        if parts == ["api", "v1", "limitranges"]:
            items = [o for (_, k, _), o in OBJECTS.items() if k == "LimitRange"]
            return 200, {"kind": "LimitRangeList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}
        # /api/v1/namespaces/NS/RESOURCE[/NAME]
        if len(parts) in (5, 6) and parts[:3] == ["api", "v1", "namespaces"]:
            ns, res = parts[3], parts[4]
            kind = next((k for k, r in RESOURCES.items() if r == res), None)
            if kind is None:
                return status(404, "NotFound", f"the server could not find the requested resource ({res})")
            if len(parts) == 6:
                obj = OBJECTS.get((ns, kind, parts[5]))
                if obj is None:
                    return status(404, "NotFound", f'{res} "{parts[5]}" not found')
                return 200, obj
            items = [o for (n, k, _), o in OBJECTS.items() if n == ns and k == kind]
            return 200, {"kind": f"{kind}List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}
        return status(404, "NotFound", "the server could not find the requested resource")

    def do_GET(self):  # noqa: N802
        path, _, query = self.path.partition("?")
        params = parse_qs(query)
        REQUESTS.append(("GET", path, params))
        if params.get("watch", [""])[0] in ("true", "1"):
            return self.hold_watch()
        code, body = self.route()
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


    def hold_watch(self):
        """A watch that sends no event and ends after WATCH_HOLD_SECONDS (the client then
        watches again from the same resourceVersion)."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.flush()
        time.sleep(WATCH_HOLD_SECONDS)

    def refuse_write(self):
        path, _, query = self.path.partition("?")
        REQUESTS.append((self.command, path, parse_qs(query)))
        data = json.dumps(status(405, "MethodNotAllowed", "the fake API server is read-only")[1]).encode()
        self.send_response(405)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_PUT = do_PATCH = do_DELETE = refuse_write  # noqa: N815


def main():
    for path in sys.argv[2:]:
        with open(path) as fh:
            for doc in yaml.safe_load_all(fh):
                if doc:
                    doc.setdefault("metadata", {}).setdefault("resourceVersion", "1")
                    OBJECTS[(doc["metadata"].get("namespace", "default"), doc["kind"], doc["metadata"]["name"])] = doc
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(sys.argv[1], "w") as fh:
        fh.write(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
