#!/usr/bin/env python3
"""Evaluates the rendered validating webhook's matchConditions with a CEL implementation.

usage: check_routing.py [--requesters TABLE.yaml] RENDERED.yaml CASES.yaml [DEPLOYGUARD_BIN]

RENDERED.yaml is a `helm template` of the chart; CASES.yaml is routing_cases.yaml (see its
header). For every case, the matchConditions of the fail-closed entry
(validate.deployguard.io) and of the fail-open entry (audit.validate.deployguard.io) are
evaluated as the API server does (variables object, oldObject, request; all conditions
true: the webhook is called; any false: skipped; otherwise an error applies the entry's
failurePolicy), with the CEL implementation of the PyPI package
common-expression-language. Checked:
  - the chart's own routing condition of each entry evaluates to a bool, never an error;
  - exactly one of the two routing conditions is true;
  - the fail-closed entry's is true exactly for the cases deployguard may deny: route
    `judged`, and `controller-owned` while the rendered policy's
    controllerOwnedPods.maxMode is enforce;
  - with the user's conditions in front (identical in both entries), no request is sent
    to both entries;
  - every kind the rules match has a judged and an unchanged case.
With DEPLOYGUARD_BIN, each case also goes through `deployguard review` with the rendered
policy: a request routed to the fail-open entry must be allowed, and (when the policy's
defaultMode is enforce) one routed to the fail-closed entry must be denied: the routing
and the engine agree on which requests deployguard can deny.
With --requesters (tests/fixtures/trusted_requesters.yaml, the table the Rust tests read
too), each of its userInfo entries is added as three cases (a Pod owned by a ReplicaSet, a
ReplicaSet owned by a Deployment, a Job owned by a CronJob): route controller-owned when
the table says trusted, judged otherwise, so a forged owner from a user must reach the
fail-closed entry.
What this does not check: the API server's type checker and its CEL cost limits.
Prints one line per failed assertion and a summary; exit 1 if any assertion failed.
"""
import copy
import json
import subprocess
import sys
import tempfile
import uuid
from importlib import metadata

import cel
import yaml

FAIL_CLOSED = "validate.deployguard.io"
FAIL_OPEN = "audit.validate.deployguard.io"
ROUTING = {FAIL_CLOSED: "deployguard-may-deny", FAIL_OPEN: "deployguard-never-denies"}
KINDS = {  # kind -> (group, version, resource)
    "Pod": ("", "v1", "pods"),
    "ReplicationController": ("", "v1", "replicationcontrollers"),
    "Deployment": ("apps", "v1", "deployments"),
    "StatefulSet": ("apps", "v1", "statefulsets"),
    "DaemonSet": ("apps", "v1", "daemonsets"),
    "ReplicaSet": ("apps", "v1", "replicasets"),
    "Job": ("batch", "v1", "jobs"),
    "CronJob": ("batch", "v1", "cronjobs"),
}
ROUTES = {"judged", "controller-owned", "unchanged", "not-judged"}
FAILURES = []


def check(cond, msg):
    if not cond:
        FAILURES.append(msg)
    return cond


def full_request(case):
    """The AdmissionRequest of a case, with what routing_cases.yaml leaves to the reader."""
    req = copy.deepcopy(case["request"])
    kind = req["kind"]["kind"]
    group, version, resource = KINDS[kind]
    req["kind"] = {"group": group, "version": version, "kind": kind, **req["kind"]}
    gvr = {"group": group, "version": version, "resource": resource}
    req.setdefault("resource", gvr)
    req.setdefault("requestKind", req["kind"])
    req.setdefault("requestResource", req["resource"])
    req.setdefault("uid", str(uuid.uuid4()))
    req.setdefault("namespace", "default")
    names = [(o or {}).get("metadata", {}).get("name") for o in (req.get("object"), req.get("oldObject"))]
    req.setdefault("name", next((n for n in names if n), "case"))
    req.setdefault("userInfo", {"username": "routing-test"})
    req.setdefault("dryRun", False)
    req.setdefault("object", None)
    req.setdefault("oldObject", None)
    return req


def activation(req):
    """The CEL variables of a webhook matchCondition for this request."""
    request = {k: v for k, v in req.items() if k not in ("object", "oldObject")}
    return {"object": req["object"], "oldObject": req["oldObject"], "request": request}


def evaluate(program, variables):
    """('value', v) or ('error', message)."""
    try:
        return "value", program.execute(variables)
    except Exception as e:  # noqa: BLE001 - the binding raises KeyError, TypeError, ValueError, ...
        return "error", f"{type(e).__name__}: {e}"


def outcome(results):
    """The API server's decision for one entry: call, skip or error (failurePolicy applies)."""
    if any(kind == "value" and value is False for kind, value in results):
        return "skip"
    if all(kind == "value" and value is True for kind, value in results):
        return "call"
    return "error"


OWNED = [("Pod", "ReplicaSet"), ("ReplicaSet", "Deployment"), ("Job", "CronJob")]


def requester_cases(table_file):
    """Cases from the trusted-requester table: every owned kind, from every userInfo."""
    spec = {"containers": [{"name": "app", "image": "registry.example/app:1"}]}
    cases = []
    for i, entry in enumerate(yaml.safe_load(open(table_file))["cases"]):
        for kind, owner in OWNED:
            body = spec if kind == "Pod" else {
                "selector": {"matchLabels": {"app": "x"}},
                "template": {"metadata": {"labels": {"app": "x"}}, "spec": spec}}
            obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": f"requester-{i}", "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": owner, "name": "o", "uid": "6f1c2f4e-0d7e-4c55-9a43-3d5e1c8b2a10",
                 "controller": True}]}, "spec": body}
            cases.append({"name": f"requester-{i}-{kind}-{entry['userInfo'].get('username', '(none)')}",
                          "route": "controller-owned" if entry["trusted"] else "judged",
                          "request": {"operation": "CREATE", "kind": {"kind": kind},
                                      "userInfo": entry["userInfo"], "object": obj}})
    return cases


def main():
    argv = sys.argv[1:]
    requesters = None
    if argv[:1] == ["--requesters"]:
        requesters, argv = argv[1], argv[2:]
    rendered, cases_file = argv[0], argv[1]
    binary = argv[2] if len(argv) > 2 else None
    docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
    vwcs = [d for d in docs if d["kind"] == "ValidatingWebhookConfiguration"]
    if not vwcs:
        print("no ValidatingWebhookConfiguration rendered: nothing to route")
        return 0
    entries = {w["name"]: w for w in vwcs[0]["webhooks"]}
    if not (check(FAIL_CLOSED in entries, f"no entry {FAIL_CLOSED}") & check(FAIL_OPEN in entries, f"no entry {FAIL_OPEN}")):
        return report()
    closed, open_ = entries[FAIL_CLOSED], entries[FAIL_OPEN]
    check(open_.get("failurePolicy") == "Ignore", f"{FAIL_OPEN}: failurePolicy is {open_.get('failurePolicy')}, not Ignore")
    for field in ("rules", "clientConfig", "namespaceSelector", "objectSelector", "sideEffects",
                  "admissionReviewVersions", "timeoutSeconds", "matchPolicy"):
        check(closed.get(field) == open_.get(field), f"{FAIL_OPEN}: {field} differs from {FAIL_CLOSED}")

    conditions = {}
    for name, w in ((FAIL_CLOSED, closed), (FAIL_OPEN, open_)):
        mcs = w.get("matchConditions") or []
        if not check(mcs and mcs[-1].get("name") == ROUTING[name],
                     f"{name}: the last matchCondition is not {ROUTING[name]}: {[m.get('name') for m in mcs]}"):
            return report()
        conditions[name] = mcs
    user = conditions[FAIL_CLOSED][:-1]
    check(user == conditions[FAIL_OPEN][:-1], "the user's matchConditions differ between the two entries")
    programs = {}
    for name, mcs in conditions.items():
        programs[name] = []
        for mc in mcs:
            try:
                programs[name].append(cel.compile(mc["expression"]))
            except Exception as e:  # noqa: BLE001
                check(False, f"{name}: matchCondition {mc['name']} does not compile: {e}")
                return report()

    cm = next((d for d in docs if d["kind"] == "ConfigMap" and "policy.yaml" in d.get("data", {})), None)
    policy_text = cm["data"]["policy.yaml"] if cm else ""
    policy = yaml.safe_load(policy_text) or {}
    max_mode = (policy.get("controllerOwnedPods") or {}).get("maxMode", "audit")
    enforcing = policy.get("defaultMode", "enforce") == "enforce"

    table = yaml.safe_load(open(cases_file))
    cases = table["cases"] + (requester_cases(requesters) if requesters else [])
    names = [c["name"] for c in cases]
    check(len(set(names)) == len(names), "duplicate case names")
    rule_kinds = {k for k, (g, _, r) in KINDS.items()
                  for rule in closed.get("rules", []) if g in rule["apiGroups"] and r in rule["resources"]}
    check(rule_kinds == set(KINDS), f"the rules match {sorted(rule_kinds)}, expected {sorted(KINDS)}")
    for kind in KINDS:
        routes = {c["route"] for c in cases if c["request"]["kind"]["kind"] == kind}
        check({"judged", "unchanged"} <= routes, f"kind {kind} lacks a judged or an unchanged case: {sorted(routes)}")

    policy_file = None
    if binary:
        policy_file = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        policy_file.write(policy_text)
        policy_file.close()

    counts = {FAIL_CLOSED: 0, FAIL_OPEN: 0}
    engine_checked = 0
    user_errors = []
    for case in cases:
        name, route = case["name"], case["route"]
        if not check(route in ROUTES, f"{name}: unknown route {route}"):
            continue
        req = full_request(case)
        variables = activation(req)
        routed = {}
        for entry in (FAIL_CLOSED, FAIL_OPEN):
            kind, value = evaluate(programs[entry][-1], variables)
            ok = check(kind == "value", f"{name}: {ROUTING[entry]} fails: {value}")
            ok = ok and check(isinstance(value, bool), f"{name}: {ROUTING[entry]} gives {value!r}, not a bool")
            routed[entry] = value if ok else None
        if None in routed.values():
            continue
        check(routed[FAIL_CLOSED] != routed[FAIL_OPEN],
              f"{name}: routed to {'both entries' if routed[FAIL_CLOSED] else 'neither entry'}")
        may_deny = route == "judged" or (route == "controller-owned" and max_mode == "enforce")
        got = FAIL_CLOSED if routed[FAIL_CLOSED] else FAIL_OPEN
        want = FAIL_CLOSED if may_deny else FAIL_OPEN
        if check(got == want, f"{name} ({route}, controllerOwnedPods.maxMode={max_mode}): routed to {got}, expected {want}"):
            counts[got] += 1

        # With the user's conditions in front: never both entries.
        results = {}
        for entry in (FAIL_CLOSED, FAIL_OPEN):
            results[entry] = [evaluate(p, variables) for p in programs[entry]]
        decided = {entry: outcome(r) for entry, r in results.items()}
        check(not (decided[FAIL_CLOSED] == "call" and decided[FAIL_OPEN] == "call"),
              f"{name}: with the user's matchConditions, sent to both entries")
        if user and any(kind == "error" for kind, _ in results[FAIL_CLOSED][:-1]):
            user_errors.append(name)

        if binary:
            review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}
            proc = subprocess.run([binary, "review", "--config", policy_file.name, "-"], input=json.dumps(review),
                                  capture_output=True, text=True, timeout=60)
            if not check(proc.returncode == 0, f"{name}: deployguard review exited {proc.returncode}: {proc.stderr.strip()[:300]}"):
                continue
            allowed = json.loads(proc.stdout)["response"]["allowed"]
            if got == FAIL_OPEN:
                check(allowed is True, f"{name}: routed to {FAIL_OPEN} (fails open) but deployguard denies it")
            elif enforcing:
                check(allowed is False, f"{name}: routed to {FAIL_CLOSED} but deployguard allows it "
                                        "(its pod spec breaks the enforced default rules)")
            engine_checked += 1

    version = metadata.version("common-expression-language")
    print(f"{len(cases)} cases, CEL: common-expression-language {version}; "
          f"{counts[FAIL_CLOSED]} to {FAIL_CLOSED} (failurePolicy {closed.get('failurePolicy')}), "
          f"{counts[FAIL_OPEN]} to {FAIL_OPEN} (Ignore); controllerOwnedPods.maxMode={max_mode}; "
          f"{len(user)} user matchCondition(s)"
          + (f", which fail on {len(user_errors)} case(s) (the entry's failurePolicy applies)" if user_errors else "")
          + (f"; deployguard review agrees on {engine_checked}" if binary else "")
          + ("" if enforcing or not binary else " (defaultMode is not enforce: denials not expected)"))
    return report()


def report():
    for f in FAILURES:
        print(f"    assertion failed: {f}")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
