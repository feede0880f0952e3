//! deployguard judging through the real API server: denials with its rule ids, warnings
//! in warn mode, the Go env stored on Pods the replicaset controller creates, and the
//! requester's identity deciding whether an owner reference counts.

use std::time::Duration;

use serde_json::Value;

use crate::cluster_env::{cluster, env_value, eventually, pods_eventually};
use crate::deployguard::{Release, binary};
use crate::manifests::{BARE_CONTAINER, deployment, example, pod};
use crate::shared_cluster;

/// The enforce-mode rule ids `deployguard check` gives a manifest: what the API server's
/// answer must name.
fn enforced_rules(manifest: &str) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("manifest.yaml");
    std::fs::write(&file, manifest).expect("write manifest");
    let output = std::process::Command::new(binary())
        .args(["check", "--output", "json"])
        .arg(&file)
        .output()
        .expect("deployguard check");
    let report: Value = serde_json::from_slice(&output.stdout).expect("check --output json");
    let mut rules: Vec<String> = report["results"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["findings"].as_array().cloned().unwrap_or_default())
        .filter(|f| f["mode"] == "enforce")
        .filter_map(|f| f["rule"].as_str().map(str::to_string))
        .collect();
    rules.sort();
    rules.dedup();
    rules
}

#[test]
#[ignore = "needs a real control plane: run tests/e2e/run"]
fn denials_warnings_and_injection_through_the_api_server() {
    let _cluster = shared_cluster();
    let release = Release::install(
        "deployguard-judge",
        "policy:\n  namespaceOverrides:\n    judge-warn: {defaultMode: warn}\n",
    );
    let mut server = release.serve(&[]);
    let enforce = release.namespace("judge-enforce");
    let warn = release.namespace("judge-warn");
    let alice = cluster().alice();

    // alice's noncompliant Deployment: denied with deployguard's message and every rule
    // id the offline check names; a server-side dry run gets the same answer.
    let noncompliant = example("noncompliant-deployment.yaml");
    let rules = enforced_rules(&noncompliant);
    assert!(
        rules.len() >= 3,
        "the example should break several rules: {rules:?}"
    );
    for dry_run in [true, false] {
        let mut args = vec!["apply", "-n", &enforce.name, "-f", "-"];
        if dry_run {
            args.push("--dry-run=server");
        }
        let outcome = alice.run(&args, Some(&noncompliant));
        assert!(
            !outcome.success,
            "dry run {dry_run}: the noncompliant Deployment was admitted"
        );
        assert!(
            outcome.stderr.contains("admission webhook \"validate.deployguard.io\" denied the request: deployguard denied Deployment"),
            "dry run {dry_run}: {}",
            outcome.stderr
        );
        for rule in &rules {
            assert!(
                outcome.stderr.contains(&format!("({rule})")),
                "no {rule} in {}",
                outcome.stderr
            );
        }
    }
    let denied = server.review_of("validate", "Deployment", &enforce.name, "payments");
    assert_eq!(denied["decision"], "denied");
    assert_eq!(denied["operation"], "CREATE");

    // warn mode: admitted, and kubectl prints deployguard's warnings.
    let outcome = alice.run(&["apply", "-n", &warn.name, "-f", "-"], Some(&noncompliant));
    assert!(outcome.success, "warn mode denied: {}", outcome.stderr);
    for rule in &rules {
        assert!(
            outcome.stderr.lines().any(|l| l.starts_with("Warning: deployguard:") && l.contains(&format!("({rule})"))),
            "no Warning: line for {rule}:\n{}",
            outcome.stderr
        );
    }
    let warned = server.review_of("validate", "Deployment", &warn.name, "payments");
    assert_eq!(warned["decision"], "allowed");

    // A compliant Deployment: its Pods, made by the replicaset controller, are stored
    // with the Go env and the record of what was injected.
    let compliant = example("compliant-deployment.yaml");
    alice.ok(&["apply", "-n", &enforce.name, "-f", "-"], Some(&compliant));
    let pods = pods_eventually(&enforce.name, "app=checkout", 2);
    for pod in &pods {
        // limits cpu 1500m, memory 512Mi: max(2, ceil(1.5)) and floor(512Mi × 0.9).
        assert_eq!(env_value(pod, "GOMAXPROCS").as_deref(), Some("2"), "{pod}");
        assert_eq!(
            env_value(pod, "GOMEMLIMIT").as_deref(),
            Some("460MiB"),
            "{pod}"
        );
        assert_eq!(
            pod["metadata"]["annotations"]["deployguard.io/injected"],
            "checkout: GOMAXPROCS=2 GOMEMLIMIT=460MiB"
        );
    }
    let mutated = server.review_of("mutate", "Pod", &enforce.name, "checkout-");
    assert_eq!(mutated["decision"], "allowed");
    assert!(mutated["patch_ops"].as_u64().unwrap_or(0) > 0, "{mutated}");
}

#[test]
#[ignore = "needs a real control plane: run tests/e2e/run"]
fn the_requester_decides_whether_an_owner_reference_counts() {
    let _cluster = shared_cluster();
    let release = Release::install("deployguard-identity", "");
    let mut server = release.serve(&[]);
    let admin = cluster().admin();
    let alice = cluster().alice();
    // A noncompliant Deployment made while deployguard does not judge its namespace...
    let namespace = crate::namespaces::Namespace::create("identity", None);
    admin.ok(
        &["apply", "-n", &namespace.name, "-f", "-"],
        Some(&deployment("legacy", 1, BARE_CONTAINER)),
    );
    let replica_set = eventually("legacy's ReplicaSet", Duration::from_secs(60), || {
        let list = admin.json(&[
            "get",
            "replicasets",
            "-n",
            &namespace.name,
            "-l",
            "app=legacy",
        ]);
        list["items"]
            .as_array()
            .and_then(|items| items.first().cloned())
    });
    // ... which it judges from now on.
    admin.ok(
        &[
            "label",
            "namespace",
            &namespace.name,
            &format!("{}={}", crate::namespaces::SCOPE_LABEL, release.name),
        ],
        None,
    );
    eventually(
        "the namespace label reaches the webhook's selector",
        Duration::from_secs(30),
        || {
            let probe = alice.run(
                &[
                    "apply",
                    "-n",
                    &namespace.name,
                    "--dry-run=server",
                    "-f",
                    "-",
                ],
                Some(&pod("probe", "", BARE_CONTAINER)),
            );
            (!probe.success).then_some(())
        },
    );

    // Scaling is not intercepted; the Pods the replicaset controller then creates are
    // controller-owned from a trusted requester: judged at most in audit, admitted.
    admin.ok(
        &[
            "scale",
            "deployment",
            "legacy",
            "-n",
            &namespace.name,
            "--replicas=3",
        ],
        None,
    );
    pods_eventually(&namespace.name, "app=legacy", 3);
    let capped = server.review_of("validate", "Pod", &namespace.name, "legacy-");
    assert_eq!(capped["decision"], "allowed", "{capped}");
    assert!(
        capped["rules"]
            .as_str()
            .is_some_and(|r| r.contains("liveness-probe")),
        "{capped}"
    );

    // alice's bare Pod naming that real ReplicaSet as its controller (labels that its
    // selector does not match, so the garbage collector leaves it) is judged in full.
    let owner = format!(
        "labels: {{app: not-legacy}}\nownerReferences:\n- apiVersion: apps/v1\n  kind: ReplicaSet\n  name: {}\n  uid: {}\n  controller: true\n",
        replica_set["metadata"]["name"].as_str().expect("name"),
        replica_set["metadata"]["uid"].as_str().expect("uid"),
    );
    let forged = alice.run(
        &["apply", "-n", &namespace.name, "-f", "-"],
        Some(&pod("forged", &owner, BARE_CONTAINER)),
    );
    assert!(
        !forged.success,
        "alice's Pod with a forged owner was admitted"
    );
    assert!(
        forged
            .stderr
            .contains("owner reference claims a controller, but the request comes from \"alice\""),
        "{}",
        forged.stderr
    );
    assert!(
        forged.stderr.contains("(liveness-probe)"),
        "{}",
        forged.stderr
    );
}
