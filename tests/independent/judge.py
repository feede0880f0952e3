#!/usr/bin/env python3
"""Independent implementation of deployguard's default policy (DESIGN.md §3
plus the implementer's clarifications), written without reading the Rust code.

Usage: judge.py PATH...      (prints the same JSON shape as
                              `deployguard check --output json PATH...`)
Pure Python 3.11 + PyYAML.
"""
from __future__ import annotations

import json
import os
import re
import sys
from fractions import Fraction
from math import ceil

import yaml

# ---------------------------------------------------------------- policy ---

EXCLUDED_NAMESPACES = {"kube-system", "kube-public", "kube-node-lease"}

DEFAULT_MODES = {
    "liveness-probe": "enforce",
    "readiness-probe": "enforce",
    "probe-port": "enforce",
    "probe-settings": "warn",
    "cpu-limit": "enforce",
    "memory-limit": "enforce",
    "cpu-request": "warn",
    "memory-request": "warn",
    "go-env": "enforce",
}

# strength order: a "cap" takes the weaker of two modes
MODE_RANK = {"off": 0, "audit": 1, "warn": 2, "enforce": 3}


def cap(mode: str, ceiling: str) -> str:
    return mode if MODE_RANK[mode] <= MODE_RANK[ceiling] else ceiling


PROBE_RULES = ("liveness-probe", "readiness-probe", "probe-port", "probe-settings")
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")

# kind -> path of the pod spec inside the object
WORKLOAD_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
BATCH_KINDS = {"Job", "CronJob"}


class InputError(Exception):
    pass


# ------------------------------------------------------------ quantities ---

_BIN = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DEC = {"n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": 1,
        "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
# Kubernetes grammar: <sign>? (<digits> | <digits>.<digits> | <digits>. | .<digits>) <suffix>
_QTY_RE = re.compile(
    r"^([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE]([+-]?[0-9]+))?$"
)


def quantity_text(v):
    """YAML/JSON value -> the quantity string Kubernetes would see, or None
    if it is not a string/number."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        r = repr(v)
        if r.endswith(".0"):
            r = r[:-2]
        return r
    if isinstance(v, str):
        return v
    return None


def parse_quantity(v) -> Fraction | None:
    s = quantity_text(v)
    if s is None:
        return None
    m = _QTY_RE.match(s)
    if not m:
        return None
    sign, num, suffix, exp = m.groups()
    val = Fraction(num if not num.endswith(".") else num[:-1])
    if suffix is not None:
        val *= _BIN.get(suffix) or _DEC[suffix]
    elif exp is not None:
        e = int(exp)
        if abs(e) > 1000:  # absurd; keep Fraction finite
            return None
        val *= Fraction(10) ** e
    return -val if sign == "-" else val


# ------------------------------------------------------------ helpers ------

def get(obj, *path):
    for p in path:
        if isinstance(obj, dict):
            obj = obj.get(p)
        elif isinstance(obj, list) and isinstance(p, int) and 0 <= p < len(obj):
            obj = obj[p]
        else:
            return None
    return obj


def as_list(v):
    return v if isinstance(v, list) else []


def as_dict(v):
    return v if isinstance(v, dict) else {}


def present(d, key):
    return isinstance(d, dict) and d.get(key) is not None


def int_field(probe, key, default):
    """A probe timing; unset and 0 take Kubernetes' default (SetDefaults_Probe)."""
    v = probe.get(key) if isinstance(probe, dict) else None
    if isinstance(v, bool) or not isinstance(v, int) or v == 0:
        return default
    return v


GOMEMLIMIT_RE = re.compile(r"^([0-9]+)(?:(Ki|Mi|Gi|Ti)?B)?$")
_GO_MULT = {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1


def go_memlimit(value: str):
    """-> ('unset', None) | ('ok', bytes) | ('bad', None)"""
    if value == "" or value == "off":
        return "unset", None
    m = GOMEMLIMIT_RE.match(value)
    if not m:
        return "bad", None
    n = int(m.group(1))
    has_b = value.endswith("B")
    mult = _GO_MULT[m.group(2)] if has_b else 1
    b = n * mult
    if b > INT64_MAX:
        return "bad", None
    return "ok", b


def go_maxprocs(value: str):
    """positive int32 -> int, else None (Go's runtime atoi32: optional '-', digits)."""
    if not re.fullmatch(r"-?[0-9]+", value):
        return None
    n = int(value)
    if n <= 0 or n > INT32_MAX:
        return None
    return n


# ------------------------------------------------------------ evaluation ---

def validate_resources(pod_spec, prefix="spec"):
    """Every cpu/memory quantity in limits/requests of (init)containers and the
    pod must parse; raise InputError naming the field otherwise."""
    places = [(f"{prefix}.resources", pod_spec.get("resources"))]
    for group in ("containers", "initContainers"):
        for i, c in enumerate(as_list(pod_spec.get(group))):
            if isinstance(c, dict):
                places.append((f"{prefix}.{group}[{i}].resources", c.get("resources")))
    for where, res in places:
        res = as_dict(res)
        for kind in ("limits", "requests"):
            section = as_dict(res.get(kind))
            for r in ("cpu", "memory"):
                if r in section and section[r] is not None:
                    if parse_quantity(section[r]) is None:
                        raise InputError(f"{where}.{kind}.{r}: {section[r]!r} is not a Kubernetes quantity")


def check_container(c, pod_spec, probe_rules: bool):
    """-> list of (rule, mode, message) for one container, in rule order."""
    out = []
    pod_res = as_dict(pod_spec.get("resources"))
    pod_lim = as_dict(pod_res.get("limits"))
    pod_req = as_dict(pod_res.get("requests"))
    res = as_dict(c.get("resources"))
    lim = as_dict(res.get("limits"))
    req = as_dict(res.get("requests"))

    if probe_rules:
        if not present(c, "livenessProbe"):
            out.append(("liveness-probe", "enforce", "no livenessProbe"))
        if not present(c, "readinessProbe"):
            out.append(("readiness-probe", "enforce", "no readinessProbe"))
        port_names = {p.get("name") for p in as_list(c.get("ports")) if isinstance(p, dict) and p.get("name") is not None}
        for pname in PROBES:
            probe = c.get(pname)
            if not isinstance(probe, dict):
                continue
            for handler in ("httpGet", "tcpSocket"):
                h = probe.get(handler)
                if not isinstance(h, dict):
                    continue
                port = h.get("port")
                if isinstance(port, str) and not re.fullmatch(r"[0-9]+", port):
                    if port not in port_names:
                        out.append(("probe-port", "enforce", f"{pname}.{handler}.port {port!r} names no container port"))
        # probe-settings
        live = c.get("livenessProbe") if isinstance(c.get("livenessProbe"), dict) else None
        ready = c.get("readinessProbe") if isinstance(c.get("readinessProbe"), dict) else None
        if live is not None and ready is not None and json_equal(live, ready):
            out.append(("probe-settings", "warn", "livenessProbe identical to readinessProbe"))
        for pname in PROBES:
            probe = c.get(pname)
            if not isinstance(probe, dict):
                continue
            t = int_field(probe, "timeoutSeconds", 1)
            p = int_field(probe, "periodSeconds", 10)
            if t >= p:
                out.append(("probe-settings", "warn", f"{pname}: timeoutSeconds {t} >= periodSeconds {p}"))
        if live is not None:
            p = int_field(live, "periodSeconds", 10)
            f = int_field(live, "failureThreshold", 3)
            if p * f < 10:
                out.append(("probe-settings", "warn", f"livenessProbe restarts after {p * f}s"))

    has_cpu_lim = present(lim, "cpu") or present(pod_lim, "cpu")
    has_mem_lim = present(lim, "memory") or present(pod_lim, "memory")
    if not has_cpu_lim:
        out.append(("cpu-limit", "enforce", "no CPU limit"))
    if not has_mem_lim:
        out.append(("memory-limit", "enforce", "no memory limit"))
    if not (present(req, "cpu") or has_cpu_lim or present(pod_req, "cpu")):
        out.append(("cpu-request", "warn", "no CPU request"))
    if not (present(req, "memory") or has_mem_lim or present(pod_req, "memory")):
        out.append(("memory-request", "warn", "no memory request"))

    # effective limits for go-env
    mem_q = lim.get("memory") if present(lim, "memory") else pod_lim.get("memory") if present(pod_lim, "memory") else None
    cpu_q = lim.get("cpu") if present(lim, "cpu") else pod_lim.get("cpu") if present(pod_lim, "cpu") else None
    mem_bytes = ceil(parse_quantity(mem_q)) if mem_q is not None else None
    cpu_milli = ceil(parse_quantity(cpu_q) * 1000) if cpu_q is not None else None

    for e in as_list(c.get("env")):
        if not isinstance(e, dict):
            continue
        name, value = e.get("name"), e.get("value")
        if not isinstance(value, str):
            continue
        if name == "GOMEMLIMIT":
            state, b = go_memlimit(value)
            if state == "bad":
                out.append(("go-env", "enforce", f"GOMEMLIMIT={value!r} is not Go syntax"))
            elif state == "ok" and mem_bytes is not None and b >= mem_bytes:
                out.append(("go-env", "enforce", f"GOMEMLIMIT={value!r} >= memory limit {mem_bytes}"))
        elif name == "GOMAXPROCS":
            n = go_maxprocs(value)
            if n is None:
                out.append(("go-env", "warn", f"GOMAXPROCS={value!r} is not a positive integer"))
            elif cpu_milli is not None and cpu_milli != 0:
                budget = max(2, ceil(Fraction(cpu_milli, 1000)))
                if n > budget:
                    out.append(("go-env", "warn", f"GOMAXPROCS={n} > CPU budget {budget}"))
    return out


def json_equal(a, b):
    """Deep equality of JSON values (no bool/int/float coercion)."""
    if type(a) is not type(b):
        if isinstance(a, bool) or isinstance(b, bool):
            return False
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            return a == b  # serde_json compares numbers by value within kind; close enough
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return a == b


def judge_object(obj):
    """-> None (not a workload) or result dict (without source/index/item).
    Raises InputError."""
    if not isinstance(obj, dict):
        return None
    kind = obj.get("kind")
    if not isinstance(kind, str) or kind not in WORKLOAD_PATHS:
        return None
    pod_spec = get(obj, *WORKLOAD_PATHS[kind])
    if not isinstance(pod_spec, dict):
        return None
    meta = as_dict(obj.get("metadata"))
    ns = meta.get("namespace")
    if not isinstance(ns, str) or ns == "":
        ns = "default"
    result = {
        "apiVersion": obj.get("apiVersion") if isinstance(obj.get("apiVersion"), str) else "",
        "kind": kind,
        "namespace": ns,
        # the CLI reports a missing name as "" (contract is silent; aligned)
        "name": meta.get("name") if isinstance(meta.get("name"), str) else "",
        "findings": [],
    }
    validate_resources(pod_spec, ".".join(WORKLOAD_PATHS[kind]))
    if ns in EXCLUDED_NAMESPACES:
        return result

    batch = kind in BATCH_KINDS or pod_spec.get("restartPolicy") in ("Never", "OnFailure")

    ceiling = "enforce"
    owners = [o for o in as_list(meta.get("ownerReferences")) if isinstance(o, dict) and o.get("controller") is True]
    if kind == "Pod" and owners:
        ceiling = "audit"
    elif kind == "ReplicaSet" and any(o.get("kind") == "Deployment" for o in owners):
        ceiling = "audit"
    elif kind == "Job" and any(o.get("kind") == "CronJob" for o in owners):
        ceiling = "audit"

    targets = []
    for c in as_list(pod_spec.get("containers")):
        if isinstance(c, dict):
            targets.append((c, not batch))
    for c in as_list(pod_spec.get("initContainers")):
        if isinstance(c, dict):
            targets.append((c, (not batch) and c.get("restartPolicy") == "Always"))

    for c, probe_rules in targets:
        cname = c.get("name")
        for rule, mode, msg in check_container(c, pod_spec, probe_rules):
            mode = cap(mode, DEFAULT_MODES[rule])
            if rule == "go-env" and msg.startswith("GOMAXPROCS"):
                mode = cap(mode, "warn")
            mode = cap(mode, ceiling)
            if mode == "off":
                continue
            result["findings"].append({"rule": rule, "mode": mode, "container": cname, "message": msg})
    return result


# ------------------------------------------------------------ input --------

def iter_files(paths):
    for p in paths:
        if p == "-":
            yield "-"
        elif os.path.isdir(p):
            # follow symlinked directories, but never re-enter a directory that
            # is an ancestor of itself (a symlink to a parent must not loop)
            found = []

            def walk(d, ancestors):
                real = os.path.realpath(d)
                if real in ancestors:
                    return
                try:
                    entries = sorted(os.listdir(d))
                except OSError:
                    return
                for name in entries:
                    full = os.path.join(d, name)
                    if os.path.isdir(full):
                        walk(full, ancestors | {real})
                    elif name.endswith((".yaml", ".yml", ".json")) and os.path.isfile(full):
                        found.append(full)

            walk(p, frozenset())
            yield from sorted(found)
        else:
            yield p


def load_documents(source):
    """-> list of (index, doc) and an optional (index, message) parse error."""
    try:
        if source == "-":
            text = sys.stdin.read()
        else:
            with open(source, encoding="utf-8") as fh:
                text = fh.read()
    except OSError as e:
        return [], (None, f"cannot read {source}: {e}")
    docs = []
    if source.endswith(".json"):
        dec = json.JSONDecoder()
        pos, n = 0, len(text)
        while True:
            while pos < n and text[pos] in " \t\r\n\ufeff":
                pos += 1
            if pos >= n:
                break
            try:
                v, pos = dec.raw_decode(text, pos)
            except ValueError as e:
                return list(enumerate(docs)), (len(docs), f"invalid JSON: {e}")
            docs.append(v)
        return list(enumerate(docs)), None
    try:
        for d in yaml.safe_load_all(text):
            docs.append(d)
    except yaml.YAMLError as e:
        return list(enumerate(docs)), (len(docs), f"invalid YAML: {e}")
    return list(enumerate(docs)), None


def judge_paths(paths):
    results, errors = [], []
    nfiles = ndocs = 0
    for source in iter_files(paths):
        nfiles += 1
        docs, perr = load_documents(source)
        ndocs += len(docs)
        for index, doc in docs:
            units = []
            if isinstance(doc, dict) and doc.get("kind") == "List":
                units = [(k, it) for k, it in enumerate(as_list(doc.get("items")))]
            else:
                units = [(None, doc)]
            for item, obj in units:
                try:
                    r = judge_object(obj)
                except InputError as e:
                    err = {"source": source, "index": index, "message": str(e)}
                    if item is not None:
                        err["item"] = item
                    errors.append(err)
                    continue
                if r is None:
                    continue
                head = {"source": source, "index": index}
                if item is not None:
                    head["item"] = item
                head.update(r)
                results.append(head)
        if perr is not None:
            idx, msg = perr
            if idx is not None:
                ndocs += 1
            errors.append({"source": source, "index": idx, "message": msg})
    fs = [f for r in results for f in r["findings"]]
    summary = {
        "files": nfiles,
        "documents": ndocs,
        "workloads": len(results),
        "findings": len(fs),
        "enforce": sum(f["mode"] == "enforce" for f in fs),
        "warn": sum(f["mode"] == "warn" for f in fs),
        "audit": sum(f["mode"] == "audit" for f in fs),
        "errors": len(errors),
    }
    return {"results": results, "summary": summary, "errors": errors}


def exit_code(report):
    if report["errors"]:
        return 2
    if report["summary"]["enforce"]:
        return 1
    return 0


def main(argv):
    if not argv:
        print("usage: judge.py PATH...", file=sys.stderr)
        return 2
    report = judge_paths(argv)
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return exit_code(report)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
