//! Installing as the README says, on a cluster where deployguard's own Pods never run
//! (no kubelet): the rendered chart is what the API server accepts, and the fail modes
//! are the ones SECURITY.md promises.

use crate::cluster_env::{Outcome, cluster, helm, pods_eventually};
use crate::deployguard::chart;
use crate::manifests::pod;
use crate::namespaces::Namespace;
use crate::whole_cluster;

/// A Burstable container without probes: noncompliant, and resizable in place.
const LEGACY_CONTAINER: &str = "- name: app\n  image: registry.example.com/legacy:1\n  \
     resources:\n    requests: {cpu: 100m, memory: 64Mi}\n    limits: {memory: 128Mi}\n";

fn no_warnings(what: &str, outcome: &Outcome) {
    assert!(
        outcome.success,
        "{what}: {}{}",
        outcome.stdout, outcome.stderr
    );
    assert!(
        !outcome.stderr.contains("Warning"),
        "{what} warned:\n{}",
        outcome.stderr
    );
}

#[test]
#[ignore = "needs a real control plane: run tests/e2e/run"]
fn install_as_the_readme_says_and_fail_as_security_md_says() {
    let _cluster = whole_cluster();
    let admin = cluster().admin();
    let alice = cluster().alice();
    let chart = chart();
    let chart = chart.to_str().expect("utf-8 path");

    // The rendered chart, every matchConditions expression compiled and cost-checked by
    // the API server, with strict field validation.
    let rendered = helm(&["template", "deployguard", chart, "-n", "deployguard"]);
    assert!(rendered.success, "helm template: {}", rendered.stderr);
    let _release_namespace = Namespace::create("deployguard", None).deleted_on_drop_and_awaited();
    no_warnings(
        "kubectl apply --dry-run=server --validate=strict",
        &admin.run(
            &["apply", "--dry-run=server", "--validate=strict", "-f", "-"],
            Some(&rendered.stdout),
        ),
    );

    // A workload from before the install.
    let legacy = Namespace::create("before-install", None);
    let deployment = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: legacy\nspec:\n  replicas: 1\n  \
         selector:\n    matchLabels: {{app: legacy}}\n  template:\n    metadata:\n      labels: {{app: legacy}}\n    \
         spec:\n      containers:\n{}",
        crate::manifests::indent(LEGACY_CONTAINER, 6)
    );
    admin.ok(&["apply", "-n", &legacy.name, "-f", "-"], Some(&deployment));

    let installed = helm(&[
        "install",
        "deployguard",
        chart,
        "-n",
        "deployguard",
        "--create-namespace",
    ]);
    let _uninstall = Uninstall("deployguard");
    no_warnings("helm install -n deployguard", &installed);

    // 1. Scaling is not intercepted, and the replicaset controller's Pods go to the
    //    fail-open entry: admitted although no deployguard Pod runs.
    admin.ok(
        &[
            "scale",
            "deployment",
            "legacy",
            "-n",
            &legacy.name,
            "--replicas=3",
        ],
        None,
    );
    let pods = pods_eventually(&legacy.name, "app=legacy", 3);

    // 2. alice's bare Pod: fail closed, even a compliant one cannot be judged.
    let refused = alice.run(
        &["apply", "-n", &legacy.name, "-f", "-"],
        Some(&pod("bare", "", LEGACY_CONTAINER)),
    );
    assert!(
        !refused.success,
        "alice's Pod was admitted with deployguard down"
    );
    assert!(
        refused
            .stderr
            .contains("failed calling webhook \"validate.deployguard.io\""),
        "{}",
        refused.stderr
    );

    // 3. An in-place resize of a Pod goes to the fail-open resize entry.
    let name = pods[0]["metadata"]["name"].as_str().expect("pod name");
    let resized = admin.run(
        &[
            "patch",
            "pod",
            name,
            "-n",
            &legacy.name,
            "--subresource",
            "resize",
            "--type",
            "strategic",
            "-p",
            r#"{"spec":{"containers":[{"name":"app","resources":{"requests":{"cpu":"150m"}}}]}}"#,
        ],
        None,
    );
    assert!(
        resized.success,
        "a resize with deployguard down: {}",
        resized.stderr
    );
}

/// Uninstalls a release when dropped: its webhook configurations see every namespace.
struct Uninstall(&'static str);

impl Drop for Uninstall {
    fn drop(&mut self) {
        let _ = helm(&["uninstall", self.0, "-n", self.0, "--wait"]);
    }
}

/// The plain manifests on a cluster without cert-manager: the apply fails loudly, and
/// nothing that could refuse a Pod is left behind.
#[test]
#[ignore = "needs a real control plane: run tests/e2e/run"]
fn plain_manifests_without_cert_manager_never_block_pods() {
    let _cluster = whole_cluster();
    let admin = cluster().admin();
    let manifests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    let install = manifests.join("deployguard.yaml");
    let install = install.to_str().expect("utf-8 path");
    let applied = admin.run(&["apply", "-f", install], None);
    let _cleanup = DeleteManifests(install.to_string());
    assert!(
        !applied.success,
        "applying without cert-manager should fail loudly"
    );
    assert!(
        applied
            .stderr
            .contains("no matches for kind \"Certificate\""),
        "{}",
        applied.stderr
    );
    let webhooks = admin.json(&[
        "get",
        "validatingwebhookconfigurations,mutatingwebhookconfigurations",
    ]);
    let names: Vec<&str> = webhooks["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w["metadata"]["name"].as_str())
        .collect();
    assert!(
        !names.contains(&"deployguard"),
        "a webhook configuration was created: {names:?}"
    );
    // Pods are created as if deployguard were not there.
    let namespace = Namespace::create("after-manifests", None);
    cluster().alice().ok(
        &["apply", "-n", &namespace.name, "-f", "-"],
        Some(&pod("plain", "", LEGACY_CONTAINER)),
    );
}

struct DeleteManifests(String);

impl Drop for DeleteManifests {
    fn drop(&mut self) {
        let admin = cluster().admin();
        // Exits at the kinds this cluster lacks (cert-manager's) without waiting, so the
        // namespace the next test creates again is waited for by name.
        let _ = admin.run(
            &[
                "delete",
                "-f",
                &self.0,
                "--ignore-not-found",
                "--wait=false",
            ],
            None,
        );
        let _ = admin.run(
            &[
                "wait",
                "--for=delete",
                "namespace/deployguard",
                "--timeout=120s",
            ],
            None,
        );
    }
}
