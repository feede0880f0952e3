#!/usr/bin/env python3
"""Reinvocation and resize of the Go runtime injection over real Pods (issue 11 semantics).

Pods come from the corpus (AdmissionReview requests, bare AdmissionRequest bodies and
manifests whose kind is Pod, plus Pods built from the pod templates of the workloads there)
and from a few hand-written Pods. For each one:

 1. every container (and init container) gets limits cpu 4 / memory 4Gi; a CREATE review on
    /mutate; its patch is applied with the API server's JSON-patch applier;
 2. the limits are changed as a VPA would (lowered, raised, the CPU limit removed, every
    limit removed, one container only), step after step; after each step the same CREATE
    request with the patched object is reviewed again (a reinvocation) and its patch applied
    with the API server's applier: every intermediate patch must apply;
 3. after each step: each container's env, variable by variable, equals that of a fresh
    mutation of the object with deployguard's owned entries and its annotation stripped;
    the user's own variables are untouched (values and relative order); nothing but env and
    the annotation changed; the annotation lists exactly the owned variables (spec order,
    GOMAXPROCS then GOMEMLIMIT, absent when nothing is owned); owned values are those the
    limits give (GOMAXPROCS = max(2, ceil(cpu)), GOMEMLIMIT = floor(0.9 x memory) in Go
    syntax); a further review patches nothing; a validate review is allowed (hand-written
    Pods, which carry probes; the limit-presence rules are warn there because steps remove
    limits) or adds no go-env finding the user's own variables do not already cause (corpus);
 4. an opt-out added later (deployguard.io/go-runtime: "off") removes exactly the owned
    variables and the annotation; go-runtime-skip added later for one container removes only
    that container's; a variable the user edits, or every variable when the annotation no
    longer parses, becomes the user's and is left alone (hand-written pods for the latter);
 5. a resize (UPDATE, subResource resize, oldObject = the mutated Pod) lowering a memory limit
    (own, or pod-level for containers without one) to or below the GOMEMLIMIT the process sees
    (literal, or resourceFieldRef computed from the old pod) is denied with a message naming
    GOMEMLIMIT, one still above it is allowed, a derived value is not judged under
    resizePolicy RestartContainer; a CPU resize under GOMAXPROCS is allowed with a warning.
Besides the VPA-like steps, a sequence sets zero limits (no limit) and a 1Mi memory limit
(no GOMEMLIMIT under 1 MiB).

Prints one line per failed case, then `N passed, M failed`; exit 1 on any failure.
With --dump DIR, every failed case's reviews (request, response, decoded patch, patched
object) are written to DIR/<case>.json.

usage: reinvocation.py --bin DEPLOYGUARD --apiserver-patch JP [--dump DIR] CORPUS_DIR [MORE_DIRS...]
"""
import argparse
import base64
import copy
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import yaml

try:  # a cross-check only; the API server's applier is the one that counts
    import jsonpatch
except ImportError:  # pragma: no cover
    jsonpatch = None

INJECTED = "deployguard.io/injected"
GO_RUNTIME = "deployguard.io/go-runtime"
VARS = ("GOMAXPROCS", "GOMEMLIMIT")
MIB = 1048576
MAX_CORPUS_PODS = 40
TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"}
EXCLUDED_NAMESPACES = {"kube-system", "kube-public", "kube-node-lease"}
# Validation of the hand-written pods: the steps remove limits and set a 1Mi one on purpose.
VALIDATE_POLICY = "rules:\n  cpu-limit: warn\n  memory-limit: warn\n  resource-units: warn\n"


# ---------------------------------------------------------------- quantities and Go values

QUANTITY = re.compile(r"^([+-]?)(\d+\.?\d*|\.\d+)(?:(Ki|Mi|Gi|Ti|Pi|Ei)|(n|u|m|k|M|G|T|P|E)|[eE]([+-]?\d+))?$")
BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def quantity(value):
    """A Kubernetes quantity (string or YAML number) as an exact Fraction; None if unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        value = repr(value) if isinstance(value, float) else str(value)
    if not isinstance(value, str):
        return None
    match = QUANTITY.match(value)
    if not match:
        return None
    sign, number, binary, decimal, exponent = match.groups()
    result = Fraction(number)
    if binary:
        result *= 1024 ** BINARY[binary]
    elif decimal:
        result *= Fraction(10) ** DECIMAL[decimal]
    elif exponent:
        result *= Fraction(10) ** int(exponent)
    return -result if sign == "-" else result


GO_BYTES = re.compile(r"^(\d+)(B|KiB|MiB|GiB|TiB)?$")
GO_UNITS = {None: 1, "B": 1, "KiB": 1024, "MiB": MIB, "GiB": 1024 * MIB, "TiB": 1024 * 1024 * MIB}


def go_bytes(text):
    """GOMEMLIMIT in Go's syntax as bytes; None for "off", "" or anything Go rejects."""
    match = GO_BYTES.match(text) if isinstance(text, str) else None
    return int(match.group(1)) * GO_UNITS[match.group(2)] if match else None


# ---------------------------------------------------------------- pod structure helpers

def judged(pod):
    """(list key, container) of every judged container: containers, then initContainers."""
    spec = pod.get("spec") or {}
    out = []
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            out.append((key, container))
    return out


def annotations(pod):
    return (pod.get("metadata") or {}).get("annotations") or {}


def is_literal(entry):
    return isinstance(entry.get("value"), str) and "valueFrom" not in entry


def parse_record(text):
    """The deployguard.io/injected grammar, strictly; None when it does not parse."""
    if not isinstance(text, str) or not text:
        return None
    record = {}
    for entry in text.split("; "):
        container, sep, rest = entry.partition(": ")
        if not sep or not container or " " in container or ":" in container or container in record:
            return None
        record[container] = {}
        for assignment in rest.split(" "):
            name, sep, value = assignment.partition("=")
            if not sep or name not in VARS or name in record[container]:
                return None
            if not value or ";" in value:
                return None
            record[container][name] = value
    return record


def owned(pod):
    """{(container, VAR): env index} of what deployguard owns in `pod`, per the spec."""
    record = parse_record(annotations(pod).get(INJECTED))
    result = {}
    if not record:
        return result
    for _, container in judged(pod):
        name = container.get("name")
        for var, value in (record.get(name) or {}).items():
            env = container.get("env") or []
            hits = [i for i, e in enumerate(env) if e.get("name") == var]
            if len(hits) == 1 and is_literal(env[hits[0]]) and env[hits[0]]["value"] == value:
                result[(name, var)] = hits[0]
    return result


def stale_records(pod):
    """Records in the annotation that name no owned variable."""
    record = parse_record(annotations(pod).get(INJECTED)) or {}
    have = owned(pod)
    return [f"{c}: {v}={val}" for c, vs in record.items() for v, val in vs.items() if (c, v) not in have]


def strip(pod):
    """`pod` without the env entries deployguard owns and without its annotation."""
    out = copy.deepcopy(pod)
    have = owned(pod)
    for _, container in judged(out):
        indexes = sorted((i for (c, _), i in have.items() if c == container.get("name")), reverse=True)
        for i in indexes:
            del container["env"][i]
    meta = out.get("metadata") or {}
    if isinstance(meta.get("annotations"), dict):
        meta["annotations"].pop(INJECTED, None)
    return out


def canonical_record(pod):
    """The annotation as the spec says it must read for what `pod` owns (None: absent)."""
    have = owned(pod)
    parts = []
    for _, container in judged(pod):
        name = container.get("name")
        assignments = []
        for var in VARS:
            if (name, var) in have:
                assignments.append(f"{var}={container['env'][have[(name, var)]]['value']}")
        if assignments:
            parts.append(f"{name}: {' '.join(assignments)}")
    return "; ".join(parts) or None


def rest(pod):
    """`pod` without judged containers' env and the annotation: what a patch must not touch."""
    out = strip_annotation(copy.deepcopy(pod))
    for _, container in judged(out):
        container.pop("env", None)
    return out


def strip_annotation(pod):
    meta = pod.get("metadata") or {}
    if isinstance(meta.get("annotations"), dict):
        meta["annotations"].pop(INJECTED, None)
        if not meta["annotations"]:
            del meta["annotations"]
    return pod


def env_by_name(container):
    groups = {}
    for entry in container.get("env") or []:
        groups.setdefault(entry.get("name"), []).append(entry)
    return groups


def user_env(pod):
    """{container: env list} of the user's own entries (everything deployguard does not own)."""
    base = strip(pod)
    return {c.get("name"): list(c.get("env") or []) for _, c in judged(base)}


def effective_limit(pod, container, resource):
    """Exact effective limit (own, else pod-level; 0 = none); 'unknown' when unreadable."""
    for limits in ((container.get("resources") or {}).get("limits"),
                   ((pod.get("spec") or {}).get("resources") or {}).get("limits")):
        if isinstance(limits, dict) and resource in limits:
            value = quantity(limits[resource])
            if value is None:
                return "unknown"
            if value != 0:
                return value
    return None


# ---------------------------------------------------------------- limit changes (the "VPA")

def set_limits(pod, cpu, memory, which=None):
    """Sets limits on every judged container (or only the one at judged index `which`);
    a request above its new limit comes down to it, as a VPA keeps request <= limit."""
    out = copy.deepcopy(pod)
    targets = judged(out)
    if which is not None:
        targets = [targets[which]]
    for _, container in targets:
        if not isinstance(container.get("resources"), dict):
            container["resources"] = {}
        resources = container["resources"]
        if not isinstance(resources.get("limits"), dict):
            resources["limits"] = {}
        limits = resources["limits"]
        requests = resources.get("requests") if isinstance(resources.get("requests"), dict) else {}
        for key, value in (("cpu", cpu), ("memory", memory)):
            if value is None:
                continue
            limits[key] = value
            wanted = quantity(requests.get(key)) if key in requests else None
            if wanted is not None and wanted > quantity(value):
                requests[key] = value
    return out


def remove_limits(pod, resources_to_remove):
    out = copy.deepcopy(pod)
    for _, container in judged(out):
        limits = (container.get("resources") or {}).get("limits")
        if not isinstance(limits, dict):
            continue
        for key in resources_to_remove:
            limits.pop(key, None)
        if not limits:
            del container["resources"]["limits"]
    return out


SEQUENCES = [
    ("lower then raise", [
        ("lower all to cpu 1 / memory 512Mi", lambda p: set_limits(p, "1", "512Mi")),
        ("raise all to cpu 8 / memory 8Gi", lambda p: set_limits(p, "8", "8Gi")),
    ]),
    ("remove then restore", [
        ("remove every cpu limit", lambda p: remove_limits(p, ["cpu"])),
        ("remove every limit", lambda p: remove_limits(p, ["cpu", "memory"])),
        ("restore cpu 2500m / memory 1000Mi", lambda p: set_limits(p, "2500m", "1000Mi")),
    ]),
    ("one container at a time", [
        ("first container only to cpu 2 / memory 1Gi", lambda p: set_limits(p, "2", "1Gi", which=0)),
        ("last container only to cpu 1 / memory 512Mi", lambda p: set_limits(p, "1", "512Mi", which=-1)),
    ]),
    # Not what a VPA writes, but what the spec rules on: a zero limit is no limit, and no
    # GOMEMLIMIT under 1 MiB is injected (floor(0.9 x 1Mi) is below it).
    ("zero and tiny limits", [
        ("set cpu 0 / memory 0 (no limit)", lambda p: set_limits(p, "0", "0")),
        ("set cpu 500m / memory 1Mi", lambda p: set_limits(p, "500m", "1Mi")),
        ("set cpu 1.5 / memory 1.5Gi", lambda p: set_limits(p, "1.5", "1.5Gi")),
    ]),
]


# ---------------------------------------------------------------- the pods

PROBES = {
    "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10, "timeoutSeconds": 2},
    "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 5, "timeoutSeconds": 2},
}


def container(name, env=None, **extra):
    out = {"name": name, "image": "registry.example/app:1.0", "ports": [{"containerPort": 8080}]}
    out.update(copy.deepcopy(PROBES))
    if env is not None:
        out["env"] = env
    out.update(extra)
    return out


def pod(name, spec, annotations_=None):
    meta = {"name": name, "namespace": "default", "labels": {"app": name}}
    if annotations_:
        meta["annotations"] = annotations_
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def handwritten():
    return [
        ("hand-written: two containers + native sidecar", pod("two-and-sidecar", {
            "initContainers": [
                {"name": "setup", "image": "registry.example/setup:1.0", "command": ["/setup"]},
                container("proxy", [{"name": "PROXY_MODE", "value": "tcp"}], restartPolicy="Always"),
            ],
            "containers": [
                container("app", [{"name": "LOG_LEVEL", "value": "debug"},
                                  {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]),
                container("worker"),
            ],
        }, {"team": "payments"})),
        ("hand-written: user GOMEMLIMIT literal", pod("user-gomemlimit", {
            "containers": [container("app", [{"name": "A", "value": "1"},
                                             {"name": "GOMEMLIMIT", "value": "300MiB"},
                                             {"name": "B", "value": "2"}])],
        })),
        ("hand-written: user GOMAXPROCS from resourceFieldRef", pod("user-gomaxprocs-ref", {
            "containers": [container("app", [{"name": "GOMAXPROCS", "valueFrom": {
                "resourceFieldRef": {"resource": "limits.cpu"}}},
                {"name": "Z", "value": "last"}])],
        })),
        ("hand-written: pod-level limits", pod("pod-level", {
            "resources": {"limits": {"cpu": "2", "memory": "2Gi"}},
            "containers": [container("app"), container("helper", [{"name": "X", "value": "y"}])],
        })),
    ]


def corpus_documents(path):
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    try:
        return [json.loads(text)] if path.endswith(".json") else list(yaml.safe_load_all(text))
    except Exception:  # noqa: BLE001 - unparsable files are the CLI tests' business
        return []


def corpus_pods(dirs):
    """(source, Pod) for every Pod and pod template in the corpus."""
    files = sorted(os.path.join(d, f) for d in dirs for f in os.listdir(d)
                   if f.endswith((".yaml", ".yml", ".json")))
    for path in files:
        base = os.path.basename(path)
        for number, doc in enumerate(corpus_documents(path)):
            if not isinstance(doc, dict):
                continue
            where = f"{base} #{number}"
            request = doc.get("request") if doc.get("kind") == "AdmissionReview" else (
                doc if isinstance(doc.get("kind"), dict) else None)
            if isinstance(request, dict):
                obj = request.get("object")
                kind = request.get("kind") if isinstance(request.get("kind"), dict) else {}
                if isinstance(obj, dict) and obj.get("kind", kind.get("kind")) == "Pod":
                    yield where + " (request object)", obj
                elif isinstance(obj, dict):
                    yield from from_workload(where, obj)
                continue
            items = doc.get("items") if doc.get("kind") == "List" else [doc]
            for item_no, item in enumerate(items or []):
                if isinstance(item, dict):
                    yield from from_workload(where if len(items) == 1 else f"{where} item {item_no}", item)


def from_workload(where, obj):
    kind = obj.get("kind")
    if kind == "Pod":
        yield where + " (Pod)", obj
        return
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    if kind == "CronJob":
        template = (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template"))
    elif kind in TEMPLATE_KINDS:
        template = spec.get("template")
    else:
        return
    if not isinstance(template, dict):
        return
    meta = copy.deepcopy(template.get("metadata") or {})
    if not isinstance(meta, dict):
        return
    name = ((obj.get("metadata") or {}).get("name") or "workload")
    meta["name"] = re.sub(r"[^a-z0-9-]", "-", f"{name}-{kind.lower()}-pod".lower())[:63].strip("-")
    namespace = (obj.get("metadata") or {}).get("namespace")
    if namespace:
        meta["namespace"] = namespace
    yield f"{where} ({kind} template)", {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                                         "spec": copy.deepcopy(template.get("spec"))}


def usable(obj):
    """Only Pods deployguard can read: the rest are the CLI tests' business."""
    meta = obj.get("metadata", {})
    spec = obj.get("spec")
    if not isinstance(meta, dict) or not isinstance(spec, dict):
        return False
    if not isinstance(meta.get("annotations", {}) or {}, dict):
        return False
    if not all(isinstance(v, str) for v in (meta.get("annotations") or {}).values()):
        return False
    names = []
    for key in ("containers", "initContainers"):
        listed = spec.get(key, [])
        if listed is None:
            continue
        if not isinstance(listed, list) or (key == "containers" and not listed):
            return False
        for c in listed:
            if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not c["name"]:
                return False
            names.append(c["name"])
            env = c.get("env")
            if env is not None and (not isinstance(env, list)
                                    or not all(isinstance(e, dict) and isinstance(e.get("name"), str) for e in env)):
                return False
            res = c.get("resources")
            if res is not None and (not isinstance(res, dict) or not all(
                    v is None or isinstance(v, dict) for v in res.values())):
                return False
    return len(names) == len(set(names))


def interest(obj):
    """Corpus pods worth more: own Go variables, init containers, several containers, pod-level limits."""
    spec = obj["spec"]
    score = 0
    envs = [e.get("name") for _, c in judged(obj) for e in c.get("env") or []]
    score += 4 if any(n in VARS for n in envs) else 0
    score += 2 if spec.get("initContainers") else 0
    score += 1 if len(spec.get("containers") or []) > 1 else 0
    score += 2 if isinstance(spec.get("resources"), dict) else 0
    score += 2 if any(k.startswith("deployguard.io/") for k in annotations(obj)) else 0
    score += 1 if spec.get("ephemeralContainers") else 0
    return score


def select_corpus(dirs):
    seen, found = set(), []
    for where, obj in corpus_pods(dirs):
        if not usable(obj):
            continue
        obj = copy.deepcopy(obj)
        obj.setdefault("apiVersion", "v1")
        obj["kind"] = "Pod"
        meta = obj.setdefault("metadata", {})
        meta.setdefault("name", (meta.get("generateName") or "corpus-").rstrip("-") + "-x")
        if meta.get("namespace") in EXCLUDED_NAMESPACES:
            meta["namespace"] = "default"  # excluded namespaces are never mutated: nothing to see
        key = json.dumps([obj["spec"], annotations(obj)], sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        found.append((where, obj))
    # Half the most interesting, the rest taken in turn from request objects, Pod manifests
    # and pod templates, so plain pods are judged too.
    ranked = sorted(range(len(found)), key=lambda i: (-interest(found[i][1]), i))
    chosen = set(ranked[:MAX_CORPUS_PODS // 2])
    kinds = [[i for i in range(len(found)) if found[i][0].endswith(suffix) and i not in chosen]
             for suffix in ("(request object)", "(Pod)", "template)")]
    while len(chosen) < min(MAX_CORPUS_PODS, len(found)) and any(kinds):
        for group in kinds:
            if group and len(chosen) < MAX_CORPUS_PODS:
                chosen.add(group.pop(0))
    return [found[i] for i in sorted(chosen)]


# ---------------------------------------------------------------- reviews and the applier

class Tools:
    def __init__(self, binary, applier, workdir):
        self.binary, self.applier, self.workdir = binary, applier, workdir
        self.validate_policy = os.path.join(workdir, "validate-policy.yaml")
        with open(self.validate_policy, "w", encoding="utf-8") as fh:
            fh.write(VALIDATE_POLICY)
        self._counter = 0
        self._lock = threading.Lock()

    def _tmp(self, suffix):
        with self._lock:
            self._counter += 1
            return os.path.join(self.workdir, f"{self._counter}-{suffix}")

    def review(self, endpoint, request, config=None):
        """(response, error)."""
        review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
        cmd = [self.binary, "review"] + (["--config", config] if config else []) + ["--endpoint", endpoint, "-"]
        try:
            out = subprocess.run(cmd, input=json.dumps(review).encode(), capture_output=True, timeout=30, check=False)
        except subprocess.TimeoutExpired:
            return None, "review timed out"
        if out.returncode != 0:
            return None, f"review exit {out.returncode}: {out.stderr.decode().strip()[:300]}"
        try:
            return json.loads(out.stdout)["response"], None
        except Exception as exc:  # noqa: BLE001
            return None, f"review output unreadable: {exc}"

    def apply(self, doc, ops):
        """(patched, error) with the API server's applier; Python jsonpatch must agree."""
        doc_path, patch_path = self._tmp("doc.json"), self._tmp("patch.json")
        with open(doc_path, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
        with open(patch_path, "w", encoding="utf-8") as fh:
            json.dump(ops, fh)
        go = subprocess.run([self.applier, doc_path, patch_path], capture_output=True, check=False)
        os.unlink(doc_path)
        os.unlink(patch_path)
        if go.returncode != 0:
            return None, f"the API server's applier refuses the patch: {go.stderr.decode().strip()[:300]}"
        patched = json.loads(go.stdout)
        if jsonpatch is not None:
            try:
                strict = jsonpatch.apply_patch(doc, ops)
            except Exception as exc:  # noqa: BLE001
                return patched, f"RFC 6902 (python jsonpatch) refuses the patch: {exc}"
            if strict != patched:
                return patched, "the API server's and the RFC 6902 appliers disagree"
        return patched, None


def create_request(obj, uid="reinvocation"):
    meta = obj.get("metadata") or {}
    return {
        "uid": uid,
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace") or "default",
        "operation": "CREATE",
        "userInfo": {"username": "reinvocation"},
        "object": obj,
    }


def resize_request(old, new):
    request = create_request(new, uid="resize")
    request.update({"operation": "UPDATE", "subResource": "resize", "oldObject": old,
                    "requestSubResource": "resize"})
    return request


def decoded_patch(response):
    patch = (response or {}).get("patch")
    return json.loads(base64.b64decode(patch)) if patch else []


def go_env_findings(response):
    """Every go-env finding a validate response carries (denial, warnings, audit)."""
    found = []
    message = ((response.get("status") or {}).get("message")) or ""
    if not response.get("allowed", True):
        _, _, body = message.partition(": ")
        found += [f for f in re.split(r"(?<=\)); (?=container \")", body) if f.endswith("(go-env)")]
    found += [w for w in response.get("warnings") or [] if "(go-env)" in w]
    audit = ((response.get("auditAnnotations") or {}).get("audit-findings")) or ""
    found += [a for a in audit.split(",") if a.endswith(":go-env")]
    return sorted(found)


# ---------------------------------------------------------------- the checks

class Case:
    def __init__(self, name):
        self.name = name
        self.problems = []
        self.evidence = []

    def fail(self, problem):
        self.problems.append(problem)

    def note(self, what, request, response, patch=None, patched=None):
        self.evidence.append({"what": what, "request": request, "response": response,
                              "patch": patch, "patched": patched})


class PodRun:
    def __init__(self, tools, label, pod_, is_handwritten):
        self.tools, self.label, self.pod, self.handwritten = tools, label, pod_, is_handwritten
        self.user = user_env(pod_)  # the user's own entries, before deployguard touched anything
        self.cases = []

    def mutate(self, case, obj, what):
        """Reviews `obj` on /mutate as a CREATE and applies the patch: (patched, ops) or (None, None)."""
        request = create_request(obj)
        response, error = self.tools.review("mutate", request)
        if error:
            case.note(what, request, None)
            case.fail(f"{what}: {error}")
            return None, None
        ops = decoded_patch(response)
        patched, error = self.tools.apply(obj, ops) if ops else (copy.deepcopy(obj), None)
        case.note(what, request, response, ops, patched)
        if error:
            case.fail(f"{what}: {error}; patch {json.dumps(ops)}")
            if patched is None:
                return None, None
        return patched, ops

    def check(self, case, before, after, step, user=None):
        """Every invariant of `after`, the result of mutating `before`; `user`: the user's own
        entries per container (by default those of the original pod)."""
        where = f"after {step}"
        user = self.user if user is None else user
        if rest(after) != rest(before):
            case.fail(f"{where}: the patch changed more than env and {INJECTED}")
        if parse_record(annotations(after).get(INJECTED)) is None and INJECTED in annotations(after):
            case.fail(f"{where}: {INJECTED} does not parse: {annotations(after)[INJECTED]!r}")
        have = owned(after)
        # the user's own entries: same values, same relative order
        mine = user_env(after)
        for _, c in judged(after):
            name = c.get("name")
            if mine.get(name) != user.get(name):
                case.fail(f"{where}: container {name}: the user's env {json.dumps(user.get(name))} "
                          f"became {json.dumps(mine.get(name))} (owned entries left out)")
        # the annotation lists exactly the owned variables, in spec order
        stale = stale_records(after)
        if stale:
            case.fail(f"{where}: {INJECTED} records variables deployguard does not own: {stale}")
        if annotations(after).get(INJECTED) != canonical_record(after):
            case.fail(f"{where}: {INJECTED} is {annotations(after).get(INJECTED)!r}, "
                      f"expected {canonical_record(after)!r} for what is owned")
        self.check_values(case, after, have, where, user)
        # a fresh mutation of the stripped object gives the same env and annotation
        stripped = strip(after)
        fresh, _ = self.mutate(case, stripped, f"fresh mutation of the stripped object {where}")
        if fresh is not None:
            for (_, c), (_, f) in zip(judged(after), judged(fresh)):
                got, want = env_by_name(c), env_by_name(f)
                for var in sorted(set(got) | set(want), key=str):
                    if got.get(var) != want.get(var):
                        case.fail(f"{where}: container {c.get('name')}: {var} is {json.dumps(got.get(var))}, "
                                  f"a fresh mutation gives {json.dumps(want.get(var))}")
            if annotations(after).get(INJECTED) != annotations(fresh).get(INJECTED):
                case.fail(f"{where}: {INJECTED} is {annotations(after).get(INJECTED)!r}, "
                          f"a fresh mutation writes {annotations(fresh).get(INJECTED)!r}")
        # idempotent
        request = create_request(after)
        response, error = self.tools.review("mutate", request)
        if error:
            case.fail(f"{where}: second review: {error}")
        elif decoded_patch(response):
            case.note(f"second review {where}", request, response, decoded_patch(response))
            case.fail(f"{where}: a further review patches again: {json.dumps(decoded_patch(response))}")
        self.check_validate(case, after, stripped, where)

    def check_values(self, case, after, have, where, user):
        """Owned values are what the limits give; with no deployguard.io/ opt-out annotation,
        every variable the user does not set is owned exactly when its limit exists."""
        opt_outs = [k for k in annotations(after) if k.startswith("deployguard.io/") and k != INJECTED]
        for _, c in judged(after):
            name = c.get("name")
            user_names = {e.get("name") for e in user.get(name) or []}
            cpu = effective_limit(after, c, "cpu")
            memory = effective_limit(after, c, "memory")
            for var, limit in (("GOMAXPROCS", cpu), ("GOMEMLIMIT", memory)):
                if var in user_names or limit == "unknown":
                    continue
                expected = None
                if limit is not None:
                    if var == "GOMAXPROCS":
                        expected = max(2, math.ceil(limit))
                    elif math.floor(math.ceil(limit) * Fraction(9, 10)) >= MIB:
                        expected = math.floor(math.ceil(limit) * Fraction(9, 10))
                if (name, var) in have:
                    value = c["env"][have[(name, var)]]["value"]
                    if expected is None:
                        case.fail(f"{where}: container {name}: {var}={value} owned, but there is no limit for it")
                    elif var == "GOMAXPROCS" and value != str(expected):
                        case.fail(f"{where}: container {name}: GOMAXPROCS={value}, the CPU limit gives {expected}")
                    elif var == "GOMEMLIMIT":
                        got = go_bytes(value)
                        if got is None or not expected - MIB < got <= expected:
                            case.fail(f"{where}: container {name}: GOMEMLIMIT={value}, "
                                      f"the memory limit gives floor(0.9 x limit) = {expected} bytes")
                elif expected is not None and not opt_outs:
                    own = ((c.get("resources") or {}).get("limits") or {}).get("cpu" if var == "GOMAXPROCS" else "memory")
                    source = f"the pod-level limit; own limit {own!r}" if not quantity(own) else "its own limit"
                    case.fail(f"{where}: container {name}: {var} missing, expected {expected} "
                              f"from the effective limit {limit} ({source})")

    def check_validate(self, case, after, stripped, where):
        """The injection adds no go-env finding to those the user's own variables cause (the
        stripped object's); hand-written pods, which have probes, are allowed unless their
        stripped form is denied too."""
        request = create_request(after)
        response, error = self.tools.review("validate", request, self.tools.validate_policy)
        if error:
            case.fail(f"{where}: validate review: {error}")
            return
        findings = go_env_findings(response)
        baseline, baseline_allowed = [], True
        if any(e.get("name") in VARS for _, c in judged(stripped) for e in c.get("env") or []):
            base_response, error = self.tools.review("validate", create_request(stripped), self.tools.validate_policy)
            if error:
                case.fail(f"{where}: validate review of the stripped object: {error}")
                return
            baseline, baseline_allowed = go_env_findings(base_response), bool(base_response.get("allowed"))
        if self.handwritten and baseline_allowed and not response.get("allowed"):
            case.note(f"validate {where}", request, response)
            case.fail(f"{where}: validate denies: {(response.get('status') or {}).get('message')}")
        if findings != baseline:
            case.note(f"validate {where}", request, response)
            extra = [f for f in findings if f not in baseline]
            case.fail(f"{where}: go-env findings the user's own variables do not cause: {extra or findings}")

    def run(self):
        start = set_limits(self.pod, "4", "4Gi")
        case = Case(f"{self.label} / create with cpu 4, memory 4Gi")
        self.cases.append(case)
        mutated, _ = self.mutate(case, start, "CREATE review")
        if mutated is None:
            return self.cases
        self.check(case, start, mutated, "the CREATE review")
        for title, steps in SEQUENCES:
            case = Case(f"{self.label} / {title}")
            self.cases.append(case)
            current = mutated
            for step_title, change in steps:
                changed = change(current)
                after, _ = self.mutate(case, changed, f"reinvocation after '{step_title}'")
                if after is None:
                    break
                self.check(case, changed, after, f"'{step_title}'")
                current = after
                if step_title == "remove every limit" and (self.pod.get("spec") or {}).get("resources"):
                    self.resize(after, " (after every container limit is removed)")
            else:
                self.opt_out(current, title)
        self.takeovers(mutated)
        self.resize(mutated)
        return self.cases

    def takeovers(self, mutated):
        """The user edits an injected value, the annotation is mangled, a container is skipped
        later: what is no longer deployguard's stays as it is, what still is gets recomputed."""
        have = sorted(owned(mutated).items(), key=lambda kv: kv[1])
        scenarios = []
        if have:
            (name, var), index = have[0]
            edited = copy.deepcopy(mutated)
            target = next(c for _, c in judged(edited) if c.get("name") == name)
            target["env"][index]["value"] = "3" if var == "GOMAXPROCS" else "1000MiB"
            scenarios.append((f"the user edits {name}'s {var}", edited))
            if self.handwritten:  # one root cause per pod: the hand-written ones suffice
                # With the limits changed too, so that "unchanged limits: no operation" cannot apply:
                # nothing is owned, so every variable is the user's and the annotation goes.
                mangled = set_limits(mutated, "8", "8Gi")
                mangled["metadata"]["annotations"][INJECTED] += ";"
                scenarios.append((f"{INJECTED} no longer parses (trailing ';') and limits raised", mangled))
        for title, changed in scenarios:
            case = Case(f"{self.label} / {title}")
            self.cases.append(case)
            after, _ = self.mutate(case, changed, f"review after '{title}'")
            if after is not None:
                self.check(case, changed, after, f"'{title}'", user=user_env(changed))
                if title.startswith("the user edits") and (name, var) in owned(after):
                    case.fail(f"deployguard still owns {name}'s {var} after the user changed it")
        skipped = judged(mutated)[0][1].get("name")
        changed = copy.deepcopy(mutated)
        changed["metadata"].setdefault("annotations", {})["deployguard.io/go-runtime-skip"] = skipped
        case = Case(f"{self.label} / go-runtime-skip: {skipped} added later")
        self.cases.append(case)
        after, _ = self.mutate(case, changed, "review after adding go-runtime-skip")
        if after is not None:
            self.check(case, changed, after, "adding go-runtime-skip")
            left = [v for (c, v) in owned(after) if c == skipped]
            if left:
                case.fail(f"{skipped} is skipped but deployguard still owns its {left}")
            others = {k: v for k, v in owned(mutated).items() if k[0] != skipped}
            if {k: v for k, v in owned(after).items() if k[0] != skipped}.keys() != others.keys():
                case.fail(f"skipping {skipped} changed what deployguard owns in the other containers")

    def opt_out(self, current, title):
        case = Case(f"{self.label} / opt-out after '{title}'")
        self.cases.append(case)
        opted = copy.deepcopy(current)
        opted["metadata"].setdefault("annotations", {})[GO_RUNTIME] = "off"
        after, _ = self.mutate(case, opted, "review after adding go-runtime: off")
        if after is None:
            return
        expected = strip(opted)
        if after != expected:
            for (_, c), (_, e) in zip(judged(after), judged(expected)):
                if c.get("env") != e.get("env"):
                    case.fail(f"container {c.get('name')}: env {json.dumps(c.get('env'))}, "
                              f"expected {json.dumps(e.get('env'))}")
            if annotations(after) != annotations(expected):
                case.fail(f"annotations {json.dumps(annotations(after))}, expected {json.dumps(annotations(expected))}")
            if not case.problems:
                case.fail("the opt-out changed more than deployguard's variables and annotation")
        again, _ = self.tools.review("mutate", create_request(after))
        if again is not None and decoded_patch(again):
            case.fail(f"after the opt-out a further review patches: {json.dumps(decoded_patch(again))}")

    def resize(self, state, where=""):
        """Resize reviews of `state` (a mutated Pod): for each container, its memory (or, with
        no own limit, the pod-level memory) limit lowered to, below and above the GOMEMLIMIT
        the running process sees, and its CPU limit lowered under its GOMAXPROCS."""
        pod_limits = ((state.get("spec") or {}).get("resources") or {}).get("limits") or {}
        for index, (_, c) in enumerate(judged(state)):
            name = c.get("name")
            own = ((c.get("resources") or {}).get("limits") or {})
            scope = "memory" if quantity(own.get("memory")) else (
                "pod-level memory" if quantity(pod_limits.get("memory")) else None)
            limit = quantity(own.get("memory") if scope == "memory" else pod_limits.get("memory"))
            seen, how = self.seen(state, c, "GOMEMLIMIT")
            if scope and how == "literal" and MIB <= seen < limit:
                for what, new, allowed, restart in (
                        ("below GOMEMLIMIT", seen - MIB, False, False),
                        ("equal to GOMEMLIMIT", seen, False, False),
                        ("below GOMEMLIMIT, resizePolicy RestartContainer", seen - MIB, False, True),
                        ("lowered, still above GOMEMLIMIT", (seen + int(limit)) // 2, True, False)):
                    self.resize_case(state, index, scope, str(new), allowed, "GOMEMLIMIT", restart=restart,
                                     title=f"resize{where} {name} {scope} to {new} bytes, "
                                           f"GOMEMLIMIT={seen} bytes ({what})")
            elif scope == "memory" and how == "derived":
                # the process keeps the value computed from the old limit unless it restarts
                for what, new, allowed, restart in (
                        ("lowered", int(limit) * 3 // 4, False, False),
                        ("lowered, resizePolicy RestartContainer: not judged", int(limit) * 3 // 4, True, True),
                        ("raised", int(limit) * 2, True, False)):
                    self.resize_case(state, index, scope, str(new), allowed, "GOMEMLIMIT", restart=restart,
                                     title=f"resize{where} {name} memory to {new} bytes, GOMEMLIMIT from "
                                           f"resourceFieldRef = {seen} ({what})")
            procs, how = self.seen(state, c, "GOMAXPROCS")
            if procs and procs > 2 and quantity(own.get("cpu")):
                self.resize_case(state, index, "cpu", "1", True, "GOMAXPROCS", warn=True,
                                 title=f"resize{where} {name} cpu to 1 under {how} GOMAXPROCS={procs}")
                if how == "derived":
                    self.resize_case(state, index, "cpu", "1", True, "GOMAXPROCS", warn=False, restart=True,
                                     title=f"resize{where} {name} cpu to 1, GOMAXPROCS from resourceFieldRef, "
                                           "resizePolicy RestartContainer: not judged")

    @staticmethod
    def seen(pod_, c, var):
        """(value, "literal" | "derived") the running process sees for `var`, or (None, None):
        a literal, or a resourceFieldRef on the container's own limits (divisor 1)."""
        entries = [e for e in c.get("env") or [] if e.get("name") == var]
        if len(entries) != 1:
            return None, None
        entry = entries[0]
        if is_literal(entry):
            value = entry["value"]
            if var == "GOMEMLIMIT":
                return go_bytes(value), "literal"
            return (int(value), "literal") if re.fullmatch(r"[1-9]\d{0,8}", value) else (None, None)
        ref = (entry.get("valueFrom") or {}).get("resourceFieldRef") or {}
        resource = "limits.memory" if var == "GOMEMLIMIT" else "limits.cpu"
        if ref.get("resource") != resource or ref.get("containerName") not in (None, "", c.get("name")):
            return None, None
        if quantity(ref.get("divisor", "1")) != 1:
            return None, None
        own = quantity(((c.get("resources") or {}).get("limits") or {}).get(resource.split(".")[1]))
        return (math.ceil(own), "derived") if own else (None, None)

    def resize_case(self, state, index, scope, value, allowed, var, title, warn=None, restart=False):
        """One resize review; `warn`: True a warning must name `var`, False none may."""
        case = Case(f"{self.label} / {title}")
        self.cases.append(case)
        old = copy.deepcopy(state)
        if restart:
            resource = "cpu" if scope == "cpu" else "memory"
            judged(old)[index][1]["resizePolicy"] = [{"resourceName": resource, "restartPolicy": "RestartContainer"}]
        new = copy.deepcopy(old)
        if scope == "pod-level memory":
            new["spec"]["resources"]["limits"]["memory"] = value
        else:
            judged(new)[index][1]["resources"]["limits"][scope] = value
        request = resize_request(old, new)
        response, error = self.tools.review("validate", request)
        if error:
            case.fail(error)
            return
        case.note(title, request, response)
        message = ((response.get("status") or {}).get("message")) or ""
        warnings = response.get("warnings") or []
        if bool(response.get("allowed")) != allowed:
            case.fail(f"allowed is {response.get('allowed')}, expected {allowed}"
                      + (f"; message: {message}" if message else ""))
        elif not allowed and var not in message:
            case.fail(f"the denial does not mention {var}: {message}")
        if warn is True and not any(var in w for w in warnings):
            case.fail(f"no warning mentions {var}: {warnings}")
        if warn is False and any(var in w for w in warnings):
            case.fail(f"a warning mentions {var}, which is not judged: {warnings}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--apiserver-patch", required=True)
    parser.add_argument("--dump", help="write each failed case's reviews to DIR/<case>.json")
    parser.add_argument("dirs", nargs="+")
    args = parser.parse_args()
    pods = [(label, obj, True) for label, obj in handwritten()]
    pods += [(where, obj, False) for where, obj in select_corpus(args.dirs)]
    with tempfile.TemporaryDirectory() as workdir:
        tools = Tools(args.bin, args.apiserver_patch, workdir)
        with ThreadPoolExecutor(max_workers=max(2, (os.cpu_count() or 2) * 2)) as pool:
            results = list(pool.map(lambda p: PodRun(tools, *p).run(), pods))
    cases = [case for result in results for case in result]
    failed = [case for case in cases if case.problems]
    for case in failed:
        shown = " | ".join(problem[:600] for problem in case.problems[:4])
        more = f" | (+{len(case.problems) - 4} more)" if len(case.problems) > 4 else ""
        print(f"FAIL {case.name}: {shown}{more}")
    if args.dump and failed:
        os.makedirs(args.dump, exist_ok=True)
        for number, case in enumerate(failed):
            slug = re.sub(r"[^A-Za-z0-9._-]+", "_", case.name)[:150]
            with open(os.path.join(args.dump, f"{number:03d}-{slug}.json"), "w", encoding="utf-8") as fh:
                json.dump({"case": case.name, "problems": case.problems, "reviews": case.evidence}, fh, indent=1)
    print(f"pods: {len(pods)} ({sum(1 for p in pods if p[2])} hand-written); cases: {len(cases)}")
    print(f"{len(cases) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
