#!/usr/bin/env python3
"""A stand-in for the Kubernetes API's LimitRange endpoints, for bench/load.sh's watch phase.

Serves N LimitRanges (one per namespace, ns-0 … ns-N-1) as the API documents them:
GET /api/v1/limitranges (a LimitRangeList), the same with ?watch=true (a watch stream that
sends a BOOKMARK every few seconds and closes at timeoutSeconds), and
GET /api/v1/namespaces/NS/limitranges. Plain HTTP on 127.0.0.1.

usage: fake_kube_api.py PORT [COUNT]
"""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

RESOURCE_VERSION = "100"


def limit_range(index):
    namespace = f"ns-{index}"
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "defaults", "namespace": namespace, "uid": f"uid-{index}",
                     "resourceVersion": RESOURCE_VERSION},
        "spec": {"limits": [{"type": "Container",
                             "default": {"cpu": "500m", "memory": "256Mi"},
                             "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                             "max": {"cpu": "2", "memory": "1Gi"}}]},
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    items = []

    def log_message(self, *args):
        pass

    def send_json(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def chunk(self, data):
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def do_GET(self):
        url = urlparse(self.path)
        query = parse_qs(url.query)
        parts = url.path.strip("/").split("/")
        if url.path == "/api/v1/limitranges":
            items = self.items
        elif len(parts) == 5 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "limitranges":
            items = [item for item in self.items if item["metadata"]["namespace"] == parts[3]]
        else:
            self.send_error(404)
            return
        if query.get("watch") != ["true"]:
            self.send_json({"apiVersion": "v1", "kind": "LimitRangeList",
                            "metadata": {"resourceVersion": RESOURCE_VERSION}, "items": items})
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        deadline = time.monotonic() + int(query.get("timeoutSeconds", ["300"])[0])
        bookmark = {"type": "BOOKMARK", "object": {"apiVersion": "v1", "kind": "LimitRange",
                                                   "metadata": {"resourceVersion": RESOURCE_VERSION}}}
        try:
            while time.monotonic() < deadline:
                self.chunk(json.dumps(bookmark).encode() + b"\n")
                time.sleep(5)
            self.chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            pass


def main():
    port = int(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    Handler.items = [limit_range(i) for i in range(count)]
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
