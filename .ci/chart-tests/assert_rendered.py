#!/usr/bin/env python3
"""Structural assertions on a rendered deployguard chart.

usage: assert_rendered.py CHART_DIR RENDERED.yaml NAMESPACE [VALUES.yaml ...]

The expected values are computed the way Helm computes them: the chart's
values.yaml deep-merged with each VALUES file (maps merge, lists and scalars
replace, null deletes). Prints one line per failed assertion; exit 1 if any.
"""
import base64
import datetime
import ipaddress
import sys
import urllib.parse

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

FAILURES = []
CLUSTER_SCOPED = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "ClusterRole", "ClusterRoleBinding")
RBAC_KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
# What the LimitRange watch may do, and all it may do: read LimitRanges (core group).
LIMIT_RANGE_RULES = [{"apiGroups": [""], "resources": ["limitranges"], "verbs": ["get", "list", "watch"]}]
SA_TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# The Deployment's default progressDeadlineSeconds: a rollout not progressing for this
# long is reported failed.
DEFAULT_PROGRESS_DEADLINE = 600


def check(cond, msg):
    if not cond:
        FAILURES.append(msg)
    return cond


def merge(base, over):
    if not isinstance(base, dict) or not isinstance(over, dict):
        return over
    out = dict(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def load_cert(pem):
    return x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)


def ext(cert, cls):
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def verify_signed_by(cert, ca):
    pub = ca.public_key()
    if isinstance(pub, ec.EllipticCurvePublicKey):
        pub.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    elif isinstance(pub, rsa.RSAPublicKey):
        pub.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
    else:
        raise ValueError(f"unexpected CA key type {type(pub)}")


def main():
    chart, rendered, ns = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(f"{chart}/values.yaml") as fh:
        values = yaml.safe_load(fh)
    for path in sys.argv[4:]:
        with open(path) as fh:
            values = merge(values, yaml.safe_load(fh) or {})
    with open(rendered) as fh:
        docs = [d for d in yaml.safe_load_all(fh) if d]

    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
        if d["kind"] not in CLUSTER_SCOPED:
            check(d["metadata"].get("namespace") == ns, f"{d['kind']}/{d['metadata']['name']}: namespace is not {ns}")
        else:
            check("namespace" not in d["metadata"], f"{d['kind']}/{d['metadata']['name']}: cluster-scoped, yet has a namespace")
        labels = d["metadata"].get("labels", {})
        check(labels.get("app.kubernetes.io/name") == "deployguard", f"{d['kind']}: missing app.kubernetes.io/name label")

    def one(kind):
        items = by_kind.get(kind, [])
        check(len(items) == 1, f"expected exactly one {kind}, found {len(items)}")
        return items[0] if items else None

    # ---------------------------------------------------------------- Deployment
    dep = one("Deployment")
    svc = one("Service")
    # the policy ConfigMap (the dashboard's, when rendered, is checked below)
    policy_cms = [d for d in by_kind.get("ConfigMap", []) if "policy.yaml" in d.get("data", {})]
    check(len(policy_cms) == 1, f"expected exactly one ConfigMap with policy.yaml, found {len(policy_cms)}")
    cm = policy_cms[0] if policy_cms else None
    if not (dep and svc and cm):
        return report()
    fullname = dep["metadata"]["name"]
    pod = dep["spec"]["template"]
    spec = pod["spec"]
    check(dep["spec"]["replicas"] == values["replicaCount"], "Deployment replicas != replicaCount")
    sel = dep["spec"]["selector"]["matchLabels"]
    check(all(pod["metadata"]["labels"].get(k) == v for k, v in sel.items()), "pod labels do not match the selector")
    watch = values["limitRanges"]["watch"]
    # The service-account token is mounted iff the LimitRange watch needs it, and said so
    # explicitly on the pod (which overrides the ServiceAccount's setting).
    check(spec.get("automountServiceAccountToken") is watch,
          f"pod automountServiceAccountToken is {spec.get('automountServiceAccountToken')!r}, not {watch} (limitRanges.watch)")
    psc = spec.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, "pod securityContext.runAsNonRoot is not true")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "pod seccompProfile is not RuntimeDefault")
    gp = spec.get("terminationGracePeriodSeconds", 30)
    srv = values["server"]
    check(gp > srv["drainDelaySeconds"] + srv["shutdownGraceSeconds"],
          "terminationGracePeriodSeconds does not cover drain delay + shutdown grace")
    if values.get("priorityClassName"):
        check(spec.get("priorityClassName") == values["priorityClassName"], "priorityClassName not rendered")
    if values["topologySpread"]["enabled"]:
        tsc = spec.get("topologySpreadConstraints", [])
        check(any(t["topologyKey"] == values["topologySpread"]["topologyKey"]
                  and t["labelSelector"]["matchLabels"] == sel for t in tsc),
              "no topologySpreadConstraint over the pod's own labels")

    check(len(spec["containers"]) == 1, "expected one container")
    c = spec["containers"][0]
    sc = c.get("securityContext", {})
    check(sc.get("runAsNonRoot") is True, "container runAsNonRoot is not true")
    check(sc.get("readOnlyRootFilesystem") is True, "container readOnlyRootFilesystem is not true")
    check(sc.get("allowPrivilegeEscalation") is False, "container allowPrivilegeEscalation is not false")
    check(sc.get("privileged") in (None, False), "container is privileged")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], "container does not drop ALL capabilities")
    check(not sc.get("capabilities", {}).get("add"), "container adds capabilities")
    check(sc.get("seccompProfile", {}).get("type", "RuntimeDefault") == "RuntimeDefault", "container seccompProfile")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check(ports.get("https") == 8443 and ports.get("metrics") == 9090, f"container ports are {ports}")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        p = c.get(probe, {}).get("httpGet", {})
        check(p.get("path") == path, f"{probe} path is not {path}")
        check(p.get("scheme") == "HTTPS", f"{probe} scheme is not HTTPS")
        check(p.get("port") in ports or p.get("port") in ports.values(), f"{probe} port {p.get('port')} is not a container port")
    lim = c.get("resources", {}).get("limits", {})
    req = c.get("resources", {}).get("requests", {})
    check("cpu" in lim and "memory" in lim, "container lacks cpu/memory limits")
    check("cpu" in req and "memory" in req, "container lacks cpu/memory requests")
    args = c.get("args", [])
    argmap = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
    check(argmap.get("listen", "").endswith(":8443"), "--listen is not :8443")
    check(argmap.get("metrics-listen", "").endswith(":9090"), "--metrics-listen is not :9090")
    # --limit-ranges from limitRanges.watch, exactly once; the sync timeout only with the watch.
    lr_args = [a for a in args if a == "--limit-ranges" or a.startswith("--limit-ranges=")]
    check(lr_args == [f"--limit-ranges={'watch' if watch else 'off'}"],
          f"--limit-ranges args are {lr_args}, expected --limit-ranges={'watch' if watch else 'off'} once")
    st_args = [a for a in args if a.startswith("--limit-ranges-sync-timeout")]
    if watch:
        timeout = values["limitRanges"]["syncTimeoutSeconds"]
        check(st_args == [f"--limit-ranges-sync-timeout={timeout}"],
              f"--limit-ranges-sync-timeout args are {st_args}, expected ={timeout} once")
        # /readyz is 503 until the first LimitRange list, for at most the sync timeout; the
        # pod is then ready at the next readiness probe. That must come well before the
        # rollout's progress deadline, and liveness must not wait for the watch.
        rp = c.get("readinessProbe", {})
        ready_by = (rp.get("initialDelaySeconds", 0) + timeout + rp.get("periodSeconds", 10) + rp.get("timeoutSeconds", 1))
        deadline = dep["spec"].get("progressDeadlineSeconds", DEFAULT_PROGRESS_DEADLINE)
        check(ready_by < deadline, f"the pod may be ready only after {ready_by} s, beyond progressDeadlineSeconds {deadline}")
        check(c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/readyz", "liveness probe waits for the LimitRange sync")
        check("startupProbe" not in c or c["startupProbe"].get("httpGet", {}).get("path") != "/readyz",
              "startupProbe on /readyz: a slow LimitRange sync would restart the pod")
    else:
        check(not st_args, f"--limit-ranges-sync-timeout passed although limitRanges.watch is off: {st_args}")
    env = {e["name"]: e for e in c.get("env", [])}
    wt = values["runtime"]["workerThreads"]
    if wt is None:
        check("TOKIO_WORKER_THREADS" not in env, "TOKIO_WORKER_THREADS set although runtime.workerThreads is null")
    else:
        check(env.get("TOKIO_WORKER_THREADS", {}).get("value") == str(wt), "TOKIO_WORKER_THREADS != runtime.workerThreads")
    check("GOMAXPROCS" not in env and "GOMEMLIMIT" not in env, "Go env vars on a Rust binary")

    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    if not watch:
        # No token by other means either: no projected serviceAccountToken, nothing at the
        # token's path, no Secret of type service-account-token.
        projected = [v["name"] for v in spec.get("volumes", [])
                     for src in v.get("projected", {}).get("sources", []) if "serviceAccountToken" in src]
        check(not projected, f"service-account token projected into volumes {projected} although limitRanges.watch is off")
        check(not any(mp.rstrip("/").startswith(SA_TOKEN_DIR.rsplit("/", 1)[0]) for mp in mounts),
              f"a volume is mounted under {SA_TOKEN_DIR} although limitRanges.watch is off")
        check(not any(s.get("type") == "kubernetes.io/service-account-token" for s in by_kind.get("Secret", [])),
              "a service-account-token Secret is rendered although limitRanges.watch is off")
    for m in mounts.values():
        check("subPath" not in m and "subPathExpr" not in m, f"volumeMount {m['name']} uses subPath (never updated)")
    vols = {v["name"]: v for v in spec.get("volumes", [])}

    def volume_for(file_path):
        best = None
        for mp, m in mounts.items():
            if file_path.startswith(mp.rstrip("/") + "/") and (best is None or len(mp) > len(best[0])):
                best = (mp, m)
        if not check(best is not None, f"{file_path} is not under any volumeMount"):
            return None, None
        return vols.get(best[1]["name"]), file_path[len(best[0].rstrip("/")) + 1:]

    # the policy file comes from the ConfigMap key policy.yaml
    vol, rel = volume_for(argmap.get("config", "/missing"))
    if vol:
        check(vol.get("configMap", {}).get("name") == cm["metadata"]["name"], "--config is not mounted from the policy ConfigMap")
        check(rel in cm["data"], f"--config file {rel} is not a key of the ConfigMap")
    tls_secret = None
    for flag in ("tls-cert", "tls-key"):
        vol, rel = volume_for(argmap.get(flag, "/missing"))
        if vol:
            s = vol.get("secret", {})
            tls_secret = s.get("secretName")
            items = {i["path"]: i["key"] for i in s.get("items", [])} or None
            check(items is None or rel in items, f"--{flag} file {rel} is not projected from the Secret")
            mode = s.get("defaultMode", 0o644)
            check(mode & 0o007 == 0, f"TLS Secret volume is world-readable (defaultMode {oct(mode)})")

    # ------------------------------------------------------------------ policy
    policy = yaml.safe_load(cm["data"]["policy.yaml"])
    check(ns in policy.get("excludedNamespaces", []), "release namespace missing from policy excludedNamespaces")
    # One list for the policy and every webhook's namespaceSelector: policy.excludedNamespaces
    # (the default list when absent), webhooks.excludedNamespaces and the release namespace.
    policy_excluded = values["policy"].get("excludedNamespaces", ["kube-system", "kube-public", "kube-node-lease"]) or []
    expected_excluded = set(policy_excluded) | set(values["webhooks"]["excludedNamespaces"]) | {ns}
    check(set(policy.get("excludedNamespaces", [])) == expected_excluded,
          f"policy excludedNamespaces {policy.get('excludedNamespaces')} != {sorted(expected_excluded)}")
    check(policy.get("defaultMode") == values["policy"].get("defaultMode"), "policy defaultMode != values")
    expected_policy = dict(values["policy"])
    expected_policy["excludedNamespaces"] = policy.get("excludedNamespaces")
    check(policy == expected_policy, "rendered policy differs from values.policy (beyond the added namespace)")

    # ------------------------------------------------------ Service, PDB, SA
    check(svc["metadata"]["name"] == fullname, "Service name differs from the Deployment name")
    check(svc["spec"]["selector"] == sel, "Service selector != Deployment selector")
    sports = {p["name"]: p for p in svc["spec"]["ports"]}
    check(sports.get("https", {}).get("targetPort") in ("https", 8443), "Service https port does not target https")
    check(sports.get("https", {}).get("port") == values["service"]["port"], "Service port != service.port")
    pdbs = by_kind.get("PodDisruptionBudget", [])
    if values["replicaCount"] > 1 and values["podDisruptionBudget"]["enabled"]:
        if check(len(pdbs) == 1, "no PodDisruptionBudget with replicaCount > 1"):
            check(pdbs[0]["spec"].get("minAvailable") == values["podDisruptionBudget"]["minAvailable"], "PDB minAvailable")
            check(pdbs[0]["spec"]["selector"]["matchLabels"] == sel, "PDB selector != Deployment selector")
    else:
        check(not pdbs, "PodDisruptionBudget rendered for a single replica (it would block node drains)")
    sa_name = values["serviceAccount"]["name"] or (fullname if values["serviceAccount"]["create"] else "default")
    check(spec.get("serviceAccountName") == sa_name, f"pod's serviceAccountName is {spec.get('serviceAccountName')}, not {sa_name}")
    if values["serviceAccount"]["create"]:
        sa = one("ServiceAccount")
        if sa:
            check(sa.get("automountServiceAccountToken") is watch,
                  f"ServiceAccount automountServiceAccountToken is {sa.get('automountServiceAccountToken')!r}, not {watch} (limitRanges.watch)")
            check(spec.get("serviceAccountName") == sa["metadata"]["name"], "pod does not use the chart's ServiceAccount")
    else:
        check(not by_kind.get("ServiceAccount"), "ServiceAccount rendered although serviceAccount.create is false")

    # ---------------------------------------------------------------- RBAC
    # Only with the LimitRange watch: one ClusterRole reading limitranges and nothing else,
    # bound to the pod's ServiceAccount only.
    if watch:
        check(not by_kind.get("Role") and not by_kind.get("RoleBinding"), "namespaced Role/RoleBinding rendered")
        role, binding = one("ClusterRole"), one("ClusterRoleBinding")
        rbac_name = f"{fullname}-limitranges"
        if role:
            check(role["metadata"]["name"] == rbac_name, f"ClusterRole is named {role['metadata']['name']}, not {rbac_name}")
            check(role["metadata"].get("labels") == dep["metadata"].get("labels"), "ClusterRole labels differ from the other objects'")
            check("aggregationRule" not in role, "ClusterRole has an aggregationRule (it would gain other roles' rules)")
            rules = [{k: (sorted(v) if isinstance(v, list) else v) for k, v in r.items()} for r in role.get("rules") or []]
            check(rules == LIMIT_RANGE_RULES,
                  f"ClusterRole rules are {role.get('rules')}, not exactly get, list, watch on core limitranges")
        if binding:
            check(binding["metadata"]["name"] == rbac_name, f"ClusterRoleBinding is named {binding['metadata']['name']}, not {rbac_name}")
            check(binding["metadata"].get("labels") == dep["metadata"].get("labels"), "ClusterRoleBinding labels differ from the other objects'")
            check(binding.get("roleRef") == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": rbac_name},
                  f"ClusterRoleBinding roleRef is {binding.get('roleRef')}, not the chart's ClusterRole")
            check(binding.get("subjects") == [{"kind": "ServiceAccount", "name": sa_name, "namespace": ns}],
                  f"ClusterRoleBinding subjects are {binding.get('subjects')}, not only ServiceAccount {ns}/{sa_name}")
    else:
        check(not any(k in by_kind for k in RBAC_KINDS), "RBAC rendered although limitRanges.watch is off; none is needed")

    # ---------------------------------------------------------------- webhooks
    wh = values["webhooks"]
    mutating_expected = wh["mutating"]["enabled"] and values["policy"].get("goRuntime", {}).get("enabled", True)
    # The ValidatingWebhookConfiguration holds the main entry first (fail-closed, for the requests
    # deployguard may deny), then its fail-open complement for the requests it never denies (the
    # same rules, service and selectors; complementary matchConditions: check_routing.py evaluates
    # them) and, with webhooks.resize.enabled, a fail-open entry for UPDATE of pods/resize.
    resize_expected = bool(wh["validating"]["enabled"] and wh.get("resize", {}).get("enabled", False))
    routing = {"validate.deployguard.io": "deployguard-may-deny", "audit.validate.deployguard.io": "deployguard-never-denies"}
    configs = []  # every rendered entry: (label, configuration, webhook)
    for kind, expected, path in (("ValidatingWebhookConfiguration", wh["validating"]["enabled"], "/validate"),
                                 ("MutatingWebhookConfiguration", mutating_expected, "/mutate")):
        items = by_kind.get(kind, [])
        if not expected:
            check(not items, f"{kind} rendered although disabled")
            continue
        n_entries = (2 + resize_expected) if kind.startswith("Validating") else 1
        if not check(len(items) == 1 and len(items[0]["webhooks"]) == n_entries,
                     f"expected one {kind} with {n_entries} webhook(s), found "
                     f"{[len(i['webhooks']) for i in items]}"):
            continue
        cfg = items[0]
        names = [e["name"] for e in cfg["webhooks"]]
        check(len(set(names)) == len(names), f"{kind}: duplicate webhook names {names}")
        w = cfg["webhooks"][0]
        configs.append((kind, cfg, w))
        entries = {e["name"]: e for e in cfg["webhooks"]}
        for e in cfg["webhooks"]:
            label = kind if e is w else f"{kind} entry {e['name']}"
            check(e["name"].count(".") >= 2, f"{label}: webhook name {e['name']} is not fully qualified")
            check(e.get("matchPolicy") == "Equivalent", f"{label}: matchPolicy is not Equivalent")
        check(not any(r in ("pods/resize", "pods/*", "*/resize", "*/*") for rule in w["rules"] for r in rule["resources"]),
              f"{kind}: the main entry matches pods/resize")
        if kind.startswith("Validating"):
            check(w["name"] == "validate.deployguard.io", f"{kind}: the first entry is {w['name']}, not validate.deployguard.io")
            au = entries.get("audit.validate.deployguard.io")
            if check(au is not None, f"{kind}: no entry audit.validate.deployguard.io"):
                label = f"{kind} entry {au['name']}"
                configs.append((label, cfg, au))
                check(au.get("failurePolicy") == "Ignore", f"{label}: failurePolicy is not Ignore")
                for field in ("rules", "clientConfig", "sideEffects", "admissionReviewVersions", "timeoutSeconds",
                              "matchPolicy", "namespaceSelector", "objectSelector"):
                    check(au.get(field) == w.get(field), f"{label}: {field} differs from the main entry")
                user = wh["matchConditions"] + wh["validating"]["matchConditions"]
                mine = {}
                for e in (w, au):
                    mcs = e.get("matchConditions", [])
                    if check(mcs[:-1] == user and mcs[-1:] and mcs[-1].get("name") == routing[e["name"]],
                             f"{kind} entry {e['name']}: matchConditions are not the user's followed by {routing[e['name']]}"):
                        mine[e["name"]] = mcs[-1]["expression"].strip()
                if len(mine) == 2:
                    check(mine["validate.deployguard.io"] == f"!(\n{mine['audit.validate.deployguard.io']}\n)",
                          f"{kind}: the main entry's routing condition is not the negation of the audit entry's")
        rz = entries.get("resize.validate.deployguard.io")
        check((rz is not None) == (kind.startswith("Validating") and resize_expected),
              f"{kind}: entry resize.validate.deployguard.io {'missing' if rz is None else 'rendered although disabled'}")
        if rz is not None:
            label = f"{kind} entry {rz['name']}"
            configs.append((label, cfg, rz))
            check(rz["name"] != w["name"], f"{label}: same name as the main entry")
            check(rz.get("rules") == [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"],
                                      "resources": ["pods/resize"], "scope": "Namespaced"}],
                  f"{label}: rules are not exactly UPDATE of core/v1 pods/resize (Namespaced): {rz.get('rules')}")
            check(rz.get("failurePolicy") == "Ignore", f"{label}: failurePolicy is not Ignore (an outage would block resizes)")
            check(rz["clientConfig"] == w["clientConfig"], f"{label}: clientConfig (service, caBundle) differs from the main entry")
            for field in ("sideEffects", "admissionReviewVersions", "timeoutSeconds", "matchPolicy",
                          "namespaceSelector", "objectSelector"):
                check(rz.get(field) == w.get(field), f"{label}: {field} differs from the main entry")
            check(rz.get("matchConditions", []) == wh["matchConditions"], f"{label}: matchConditions != webhooks.matchConditions")
        if kind.startswith("Validating") and not resize_expected:
            check(not any("/" in res for e in cfg["webhooks"] for rule in e["rules"] for res in rule["resources"]),
                  f"{kind}: an entry matches a subresource although webhooks.resize is disabled")
        check(w.get("sideEffects") == "None", f"{kind}: sideEffects is not None")
        check(w.get("admissionReviewVersions") == ["v1"], f"{kind}: admissionReviewVersions is not [v1]")
        check(w.get("timeoutSeconds") == wh["timeoutSeconds"] and 1 <= w["timeoutSeconds"] <= 30,
              f"{kind}: timeoutSeconds {w.get('timeoutSeconds')}")
        cc = w["clientConfig"]
        base_url = wh.get("url", "")
        if base_url:
            check("service" not in cc, f"{kind}: clientConfig.service set although webhooks.url is {base_url}")
            check(cc.get("url") == base_url.rstrip("/") + path, f"{kind}: clientConfig.url is {cc.get('url')}")
        else:
            check("url" not in cc, f"{kind}: clientConfig.url set")
            check(cc.get("service") == {"name": fullname, "namespace": ns, "path": path, "port": values["service"]["port"]},
                  f"{kind}: clientConfig.service is {cc.get('service')}")
        exprs = w.get("namespaceSelector", {}).get("matchExpressions", [])
        notin = [e for e in exprs if e["key"] == "kubernetes.io/metadata.name" and e["operator"] == "NotIn"]
        excluded = set(notin[0]["values"]) if notin else set()
        check(excluded == set(policy.get("excludedNamespaces", [])),
              f"{kind}: namespaceSelector excludes {sorted(excluded)}, the policy {sorted(policy.get('excludedNamespaces', []))}")
        check(ns in excluded, f"{kind}: namespaceSelector does not exclude the release namespace {ns}")
        for e in wh["namespaceSelector"]["matchExpressions"]:
            check(e in exprs, f"{kind}: extra namespaceSelector expression {e} missing")
        for k, v in wh["namespaceSelector"]["matchLabels"].items():
            check(w["namespaceSelector"].get("matchLabels", {}).get(k) == v, f"{kind}: extra matchLabels {k} missing")
        check(w.get("objectSelector", {}) == wh["objectSelector"], f"{kind}: objectSelector differs from values")
        if not kind.startswith("Validating"):  # the validating entries' are checked above
            own = wh["mutating"].get("matchConditions", [])
            check(w.get("matchConditions", []) == wh["matchConditions"] + own, f"{kind}: matchConditions differ from values")
        rules = {(g, r): set(rule["operations"]) for rule in w["rules"]
                 for g in rule["apiGroups"] for r in rule["resources"]}
        for rule in w["rules"]:
            check(rule.get("scope") == "Namespaced", f"{kind}: rule scope is not Namespaced")
            check(not any("/" in r or r == "*" for r in rule["resources"]), f"{kind}: rule matches subresources or *")
            check("DELETE" not in rule["operations"] and "*" not in rule["operations"], f"{kind}: rule matches DELETE")
        if kind == "ValidatingWebhookConfiguration":
            check(w.get("failurePolicy") == wh["validating"]["failurePolicy"], f"{kind}: failurePolicy")
            for g, r in (("", "pods"), ("", "replicationcontrollers"), ("apps", "deployments"), ("apps", "statefulsets"),
                         ("apps", "daemonsets"), ("apps", "replicasets"), ("batch", "jobs"), ("batch", "cronjobs")):
                check(rules.get((g, r)) == {"CREATE", "UPDATE"}, f"{kind}: {g or 'core'}/{r} not matched on CREATE+UPDATE")
        else:
            check(w.get("failurePolicy") == wh["mutating"]["failurePolicy"], f"{kind}: failurePolicy")
            check(w.get("reinvocationPolicy") == wh["mutating"]["reinvocationPolicy"], f"{kind}: reinvocationPolicy")
            check(rules.get(("", "pods")) == {"CREATE"}, f"{kind}: pods not matched on CREATE only")
            templates = values["policy"].get("goRuntime", {}).get("mutateTemplates", False)
            check((("apps", "deployments") in rules) == bool(templates), f"{kind}: workload templates matched iff mutateTemplates")

    # ------------------------------------------------------------ certificates
    mode = values["certs"]["mode"]
    bundles = [w["clientConfig"].get("caBundle") for _, _, w in configs]
    svc_names = {fullname, f"{fullname}.{ns}.svc", f"{fullname}.{ns}.svc.cluster.local"}
    if mode == "helm":
        secrets = [s for s in by_kind.get("Secret", []) if s["metadata"]["name"] == tls_secret]
        if check(len(secrets) == 1, f"helm mode: TLS Secret {tls_secret} not rendered"):
            data = {k: base64.b64decode(v).decode() for k, v in secrets[0]["data"].items()}
            check(secrets[0].get("type") == "kubernetes.io/tls", "TLS Secret type is not kubernetes.io/tls")
            for b in bundles:
                check(bool(b), "helm mode: empty caBundle")
            check(len(set(bundles)) == 1, "helm mode: the webhooks carry different caBundles")
            if bundles and bundles[0]:
                ca_pem = base64.b64decode(bundles[0]).decode()
                check(ca_pem == data.get("ca.crt"), "caBundle != ca.crt of the TLS Secret")
                ca = load_cert(ca_pem)
                leaf = load_cert(data["tls.crt"])
                bc = ext(ca, x509.BasicConstraints)
                check(bc is not None and bc.ca, "caBundle certificate is not a CA")
                check(leaf.issuer == ca.subject, "serving certificate's issuer is not the caBundle CA")
                try:
                    verify_signed_by(leaf, ca)
                except Exception as e:  # noqa: BLE001
                    check(False, f"serving certificate is not signed by the caBundle CA: {e}")
                lbc = ext(leaf, x509.BasicConstraints)
                check(lbc is None or not lbc.ca, "serving certificate is a CA")
                san = ext(leaf, x509.SubjectAlternativeName)
                sans = set(san.get_values_for_type(x509.DNSName)) if san else set()
                check(svc_names <= sans, f"serving certificate SANs {sans} lack {svc_names - sans}")
                url_host = urllib.parse.urlsplit(values["webhooks"].get("url", "")).hostname
                if url_host:
                    try:
                        ip_sans = {str(a) for a in san.get_values_for_type(x509.IPAddress)} if san else set()
                        check(str(ipaddress.ip_address(url_host)) in ip_sans,
                              f"serving certificate IP SANs {ip_sans} lack webhooks.url's {url_host}")
                    except ValueError:
                        check(url_host in sans, f"serving certificate SANs {sans} lack webhooks.url's host {url_host}")
                eku = ext(leaf, x509.ExtendedKeyUsage)
                check(eku is not None and ExtendedKeyUsageOID.SERVER_AUTH in eku, "serving certificate lacks serverAuth")
                now = datetime.datetime.now(datetime.timezone.utc)
                for name, cert in (("CA", ca), ("serving", leaf)):
                    check(cert.not_valid_before_utc <= now + datetime.timedelta(minutes=5), f"{name} certificate not yet valid")
                    days = (cert.not_valid_after_utc - now).days
                    check(days >= values["certs"]["helm"]["validityDays"] - 2, f"{name} certificate valid only {days} days")
                key = serialization.load_pem_private_key(data["tls.key"].encode(), password=None)
                pub = lambda k: k.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
                check(pub(key.public_key()) == pub(leaf.public_key()), "tls.key does not match tls.crt")
                check("PRIVATE KEY" not in data.get("ca.crt", ""), "CA private key stored in the Secret")
    elif mode == "certManager":
        for kind, cfg, w in configs:
            check(not w["clientConfig"].get("caBundle"), f"{kind}: caBundle set in certManager mode")
        certs = {c["metadata"]["name"]: c for c in by_kind.get("Certificate", [])}
        serving = [c for c in certs.values() if c["spec"].get("secretName") == tls_secret]
        if check(len(serving) == 1, f"certManager mode: no Certificate writes Secret {tls_secret}"):
            cs = serving[0]
            for kind, cfg, w in configs:
                check(cfg["metadata"].get("annotations", {}).get("cert-manager.io/inject-ca-from") == f"{ns}/{cs['metadata']['name']}",
                      f"{kind}: inject-ca-from does not name the serving Certificate")
            check(svc_names <= set(cs["spec"].get("dnsNames", [])), "Certificate dnsNames lack the service names")
            check(not cs["spec"].get("isCA"), "serving Certificate is a CA")
            check("server auth" in cs["spec"].get("usages", ["server auth"]), "serving Certificate lacks server auth")
            ref = cs["spec"]["issuerRef"]
            if values["certs"]["certManager"]["issuerRef"]:
                check(ref["name"] == values["certs"]["certManager"]["issuerRef"]["name"], "issuerRef not used")
                check(not by_kind.get("Issuer"), "chart created Issuers although issuerRef is given")
            else:
                issuers = {i["metadata"]["name"]: i for i in by_kind.get("Issuer", [])}
                ca_issuer = issuers.get(ref["name"])
                if check(ca_issuer is not None and ref.get("kind", "Issuer") == "Issuer", "serving Certificate's Issuer not rendered"):
                    ca_secret = ca_issuer["spec"].get("ca", {}).get("secretName")
                    ca_cert = [c for c in certs.values() if c["spec"].get("secretName") == ca_secret]
                    check(len(ca_cert) == 1 and ca_cert[0]["spec"].get("isCA") is True, "CA Issuer's secret is not a CA Certificate")
                    if ca_cert:
                        root = issuers.get(ca_cert[0]["spec"]["issuerRef"]["name"], {})
                        check("selfSigned" in root.get("spec", {}), "CA Certificate is not issued by a selfSigned Issuer")
        check(not [s for s in by_kind.get("Secret", []) if s["metadata"]["name"] == tls_secret], "certManager mode renders the TLS Secret itself")
    elif mode == "secret":
        check(tls_secret == values["certs"]["secret"]["name"], "secret mode: pod does not mount certs.secret.name")
        for kind, cfg, w in configs:
            check(w["clientConfig"].get("caBundle", "").strip() == "".join(values["certs"]["secret"]["caBundle"].split()),
                  f"{kind}: caBundle != certs.secret.caBundle")
        check(not by_kind.get("Secret"), "secret mode renders a Secret")
        check(not by_kind.get("Certificate"), "secret mode renders a Certificate")

    # ------------------------------------------------------------- optional
    if values["networkPolicy"]["enabled"]:
        np_ = one("NetworkPolicy")
        if np_:
            check(np_["spec"]["podSelector"]["matchLabels"] == sel, "NetworkPolicy podSelector != pods")
            check(set(np_["spec"]["policyTypes"]) == {"Ingress", "Egress"}, "NetworkPolicy policyTypes")
            ports_allowed = {p["port"] for r in np_["spec"]["ingress"] for p in r.get("ports", [])}
            check(ports_allowed == {"https", "metrics"}, f"NetworkPolicy allows ports {ports_allowed}")
            check(all(r.get("ports") for r in np_["spec"]["ingress"]), "NetworkPolicy ingress rule without ports")
            # Egress: the API server rules (one per networkPolicy.apiServer entry, TCP to that
            # block and port) only with the watch, then networkPolicy.egress; nothing else.
            npv = values["networkPolicy"]
            api_rules = [{"to": [{"ipBlock": {"cidr": e["cidr"]}}], "ports": [{"port": e["port"], "protocol": "TCP"}]}
                         for e in (npv.get("apiServer") or [])] if watch else []
            expected_egress = api_rules + (npv.get("egress") or [])
            check(np_["spec"].get("egress") == expected_egress,
                  f"NetworkPolicy egress is {np_['spec'].get('egress')}, expected {expected_egress}")
            if watch:
                check(bool(expected_egress), "NetworkPolicy allows no egress, so the LimitRange watch cannot reach the API server")
    else:
        check(not by_kind.get("NetworkPolicy"), "NetworkPolicy rendered although disabled")
    if values["metrics"]["serviceMonitor"]["enabled"]:
        sm = one("ServiceMonitor")
        if sm:
            check(sm["spec"]["selector"]["matchLabels"] == sel, "ServiceMonitor selector")
            check(sm["spec"]["endpoints"][0]["port"] == "metrics", "ServiceMonitor port")
            check("metrics" in sports, "Service has no metrics port")
    else:
        check(not by_kind.get("ServiceMonitor"), "ServiceMonitor rendered although disabled")
    if values["metrics"]["prometheusRule"]["enabled"]:
        pr = one("PrometheusRule")
        if pr:
            alerts = {r.get("alert") for g in pr["spec"]["groups"] for r in g["rules"]}
            check({"DeployguardDown", "DeployguardCertificateExpiresSoon", "DeployguardWebhookCallsFailing"} <= alerts,
                  f"PrometheusRule alerts: {sorted(alerts)}")
    else:
        check(not by_kind.get("PrometheusRule"), "PrometheusRule rendered although disabled")
    dashboards = [d for d in by_kind.get("ConfigMap", []) if d["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    check(len(dashboards) == (1 if values["metrics"]["dashboard"]["enabled"] else 0),
          f"{len(dashboards)} grafana_dashboard ConfigMaps rendered, metrics.dashboard.enabled is {values['metrics']['dashboard']['enabled']}")

    return report()


def report():
    for f in FAILURES:
        print(f"    assertion failed: {f}")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
