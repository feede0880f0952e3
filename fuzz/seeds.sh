#!/usr/bin/env bash
# Builds the seed corpora fuzz/corpus/<target>/ from the real corpus (../shared/corpus,
# or $CORPUS_DIR). Idempotent: re-running refreshes the seeds and keeps whatever the
# fuzzer added. The AdmissionReview seeds need python3 (PyYAML, if importable, also turns
# every YAML workload document into a CREATE review).
set -euo pipefail
FUZZ="$(cd "$(dirname "$0")" && pwd)"
SRC="${CORPUS_DIR:-$FUZZ/../../shared/corpus}"
[ -d "$SRC" ] || SRC=/work/shared/corpus
if [ ! -d "$SRC" ]; then
  echo "seeds: no corpus at $SRC; the fuzzers start from their built-in seeds only" >&2
fi
OUT="$FUZZ/corpus"
mkdir -p "$OUT"/{admission_review,quantity,gomemlimit,documents,mutate_document}

# Manifests as they are, for the loader and the offline mutation.
if [ -d "$SRC" ]; then
  for f in "$SRC"/*.yaml "$SRC"/*.yml "$SRC"/*.json; do
    [ -f "$f" ] || continue
    cp "$f" "$OUT/documents/"
    cp "$f" "$OUT/mutate_document/"
  done
fi

# AdmissionReviews: JSON files copied, bare AdmissionRequests wrapped, YAML workloads
# wrapped as CREATE requests.
if command -v python3 >/dev/null && [ -d "$SRC" ]; then
  python3 - "$SRC" "$OUT/admission_review" <<'PY'
import json, os, sys
src, out = sys.argv[1], sys.argv[2]
try:
    import yaml
except ImportError:
    yaml = None
WORKLOADS = {"Pod": "pods", "Deployment": "deployments", "StatefulSet": "statefulsets",
             "DaemonSet": "daemonsets", "ReplicaSet": "replicasets",
             "ReplicationController": "replicationcontrollers", "Job": "jobs", "CronJob": "cronjobs"}

def review(request, api="admission.k8s.io/v1"):
    return {"apiVersion": api, "kind": "AdmissionReview", "request": request}

def write(name, value):
    with open(os.path.join(out, name), "w") as f:
        json.dump(value, f)

def request_for(obj, n, operation="CREATE"):
    kind = obj.get("kind")
    group, _, version = (obj.get("apiVersion") or "v1").rpartition("/")
    gvk = {"group": group, "version": version, "kind": kind}
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    request = {"uid": f"seed-{n}", "kind": gvk, "requestKind": gvk,
               "resource": {"group": group, "version": version, "resource": WORKLOADS[kind]},
               "name": meta.get("name", ""), "namespace": meta.get("namespace", "default"),
               "operation": operation, "userInfo": {"username": "fuzz"}, "object": obj}
    if operation == "UPDATE":
        request["oldObject"] = obj
    return request

count = 0
for name in sorted(os.listdir(src)):
    path = os.path.join(src, name)
    stem = os.path.splitext(name)[0]
    if name.endswith(".json"):
        with open(path, "rb") as f:
            raw = f.read()
        with open(os.path.join(out, name), "wb") as f:
            f.write(raw)
        count += 1
        try:
            body = json.loads(raw)
        except ValueError:
            continue
        if isinstance(body, dict) and body.get("kind") != "AdmissionReview" \
                and "uid" in body and "operation" in body:
            write(stem + ".review.json", review(body))
            count += 1
        elif isinstance(body, dict) and body.get("kind") in WORKLOADS:
            write(stem + ".create.json", review(request_for(body, count)))
            count += 1
    elif yaml is not None and name.endswith((".yaml", ".yml")):
        try:
            with open(path) as f:
                documents = list(yaml.safe_load_all(f))
        except Exception:
            continue
        objects = []
        for doc in documents:
            if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
                objects.extend(doc["items"])
            else:
                objects.append(doc)
        for k, obj in enumerate(objects):
            if not (isinstance(obj, dict) and obj.get("kind") in WORKLOADS):
                continue
            try:
                json.dumps(obj)
            except (TypeError, ValueError):
                continue  # dates and other YAML-only scalars
            operation = "UPDATE" if k % 4 == 3 else "CREATE"
            api = "admission.k8s.io/v1beta1" if k % 5 == 4 else "admission.k8s.io/v1"
            write(f"{stem}.{k}.{operation.lower()}.json", review(request_for(obj, count, operation), api))
            count += 1
if yaml is None:
    print("seeds: admission_review: no PyYAML, YAML workloads not wrapped")
PY
fi

# Quantities: the grammar's corners plus every cpu/memory value in the corpus.
{
  printf '%s\n' 0 1 -0 +1 500m 1.5 .5 5. 2e3 2E-3 0.0001 100u 250000000n 128Mi 0.5Gi 1.5Gi 1G \
    256M 129e6 128974848 1k 1Ki 1Ei 1E 1E3 1000m 1500m 1e-1000 1e1000 1n 1Pi 1P 1T 1Ti \
    340282366920938463463374607431768211455 99999999999999999999999999999999999999 \
    0.000000000000000000000000000000000000000000000000000000000001 1e+3 1e-3 12Mb 1.5.5
  if [ -d "$SRC" ]; then
    grep -ohE '(cpu|memory)"?: *"?[-+0-9.eEa-zA-Z]+' "$SRC"/* 2>/dev/null \
      | sed -E 's/^[a-z]+"?: *"?//' || true
  fi
} | sort -u | while IFS= read -r q; do
  printf '%s' "$q" > "$OUT/quantity/q-$(printf '%s' "$q" | cksum | cut -d' ' -f1)"
done

# GOMEMLIMIT spellings Go accepts and rejects, plus any in the corpus.
{
  printf '%s\n' off Off 0 1024 1024B 1KiB 900MiB 2GiB 1TiB 007MiB 9223372036854775807 \
    9223372036854775808 8388607TiB 8388608TiB 1Gi 768Mi 1GB 1PiB 1iB B MiB -1 +1 1.5GiB \
    ' 1' 1_000 99999999999999999999
  if [ -d "$SRC" ]; then
    grep -ohA1 'GOMEMLIMIT' "$SRC"/* 2>/dev/null | grep -oE 'value"?: *"?[^"]+' \
      | sed -E 's/^value"?: *"?//' || true
  fi
} | sort -u | while IFS= read -r v; do
  printf '%s' "$v" > "$OUT/gomemlimit/m-$(printf '%s' "$v" | cksum | cut -d' ' -f1)"
done
: > "$OUT/gomemlimit/empty"

for target in admission_review quantity gomemlimit documents mutate_document; do
  echo "seeds: $target: $(find "$OUT/$target" -type f | wc -l) files in corpus/$target"
done
