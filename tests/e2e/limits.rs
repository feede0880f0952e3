//! LimitRanger and in-place resize through the real API server: the admission plugin
//! defaults a Pod's limits before deployguard's webhooks see it, deployguard's
//! LimitRange watch (on the chart's ServiceAccount token) judges templates with those
//! defaults and bounds, and `pods/resize` is judged for the Go env a running pod keeps.

use std::time::Duration;

use crate::cluster_env::{cluster, env_value, eventually};
use crate::deployguard::Release;
use crate::manifests::{compliant_container, deployment, pod};
use crate::shared_cluster;

const LIMIT_RANGE: &str = "apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: defaults\nspec:\n  limits:\n  - type: Container\n    \
     default: {cpu: 500m, memory: 256Mi}\n    defaultRequest: {cpu: 100m, memory: 128Mi}\n    max: {cpu: '2', memory: 1Gi}\n";

/// A container with probes and no resources: LimitRanger must supply them.
const PROBED_CONTAINER: &str = "- name: app\n  image: registry.example.com/app:1\n  ports: [{name: http, containerPort: 8080}]\n  \
     livenessProbe: {httpGet: {path: /healthz, port: http}}\n  readinessProbe: {httpGet: {path: /readyz, port: http}}\n";

#[test]
#[ignore = "needs a real control plane: run tests/e2e/run"]
fn limit_range_defaults_reach_pods_and_templates() {
    let _cluster = shared_cluster();
    let release = Release::install("deployguard-limits", "");
    let mut server = release.serve(&[]);
    let namespace = release.namespace("limits");
    let admin = cluster().admin();
    let alice = cluster().alice();
    admin.ok(
        &["apply", "-n", &namespace.name, "-f", "-"],
        Some(LIMIT_RANGE),
    );
    // The watch (on the chart's ServiceAccount token) has the LimitRange once it is listed.
    eventually(
        "the LimitRange reaches the watch",
        Duration::from_secs(30),
        || (server.metric("deployguard_limit_ranges", &[]) >= 1.0).then_some(()),
    );

    // A bare Pod without limits: LimitRanger defaults them before the webhooks run, and
    // GOMEMLIMIT follows the defaulted 256Mi.
    alice.ok(
        &["apply", "-n", &namespace.name, "-f", "-"],
        Some(&pod("defaulted", "", PROBED_CONTAINER)),
    );
    let stored = admin.json(&["get", "pod", "defaulted", "-n", &namespace.name]);
    assert_eq!(
        stored["spec"]["containers"][0]["resources"]["limits"]["memory"], "256Mi",
        "{stored}"
    );
    assert_eq!(
        env_value(&stored, "GOMEMLIMIT").as_deref(),
        Some("230MiB"),
        "{stored}"
    );
    assert_eq!(
        env_value(&stored, "GOMAXPROCS").as_deref(),
        Some("2"),
        "{stored}"
    );
    let seen = server.review_of("validate", "Pod", &namespace.name, "defaulted");
    assert_eq!(seen["decision"], "allowed");

    // A Deployment template without limits is admitted: the LimitRange supplies them.
    alice.ok(
        &["apply", "-n", &namespace.name, "-f", "-"],
        Some(&deployment("templated", 1, PROBED_CONTAINER)),
    );
    let judged = server.review_of("validate", "Deployment", &namespace.name, "templated");
    assert_eq!(judged["decision"], "allowed", "{judged}");

    // A template over the LimitRange's max is denied by deployguard's limit-range rule
    // (LimitRanger only refuses the Pods, long after the Deployment was accepted).
    let too_big = deployment(
        "too-big",
        1,
        &compliant_container("app", "{limits: {cpu: '4', memory: 512Mi}}"),
    );
    let outcome = alice.run(&["apply", "-n", &namespace.name, "-f", "-"], Some(&too_big));
    assert!(
        !outcome.success,
        "a template over the LimitRange's max was admitted"
    );
    assert!(
        outcome.stderr.contains("(limit-range)"),
        "{}",
        outcome.stderr
    );
    assert!(
        outcome.stderr.contains("validate.deployguard.io"),
        "{}",
        outcome.stderr
    );
}

#[test]
#[ignore = "needs a real control plane: run tests/e2e/run"]
fn a_resize_below_a_literal_gomemlimit_is_denied() {
    let _cluster = shared_cluster();
    let release = Release::install("deployguard-resize", "");
    let mut server = release.serve(&[]);
    let namespace = release.namespace("resize");
    let alice = cluster().alice();
    // `edit` does not grant pods/resize (1.37): resizes come from an admin, as from VPA.
    let admin = cluster().admin();
    // Burstable (requests below limits) with RestartContainer for memory, so the API
    // server's own validation lets a memory decrease through; GOMEMLIMIT is the user's.
    let container = "- name: app\n  image: registry.example.com/app:1\n  ports: [{name: http, containerPort: 8080}]\n  \
         livenessProbe: {httpGet: {path: /healthz, port: http}}\n  readinessProbe: {httpGet: {path: /readyz, port: http}}\n  \
         env: [{name: GOMEMLIMIT, value: 400MiB}]\n  \
         resizePolicy: [{resourceName: memory, restartPolicy: RestartContainer}]\n  \
         resources:\n    requests: {cpu: 100m, memory: 128Mi}\n    limits: {cpu: '1', memory: 512Mi}\n";
    alice.ok(
        &["apply", "-n", &namespace.name, "-f", "-"],
        Some(&pod("resized", "", container)),
    );
    let resize = |memory: &str| {
        let patch = format!(
            r#"{{"spec":{{"containers":[{{"name":"app","resources":{{"limits":{{"memory":"{memory}"}}}}}}]}}}}"#
        );
        admin.run(
            &[
                "patch",
                "pod",
                "resized",
                "-n",
                &namespace.name,
                "--subresource",
                "resize",
                "--type",
                "strategic",
                "-p",
                &patch,
            ],
            None,
        )
    };
    // 400Mi is at the literal GOMEMLIMIT: the GC could never keep the process under it.
    let denied = resize("400Mi");
    assert!(!denied.success, "a resize to the GOMEMLIMIT was admitted");
    assert!(denied.stderr.contains("(go-env)"), "{}", denied.stderr);
    assert!(
        denied.stderr.contains("resize.validate.deployguard.io"),
        "{}",
        denied.stderr
    );
    let judged = server.review_of("validate", "Pod", &namespace.name, "resized");
    assert_eq!(judged["operation"], "CREATE");
    eventually("the resize's review", Duration::from_secs(30), || {
        server.reviews().into_iter().find(|r| {
            r["name"] == "resized" && r["operation"] == "UPDATE" && r["decision"] == "denied"
        })
    });
    // 448Mi leaves the GC room: allowed, and stored.
    let allowed = resize("448Mi");
    assert!(
        allowed.success,
        "a safe resize was denied: {}",
        allowed.stderr
    );
    let stored = cluster()
        .admin()
        .json(&["get", "pod", "resized", "-n", &namespace.name]);
    assert_eq!(
        stored["spec"]["containers"][0]["resources"]["limits"]["memory"],
        "448Mi"
    );
    eventually("the safe resize's review", Duration::from_secs(30), || {
        server.reviews().into_iter().find(|r| {
            r["name"] == "resized" && r["operation"] == "UPDATE" && r["decision"] == "allowed"
        })
    });
}
