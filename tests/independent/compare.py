#!/usr/bin/env python3
"""Differential test: run `deployguard check --output json` and judge.py on the
same paths and print every difference.

Usage: compare.py [--bin PATH] [--verbose] [--namespace NS] PATH...
One check per result/error document (keyed by source, index, item), plus one
for the exit code and one for the summary counts. Ends with `N passed, M failed`;
exits 1 on any difference.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import judge  # noqa: E402

DEFAULT_BIN = os.path.normpath(os.path.join(HERE, "..", "..", "target", "debug", "deployguard"))


def key(d):
    return (os.path.normpath(d["source"]), d.get("index"), d.get("item"))


def fmt_key(k):
    src, idx, item = k
    s = f"{os.path.basename(src)} #{idx}"
    if item is not None:
        s += f" item {item}"
    return s


def triples(r):
    return [(f["rule"], f["mode"], f["container"]) for f in r["findings"]]


def compare_result(a, b):
    """a = CLI, b = judge. -> list of difference lines."""
    diffs = []
    for field in ("apiVersion", "kind", "namespace", "name"):
        if a.get(field) != b.get(field):
            diffs.append(f"{field}: cli={a.get(field)!r} judge={b.get(field)!r}")
    ta, tb = triples(a), triples(b)
    ca, cb = Counter(ta), Counter(tb)
    if ca != cb:
        for t in sorted((ca - cb).elements()):
            diffs.append(f"only cli:   {t[0]} {t[1]} container={t[2]!r}")
        for t in sorted((cb - ca).elements()):
            diffs.append(f"only judge: {t[0]} {t[1]} container={t[2]!r}")
    elif ta != tb:
        diffs.append("order differs:")
        diffs.append("  cli:   " + ", ".join(f"{r}/{m}/{c}" for r, m, c in ta))
        diffs.append("  judge: " + ", ".join(f"{r}/{m}/{c}" for r, m, c in tb))
    return diffs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=DEFAULT_BIN)
    ap.add_argument("--verbose", "-v", action="store_true", help="also print CLI messages of differing results")
    ap.add_argument("--namespace", default=None,
                    help="passed to both sides (the namespace of documents that name none)")
    ap.add_argument("--as", dest="requester", default=None,
                    help="passed to both sides (the requesting user: controller-owned trust)")
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args()

    ns_args = ["--namespace", args.namespace] if args.namespace is not None else []
    if args.requester is not None:
        ns_args += ["--as", args.requester]
    proc = subprocess.run([args.bin, "check", "--output", "json", *ns_args, *args.paths],
                          capture_output=True, text=True, timeout=120)
    try:
        cli = json.loads(proc.stdout)
    except ValueError:
        print(f"CLI did not print JSON (exit {proc.returncode}):\n{proc.stdout[:2000]}\n{proc.stderr[:2000]}")
        print("0 passed, 1 failed")
        return 1
    mine = judge.judge_paths(args.paths, args.namespace if args.namespace is not None else "default",
                             args.requester)

    passed = failed = 0
    groups: dict[str, list[str]] = {}

    def fail(group, text):
        groups.setdefault(group, []).append(text)

    cres = {key(r): r for r in cli["results"]}
    jres = {key(r): r for r in mine["results"]}
    cerr = {key(e): e for e in cli["errors"]}
    jerr = {key(e): e for e in mine["errors"]}
    if len(cres) != len(cli["results"]):
        fail("CLI output", "duplicate (source, index, item) keys in CLI results")

    for k in sorted(set(cres) | set(jres) | set(cerr) | set(jerr), key=lambda k: (k[0], k[1] if k[1] is not None else -1, k[2] if k[2] is not None else -1)):
        where = fmt_key(k)
        a, b = cres.get(k), jres.get(k)
        ea, eb = cerr.get(k), jerr.get(k)
        lines = []
        group = None
        if (ea is None) != (eb is None):
            group = "error vs not error"
            if ea:
                lines.append(f"cli error: {ea['message'].splitlines()[0]}")
            else:
                lines.append(f"judge error: {eb['message']}")
        if (a is None) != (b is None):
            group = group or "result present on one side only"
            lines.append("cli has a result" if a else "judge has a result")
            if a and a["findings"] is not None:
                lines.append("  cli: " + ", ".join(f"{r}/{m}/{c}" for r, m, c in triples(a)))
            if b:
                lines.append("  judge: " + ", ".join(f"{r}/{m}/{c}" for r, m, c in triples(b)))
        elif a is not None:
            d = compare_result(a, b)
            if d:
                group = group or "findings differ"
                lines += d
                if args.verbose:
                    lines += [f"  cli msg [{f['rule']}/{f['container']}]: {f['message']}" for f in a["findings"]]
        if lines:
            failed += 1
            fail(group, where + " (" + k[0] + ")\n    " + "\n    ".join(lines))
        else:
            passed += 1

    # summary counts that follow from results/errors
    sd = []
    for f in ("workloads", "findings", "enforce", "warn", "audit", "errors", "files"):
        if cli["summary"].get(f) != mine["summary"].get(f):
            sd.append(f"{f}: cli={cli['summary'].get(f)} judge={mine['summary'].get(f)}")
    if sd:
        failed += 1
        fail("summary", "\n    ".join(sd))
    else:
        passed += 1
    if cli["summary"].get("documents") != mine["summary"].get("documents"):
        print(f"note: summary.documents cli={cli['summary'].get('documents')} judge={mine['summary'].get('documents')} (not counted)")

    want = judge.exit_code(mine)
    if proc.returncode != want:
        failed += 1
        fail("exit code", f"cli={proc.returncode} judge={want}")
    else:
        passed += 1

    for g, items in groups.items():
        print(f"== {g} ({len(items)})")
        for it in items:
            print("  " + it)
        print()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
