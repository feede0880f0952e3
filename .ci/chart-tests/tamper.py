#!/usr/bin/env python3
"""Writes broken variants of a rendered chart, to prove the checks catch them.

usage: tamper.py RENDERED.yaml OUT_DIR FIXTURE_CA.pem

Writes OUT_DIR/NAME.yaml for each tampering and prints the names, one a line.
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


def main():
    rendered, out, ca_file = sys.argv[1:4]
    with open(rendered) as fh:
        base = [d for d in yaml.safe_load_all(fh) if d]
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
        "token-mounted": lambda d: find(d, "Deployment")["spec"]["template"]["spec"].pop("automountServiceAccountToken"),
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
    for name, fn in tamperings.items():
        docs = copy.deepcopy(base)
        fn(docs)
        with open(os.path.join(out, f"{name}.yaml"), "w") as fh:
            yaml.safe_dump_all(docs, fh, sort_keys=False)
        print(name)


if __name__ == "__main__":
    main()
