#!/usr/bin/env python3
"""The chart's PrometheusRule and Grafana dashboard against promtool and the real server.

usage: check_monitoring.py RENDERED.yaml DEPLOYGUARD_BIN PROMTOOL CHART_DIR WORK_DIR

RENDERED.yaml is a render with metrics.prometheusRule and metrics.dashboard enabled.
  - the dashboard ConfigMap carries grafana_dashboard: "1" and the chart's dashboard JSON;
  - the rules pass `promtool check rules` and the unit tests in monitoring/rules_test.yaml;
  - every deployguard_ metric named by a rule, a panel or a dashboard variable is exported
    by `deployguard serve` (scraped after it answered an allowed, a denied, a mutated and a
    malformed review);
  - every query parses (promtool check rules on one recording rule per query, with the
    Grafana variables substituted);
  - the dashboard shows reviews, findings, latency, in-flight requests, reloads and
    certificate expiry.
Prints one line per failure; exit 1 if any.
"""
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import uuid

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
METRIC = re.compile(r"\bdeployguard_[a-zA-Z0-9_]+")
# Grafana's variables, as a parser sees them after Grafana expanded them.
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "30s", "$__range": "1h", "$namespace": "deployguard", "$pod": ".*"}
DASHBOARD_MUST_SHOW = ["deployguard_reviews_total", "deployguard_findings_total",
                       "deployguard_request_duration_seconds_bucket", "deployguard_in_flight_requests",
                       "deployguard_config_reloads_total", "deployguard_tls_reloads_total",
                       "deployguard_tls_certificate_not_after_seconds"]
FAILURES = []


def fail(msg):
    FAILURES.append(msg)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pod(name, limits):
    container = {"name": "app", "image": "registry.example/app:1",
                 "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
                 "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 5}}
    if limits:
        container["resources"] = {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "team-a"}, "spec": {"containers": [container]}}


def review(obj):
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": str(uuid.uuid4()), "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "namespace": "team-a",
        "name": obj["metadata"]["name"], "operation": "CREATE", "userInfo": {"username": "check"},
        "object": obj, "oldObject": None, "dryRun": False}}).encode()


def scrape_live(binary, work):
    """Runs the server in dev mode, sends reviews of each outcome, returns the scraped sample names."""
    port, mport = free_port(), free_port()
    dev = os.path.join(work, "dev-certs")
    log = open(os.path.join(work, "serve.log"), "w+")
    proc = subprocess.Popen([binary, "serve", f"--listen=127.0.0.1:{port}", f"--metrics-listen=127.0.0.1:{mport}",
                             f"--dev-cert-dir={dev}", "--drain-delay=0"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 30
        while not os.path.exists(os.path.join(dev, "ca.crt")) or not ready(port, dev):
            if proc.poll() is not None or time.time() > deadline:
                log.seek(0)
                raise RuntimeError(f"server did not become ready: {log.read()[-2000:]}")
            time.sleep(0.1)
        for path, body, want in (("/validate", review(pod("ok", True)), 200),
                                 ("/validate", review(pod("bad", False)), 200),
                                 ("/mutate", review(pod("go", True)), 200),
                                 ("/validate", b"not json", 400)):
            status, text = https(port, dev, "POST", path, body)
            if status != want:
                raise RuntimeError(f"POST {path}: {status} {text[:200]!r}, expected {want}")
        conn = http.client.HTTPConnection("127.0.0.1", mport, timeout=5)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    if 'decision="denied"' not in text:
        raise RuntimeError("the review without probes and limits was not denied: the scrape lacks a denied series")
    return names


def https(port, dev, method, path, body=None):
    ctx = ssl.create_default_context(cafile=os.path.join(dev, "ca.crt"))
    conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=5)
    conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
    r = conn.getresponse()
    return r.status, r.read()


def ready(port, dev):
    try:
        return https(port, dev, "GET", "/readyz")[0] == 200
    except (OSError, ssl.SSLError):
        return False


def promtool(args, work):
    r = subprocess.run(args, cwd=work, capture_output=True, text=True)
    return r.returncode == 0, (r.stdout + r.stderr).strip()


def dashboard_queries(dashboard):
    def panels(items):
        for p in items:
            yield p
            yield from panels(p.get("panels", []))
    for p in panels(dashboard.get("panels", [])):
        for t in p.get("targets", []):
            yield f"panel {p.get('title')!r} {t.get('refId')}", t["expr"]
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"label_values\((.+),\s*[a-zA-Z_]+\)", q)
            if not m:
                fail(f"variable {v['name']}: not label_values(SELECTOR, label): {q}")
                continue
            yield f"variable {v['name']}", m.group(1)


def main():
    rendered, binary, tool, chart, work = sys.argv[1:6]
    docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
    rules = [d for d in docs if d["kind"] == "PrometheusRule"]
    boards = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    if len(rules) != 1 or len(boards) != 1:
        print(f"    expected one PrometheusRule and one grafana_dashboard ConfigMap, found {len(rules)} and {len(boards)}")
        return 1
    data = boards[0]["data"]
    if list(data) != ["deployguard.json"]:
        fail(f"dashboard ConfigMap keys: {list(data)}")
    dashboard = json.loads(data[next(iter(data))])
    if dashboard != json.load(open(os.path.join(chart, "dashboards", "deployguard.json"))):
        fail("the ConfigMap's dashboard differs from dashboards/deployguard.json")

    with open(os.path.join(work, "rules.yaml"), "w") as fh:
        yaml.safe_dump({"groups": rules[0]["spec"]["groups"]}, fh, sort_keys=False)
    ok, out = promtool([tool, "check", "rules", "rules.yaml"], work)
    ok or fail(f"promtool check rules on the PrometheusRule:\n{out}")
    shutil.copy(os.path.join(HERE, "monitoring", "rules_test.yaml"), work)
    ok, out = promtool([tool, "test", "rules", "rules_test.yaml"], work)
    ok or fail(f"promtool test rules:\n{out}")

    queries = [(f"alert {r['alert']}", r["expr"]) for g in rules[0]["spec"]["groups"] for r in g["rules"]]
    queries += list(dashboard_queries(dashboard))
    exported = scrape_live(binary, work)
    for where, q in queries:
        for name in sorted(set(METRIC.findall(q)) - exported):
            fail(f"{where}: {name} is not exported by deployguard serve")
    named = {n for _, q in dashboard_queries(dashboard) for n in METRIC.findall(q)}
    for name in DASHBOARD_MUST_SHOW:
        name in named or fail(f"no dashboard panel shows {name}")

    parse_rules = []
    for i, (where, q) in enumerate(queries):
        for var, value in GRAFANA_VARS.items():
            q = q.replace(var, value)
        if "$" in q:
            fail(f"{where}: a Grafana variable is left after substitution: {q}")
        parse_rules.append({"record": f"query:{i}", "expr": q})
    with open(os.path.join(work, "queries.yaml"), "w") as fh:
        yaml.safe_dump({"groups": [{"name": "queries", "rules": parse_rules}]}, fh)
    ok, out = promtool([tool, "check", "rules", "queries.yaml"], work)
    ok or fail(f"promtool check rules on every query (query:N is the Nth of {[w for w, _ in queries]}):\n{out}")

    for f in FAILURES:
        print(f"    {f}")
    print(f"{len(queries)} queries checked")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
