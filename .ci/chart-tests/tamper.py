#!/usr/bin/env python3
"""Writes broken variants of a rendered chart, to prove the checks catch them.

usage: tamper.py RENDERED.yaml OUT_DIR FIXTURE_CA.pem [VARIANT=VARIANT_RENDERED.yaml ...]

RENDERED.yaml is the render with the chart's defaults; each VARIANT (the name of a values
file in .ci/chart-tests/values/) names another render, which the tamperings listed under
that variant start from. Writes OUT_DIR/NAME.yaml for each tampering and prints, one a
line, NAME for a tampered default render and "NAME VARIANT" for a tampered variant (to be
checked with that variant's values).
"""
import base64
import copy
import os
import sys

import yaml


def find(docs, kind):
    return next(d for d in docs if d["kind"] == kind)


def container(docs):
    return find(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def webhook(docs, kind):
    return find(docs, kind)["webhooks"][0]


def drop_ns(docs, ns):
    for e in webhook(docs, "ValidatingWebhookConfiguration")["namespaceSelector"]["matchExpressions"]:
        if e["key"] == "kubernetes.io/metadata.name":
            e["values"].remove(ns)


def drop_kube_system_mutating(docs):
    for e in webhook(docs, "MutatingWebhookConfiguration")["namespaceSelector"]["matchExpressions"]:
        if e["key"] == "kubernetes.io/metadata.name":
            e["values"].remove("kube-system")


def entry(docs, name):
    return next(w for w in find(docs, "ValidatingWebhookConfiguration")["webhooks"] if w["name"] == name)


def resize_entry(docs):
    return entry(docs, "resize.validate.deployguard.io")


def audit_entry(docs):
    return entry(docs, "audit.validate.deployguard.io")


def drop_entry(docs, name):
    hooks = find(docs, "ValidatingWebhookConfiguration")["webhooks"]
    hooks.remove(entry(docs, name))


def edit_routing(docs, old, new, entries=("validate.deployguard.io", "audit.validate.deployguard.io")):
    """Replaces text in the routing condition (the last matchCondition) of the given entries."""
    for name in entries:
        mc = entry(docs, name)["matchConditions"][-1]
        assert old in mc["expression"], (name, old)
        mc["expression"] = mc["expression"].replace(old, new)


def drop_routing(docs, name):
    entry(docs, name)["matchConditions"].pop()


def drop_ns_validating(docs, name):
    for w in find(docs, "ValidatingWebhookConfiguration")["webhooks"]:
        for e in w["namespaceSelector"]["matchExpressions"]:
            if e["key"] == "kubernetes.io/metadata.name":
                e["values"].remove(name)


def policy_without_ns(docs, ns):
    cm = find(docs, "ConfigMap")
    policy = yaml.safe_load(cm["data"]["policy.yaml"])
    policy["excludedNamespaces"].remove(ns)
    cm["data"]["policy.yaml"] = yaml.safe_dump(policy)


def pod_spec(docs):
    return find(docs, "Deployment")["spec"]["template"]["spec"]


def cluster_role(docs):
    return find(docs, "ClusterRole")


def role_rule(docs):
    return cluster_role(docs)["rules"][0]


def binding(docs):
    return find(docs, "ClusterRoleBinding")


def drop_kinds(docs, *kinds):
    for d in [d for d in docs if d["kind"] in kinds]:
        docs.remove(d)


def set_arg(docs, prefix, new):
    """Replaces the container arg starting with prefix by new (drops it if new is None)."""
    args = container(docs)["args"]
    i = next(i for i, a in enumerate(args) if a.startswith(prefix))
    if new is None:
        args.pop(i)
    else:
        args[i] = new


def project_token(docs):
    spec = pod_spec(docs)
    spec["volumes"].append({"name": "kube-api-access", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}})
    container(docs)["volumeMounts"].append(
        {"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": True})


def egress(docs):
    return find(docs, "NetworkPolicy")["spec"]["egress"]


API_RULE = {"to": [{"ipBlock": {"cidr": "10.96.0.1/32"}}], "ports": [{"port": 443, "protocol": "TCP"}]}
DNS_RULE = {"to": [{"namespaceSelector": {}}], "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}


def variant_tamperings(base):
    """Tamperings of other renders, by values file: {variant: {name: fn}}."""
    rbac = [d for d in base if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    return {
        # --limit-ranges off: no token, no RBAC, no egress
        "limitranges-off": {
            "token-mounted-with-watch-off": lambda d: pod_spec(d).update(automountServiceAccountToken=True),
            "token-mount-left-to-service-account": lambda d: pod_spec(d).pop("automountServiceAccountToken"),
            "service-account-token-with-watch-off": lambda d: find(d, "ServiceAccount").update(automountServiceAccountToken=True),
            "token-projected-with-watch-off": project_token,
            "rbac-with-watch-off": lambda d: d.extend(copy.deepcopy(rbac)),
            "watch-arg-with-watch-off": lambda d: set_arg(d, "--limit-ranges=", "--limit-ranges=watch"),
            "off-arg-missing": lambda d: set_arg(d, "--limit-ranges=", None),
        },
        "limitranges-off-networkpolicy": {
            "egress-to-api-server-with-watch-off": lambda d: egress(d).append(copy.deepcopy(API_RULE)),
            "egress-to-dns-with-watch-off": lambda d: egress(d).append(copy.deepcopy(DNS_RULE)),
        },
        # the watch with the NetworkPolicy and networkPolicy.apiServer
        "full": {
            "egress-api-server-any-port": lambda d: egress(d)[0].pop("ports"),
            "egress-api-server-any-address": lambda d: egress(d)[0].pop("to"),
            "egress-api-server-rule-dropped": lambda d: egress(d).pop(0),
            "egress-allow-all": lambda d: egress(d).append({}),
            "egress-dns-added": lambda d: egress(d).append(copy.deepcopy(DNS_RULE)),
            "sync-timeout-not-from-values": lambda d: set_arg(d, "--limit-ranges-sync-timeout=", "--limit-ranges-sync-timeout=10"),
        },
        "serviceaccount-existing": {
            "rbac-bound-to-default-service-account": lambda d: binding(d)["subjects"][0].update(name="default"),
        },
    }


def main():
    rendered, out, ca_file = sys.argv[1:4]
    with open(rendered) as fh:
        base = [d for d in yaml.safe_load_all(fh) if d]
    variants = {}
    for arg in sys.argv[4:]:
        name, path = arg.split("=", 1)
        with open(path) as fh:
            variants[name] = [d for d in yaml.safe_load_all(fh) if d]
    ns = find(base, "Deployment")["metadata"]["namespace"]
    other_ca = base64.b64encode(open(ca_file, "rb").read()).decode()
    secret_data = lambda d: find(d, "Secret")["data"]  # noqa: E731

    tamperings = {
        "release-namespace-not-excluded": lambda d: drop_ns(d, ns),
        "kube-system-not-excluded": drop_kube_system_mutating,
        "side-effects-unknown": lambda d: webhook(d, "ValidatingWebhookConfiguration").update(sideEffects="Unknown"),
        "review-versions-v1beta1": lambda d: webhook(d, "MutatingWebhookConfiguration").update(admissionReviewVersions=["v1", "v1beta1"]),
        "mutating-fails-closed": lambda d: webhook(d, "MutatingWebhookConfiguration").update(failurePolicy="Fail"),
        "timeout-too-long": lambda d: webhook(d, "ValidatingWebhookConfiguration").update(timeoutSeconds=30),
        "cronjobs-not-validated": lambda d: webhook(d, "ValidatingWebhookConfiguration")["rules"][-1].update(resources=["jobs"]),
        "other-ca-in-one-webhook": lambda d: webhook(d, "ValidatingWebhookConfiguration")["clientConfig"].update(caBundle=other_ca),
        "empty-ca-bundle": lambda d: [webhook(d, k)["clientConfig"].pop("caBundle") for k in
                                      ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")],
        "serving-cert-is-the-ca": lambda d: secret_data(d).update({"tls.crt": secret_data(d)["ca.crt"]}),
        "policy-mounted-with-subpath": lambda d: container(d)["volumeMounts"][1].update(subPath="policy.yaml"),
        "writable-root-filesystem": lambda d: container(d)["securityContext"].update(readOnlyRootFilesystem=False),
        "capabilities-kept": lambda d: container(d)["securityContext"].pop("capabilities"),
        # the LimitRange watch (on by default): RBAC for exactly get/list/watch on limitranges,
        # the token, the arg
        "rbac-verb-create": lambda d: role_rule(d)["verbs"].append("create"),
        "rbac-verb-delete": lambda d: role_rule(d)["verbs"].append("delete"),
        "rbac-verbs-wildcard": lambda d: role_rule(d).update(verbs=["*"]),
        "rbac-resources-wildcard": lambda d: role_rule(d).update(resources=["*"]),
        "rbac-resource-secrets-added": lambda d: role_rule(d)["resources"].append("secrets"),
        "rbac-api-groups-wildcard": lambda d: role_rule(d).update(apiGroups=["*"]),
        "rbac-rule-for-secrets-added": lambda d: cluster_role(d)["rules"].append(
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}),
        "rbac-non-resource-urls": lambda d: cluster_role(d)["rules"].append({"nonResourceURLs": ["*"], "verbs": ["get"]}),
        "rbac-aggregation-rule": lambda d: cluster_role(d).update(aggregationRule={"clusterRoleSelectors": [
            {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}}]}),
        "rbac-watch-missing": lambda d: role_rule(d)["verbs"].remove("watch"),
        "rbac-resource-names": lambda d: role_rule(d).update(resourceNames=["limits"]),
        "rbac-bound-to-cluster-admin": lambda d: binding(d)["roleRef"].update(name="cluster-admin"),
        "rbac-bound-to-all-service-accounts": lambda d: binding(d).update(subjects=[
            {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:serviceaccounts"}]),
        "rbac-bound-to-other-namespace": lambda d: binding(d)["subjects"][0].update(namespace="default"),
        "rbac-missing": lambda d: drop_kinds(d, "ClusterRole", "ClusterRoleBinding"),
        "rbac-binding-missing": lambda d: drop_kinds(d, "ClusterRoleBinding"),
        "rbac-namespaced-role-added": lambda d: d.append(dict(copy.deepcopy(cluster_role(d)), kind="Role",
                                                             metadata=dict(cluster_role(d)["metadata"], namespace=ns))),
        "rbac-unlabelled": lambda d: cluster_role(d)["metadata"].pop("labels"),
        "token-not-mounted-with-watch": lambda d: pod_spec(d).update(automountServiceAccountToken=False),
        "service-account-token-off-with-watch": lambda d: find(d, "ServiceAccount").update(automountServiceAccountToken=False),
        "watch-arg-missing": lambda d: set_arg(d, "--limit-ranges=", None),
        "watch-arg-off": lambda d: set_arg(d, "--limit-ranges=", "--limit-ranges=off"),
        "watch-arg-twice": lambda d: container(d)["args"].append("--limit-ranges=off"),
        "sync-timeout-arg-missing": lambda d: set_arg(d, "--limit-ranges-sync-timeout=", None),
        "liveness-waits-for-sync": lambda d: container(d)["livenessProbe"]["httpGet"].update(path="/readyz"),
        "readiness-outlasts-progress-deadline": lambda d: container(d)["readinessProbe"].update(initialDelaySeconds=600),
        "no-memory-limit": lambda d: container(d)["resources"]["limits"].pop("memory"),
        "readiness-on-healthz": lambda d: container(d)["readinessProbe"]["httpGet"].update(path="/healthz"),
        "no-pdb": lambda d: d.remove(find(d, "PodDisruptionBudget")),
        "policy-judges-own-namespace": lambda d: policy_without_ns(d, ns),
        "resize-fails-closed": lambda d: resize_entry(d).update(failurePolicy="Fail"),
        "resize-entry-missing": lambda d: drop_entry(d, "resize.validate.deployguard.io"),
        "resize-also-on-create": lambda d: resize_entry(d)["rules"][0].update(operations=["CREATE", "UPDATE"]),
        "resize-other-ca": lambda d: resize_entry(d)["clientConfig"].update(caBundle=other_ca),
        "resize-other-path": lambda d: resize_entry(d)["clientConfig"]["service"].update(path="/mutate"),
        "resize-judges-own-namespace": lambda d: resize_entry(d).update(namespaceSelector={}),
        "main-entry-matches-resize": lambda d: webhook(d, "ValidatingWebhookConfiguration")["rules"][0]["resources"].append("pods/resize"),
        # the split between the fail-closed entry and its fail-open complement
        "audit-entry-missing": lambda d: drop_entry(d, "audit.validate.deployguard.io"),
        "audit-entry-fails-closed": lambda d: audit_entry(d).update(failurePolicy="Fail"),
        "audit-entry-other-path": lambda d: audit_entry(d)["clientConfig"]["service"].update(path="/mutate"),
        "audit-entry-fewer-kinds": lambda d: audit_entry(d)["rules"].pop(),
        "audit-entry-judges-own-namespace": lambda d: audit_entry(d).update(namespaceSelector={}),
        "routing-dropped-from-main-entry": lambda d: drop_routing(d, "validate.deployguard.io"),
        "routing-any-requester": lambda d: edit_routing(
            d, "has(request.userInfo) && has(request.userInfo.username) && request.userInfo.username != '' &&", "true ||"),
        "routing-requester-prefix-widened": lambda d: edit_routing(d, 'startsWith("system:node:")', 'startsWith("system:")'),
        "routing-dropped-from-audit-entry": lambda d: drop_routing(d, "audit.validate.deployguard.io"),
        "routing-not-negated": lambda d: entry(d, "validate.deployguard.io")["matchConditions"][-1].update(
            expression=audit_entry(d)["matchConditions"][-1]["expression"]),
        "routing-jobs-of-any-owner": lambda d: edit_routing(d, " &&\n        has(r.kind) && r.kind == 'CronJob'", ""),
        "routing-replicasets-of-rollouts": lambda d: edit_routing(d, "r.kind == 'Deployment'", "r.kind in ['Deployment', 'Rollout']"),
        "routing-non-controller-owners": lambda d: edit_routing(d, "has(r.controller) && r.controller == true)", "true)"),
        "routing-compares-whole-template": lambda d: edit_routing(
            d, "object.spec.template.spec == oldObject.spec.template.spec", "object.spec.template == oldObject.spec.template"),
        "routing-old-object-unguarded": lambda d: edit_routing(d, "oldObject != null && has(oldObject.spec) &&", "has(oldObject.spec) &&"),
        "routing-metadata-unguarded": lambda d: edit_routing(d, "has(object.metadata) && has(object.metadata.ownerReferences)",
                                                             "has(object.metadata.ownerReferences)"),
        "routing-cronjob-template-unchecked": lambda d: edit_routing(
            d, "object.spec.jobTemplate.spec.template.spec == oldObject.spec.jobTemplate.spec.template.spec", "true"),
        "kube-public-still-called": lambda d: drop_ns_validating(d, "kube-public"),
    }
    os.makedirs(out, exist_ok=True)
    jobs = [(name, fn, base, None) for name, fn in tamperings.items()]
    for variant, fns in variant_tamperings(base).items():
        if variant not in variants:
            sys.exit(f"tamper.py: no render given for variant {variant} ({variant}=RENDERED.yaml)")
        jobs += [(name, fn, variants[variant], variant) for name, fn in fns.items()]
    names = [j[0] for j in jobs]
    assert len(set(names)) == len(names), "duplicate tampering names"
    for name, fn, start, variant in jobs:
        docs = copy.deepcopy(start)
        fn(docs)
        with open(os.path.join(out, f"{name}.yaml"), "w") as fh:
            yaml.safe_dump_all(docs, fh, sort_keys=False)
        print(name if variant is None else f"{name} {variant}")


if __name__ == "__main__":
    main()
