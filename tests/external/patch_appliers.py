#!/usr/bin/env python3
"""Every patch deployguard computes from the corpus must apply under the API server's own
JSON-patch library (evanphx/json-patch, as kube-apiserver's mutating dispatcher uses it)
and under RFC-strict Python `jsonpatch`; both must give the same object as deployguard's
own `mutate`; objects that validated before still validate (`kubernetes-validate
--strict`); and a second review of the patched object patches nothing.

usage: patch_appliers.py --bin DEPLOYGUARD --apiserver-patch JP CORPUS_DIR [MORE_DIRS...]
"""
import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile

import jsonpatch
import kubernetes_validate
import yaml

KINDS = {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob"}
# The oldest and the newest Kubernetes the chart supports.
VERSIONS = ["1.27.0", "1.34.0"]
POLICY = "goRuntime:\n  mutateTemplates: true\n"


def workloads(path):
    """Workload objects of a manifest file (List items included)."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    try:
        docs = [json.loads(text)] if path.endswith(".json") else list(yaml.safe_load_all(text))
    except Exception:  # parse errors are the CLI tests' business
        return
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        if doc.get("kind") == "AdmissionReview":
            obj = (doc.get("request") or {}).get("object")
            if isinstance(obj, dict):
                yield obj
            continue
        items = doc.get("items") if doc.get("kind") == "List" else [doc]
        for item in items or []:
            if isinstance(item, dict) and isinstance(item.get("kind"), str) and item["kind"] in KINDS:
                yield item


def review(binary, policy, obj):
    request = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "appliers",
            "kind": {"group": "", "version": "v1", "kind": obj["kind"]},
            "resource": {"group": "", "version": "v1", "resource": obj["kind"].lower() + "s"},
            "namespace": (obj.get("metadata") or {}).get("namespace") or "default",
            "operation": "CREATE",
            "userInfo": {"username": "appliers"},
            "object": obj,
        },
    }
    out = subprocess.run([binary, "review", "--config", policy, "--endpoint", "mutate", "-"],
                         input=json.dumps(request).encode(), capture_output=True, check=False)
    if out.returncode != 0:
        return None, out.stderr.decode()
    response = json.loads(out.stdout)["response"]
    patch = response.get("patch")
    return (json.loads(base64.b64decode(patch)) if patch else []), None


def mutate_cli(binary, obj, workdir):
    path = os.path.join(workdir, "object.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh)
    out = subprocess.run([binary, "mutate", "--output", "json", path], capture_output=True, check=False)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout)[0]


def validates(obj, version):
    try:
        kubernetes_validate.validate(obj, version, strict=True)
        return True
    except Exception:
        return False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--apiserver-patch", required=True)
    parser.add_argument("dirs", nargs="+")
    args = parser.parse_args()
    passed, failures, patched_count, validated = 0, [], 0, 0
    with tempfile.TemporaryDirectory() as workdir:
        policy = os.path.join(workdir, "policy.yaml")
        with open(policy, "w", encoding="utf-8") as fh:
            fh.write(POLICY)
        files = sorted(os.path.join(d, f) for d in args.dirs for f in os.listdir(d)
                       if f.endswith((".yaml", ".yml", ".json")))
        for path in files:
            for number, obj in enumerate(workloads(path)):
                where = f"{os.path.basename(path)} object {number} ({obj.get('kind')})"
                ops, error = review(args.bin, policy, obj)
                if ops is None:
                    # Unreadable objects are answered with an error by the CLI tests; not here.
                    continue
                if not ops:
                    passed += 1
                    continue
                patched_count += 1
                problems = []
                try:
                    strict = jsonpatch.apply_patch(obj, ops)
                except Exception as exc:  # noqa: BLE001 - any failure is a finding
                    problems.append(f"python jsonpatch: {exc}")
                    strict = None
                doc_path = os.path.join(workdir, "doc.json")
                patch_path = os.path.join(workdir, "patch.json")
                with open(doc_path, "w", encoding="utf-8") as fh:
                    json.dump(obj, fh)
                with open(patch_path, "w", encoding="utf-8") as fh:
                    json.dump(ops, fh)
                go = subprocess.run([args.apiserver_patch, doc_path, patch_path], capture_output=True, check=False)
                if go.returncode != 0:
                    problems.append(f"apiserver json-patch exit {go.returncode}: {go.stderr.decode().strip()}")
                elif strict is not None and json.loads(go.stdout) != strict:
                    problems.append("apiserver and RFC appliers disagree")
                if strict is not None:
                    if mutate_cli(args.bin, obj, workdir) != strict:
                        problems.append("`deployguard mutate` differs from the patched object")
                    again, _ = review(args.bin, policy, strict)
                    if again:
                        problems.append(f"second review patches again: {again}")
                    for version in VERSIONS:
                        if validates(obj, version):
                            validated += 1
                            if not validates(strict, version):
                                problems.append(f"patched object no longer validates on {version}")
                if problems:
                    failures.append((where, problems))
                else:
                    passed += 1
    for where, problems in failures:
        print(f"FAIL {where}")
        for problem in problems:
            print(f"  - {problem}")
    print(f"patched objects: {patched_count}; schema checks of patched objects: {validated}")
    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
