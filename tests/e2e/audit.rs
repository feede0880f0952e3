//! `deployguard audit` against the real API server: what was created while the webhooks
//! were off is found with a read-only identity, and `--apply-reports` writes
//! PolicyReports that the API server accepts under the real wgpolicyk8s.io CRD.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::cluster_env::{cluster, eventually};
use crate::deployguard::{binary, token_kubeconfig};
use crate::manifests::{BARE_CONTAINER, deployment, example, pod};
use crate::namespaces::Namespace;
use crate::shared_cluster;

fn shared_schema(name: &str) -> String {
    let shared = std::env::var_os("SHARED_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"),
        Into::into,
    );
    let path = shared.join("schemas").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A kubeconfig for a new ServiceAccount of `namespace` bound to `role` there.
fn account_kubeconfig(namespace: &str, account: &str, role: &str) -> std::path::PathBuf {
    let admin = cluster().admin();
    admin.ok(
        &["create", "serviceaccount", account, "-n", namespace],
        None,
    );
    admin.ok(
        &[
            "create",
            "rolebinding",
            account,
            "-n",
            namespace,
            &format!("--clusterrole={role}"),
            &format!("--serviceaccount={namespace}:{account}"),
        ],
        None,
    );
    let token = admin.ok(
        &["create", "token", account, "-n", namespace, "--duration=1h"],
        None,
    );
    let path = cluster()
        .dir
        .join(format!("{namespace}-{account}.kubeconfig"));
    std::fs::write(&path, token_kubeconfig(token.trim())).expect("write kubeconfig");
    path
}

fn audit(kubeconfig: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(binary())
        .arg("audit")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("deployguard audit");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
#[ignore = "needs a real control plane: run tests/e2e/run"]
fn audit_finds_what_came_in_while_the_webhooks_were_off() {
    let _cluster = shared_cluster();
    let admin = cluster().admin();
    let namespace = Namespace::create("audited", None);
    admin.ok(
        &["apply", "-n", &namespace.name, "-f", "-"],
        Some(&example("noncompliant-deployment.yaml")),
    );
    admin.ok(
        &["apply", "-n", &namespace.name, "-f", "-"],
        Some(&example("compliant-deployment.yaml")),
    );
    admin.ok(
        &["apply", "-n", &namespace.name, "-f", "-"],
        Some(&pod("stray", "", BARE_CONTAINER)),
    );
    admin.ok(
        &["apply", "-n", &namespace.name, "-f", "-"],
        Some(&deployment("bare", 1, BARE_CONTAINER)),
    );
    // Controllers have made the ReplicaSets and Pods; audit represents them by owner.
    eventually("the Deployments' Pods", Duration::from_secs(60), || {
        let pods = admin.json(&["get", "pods", "-n", &namespace.name]);
        (pods["items"].as_array().map_or(0, Vec::len) >= 6).then_some(())
    });

    // Read-only: `view` in the namespace, nothing else.
    let viewer = account_kubeconfig(&namespace.name, "auditor", "view");
    let (code, stdout, stderr) = audit(&viewer, &["-n", &namespace.name, "--output", "json"]);
    assert_eq!(
        code, 1,
        "exit code of an audit with enforce findings: {stderr}"
    );
    let report: Value = serde_json::from_str(&stdout).expect("audit --output json");
    let mut denied: Vec<String> = report["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| {
            r["findings"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f["mode"] == "enforce"))
        })
        .map(|r| {
            format!(
                "{}/{}",
                r["kind"].as_str().unwrap_or(""),
                r["name"].as_str().unwrap_or("")
            )
        })
        .collect();
    denied.sort();
    assert_eq!(
        denied,
        ["Deployment/bare", "Deployment/payments", "Pod/stray"],
        "{stdout}"
    );
    assert_eq!(
        report["errors"].as_array().map_or(0, Vec::len),
        0,
        "{stdout}"
    );

    // PolicyReports, applied by an identity that may write them (and read workloads).
    admin.ok(
        &["apply", "--server-side", "-f", "-"],
        Some(&shared_schema("wgpolicyk8s.io_policyreports.yaml")),
    );
    eventually(
        "the PolicyReport CRD is served",
        Duration::from_secs(30),
        || {
            admin
                .run(&["get", "policyreports", "-n", &namespace.name], None)
                .success
                .then_some(())
        },
    );
    admin.ok(
        &[
            "create",
            "clusterrole",
            "deployguard-e2e-reports",
            "--verb=get,list,create,patch,update",
            "--resource=policyreports.wgpolicyk8s.io",
        ],
        None,
    );
    let writer = account_kubeconfig(&namespace.name, "reporter", "view");
    admin.ok(
        &[
            "create",
            "rolebinding",
            "reporter-reports",
            "-n",
            &namespace.name,
            "--clusterrole=deployguard-e2e-reports",
            &format!("--serviceaccount={}:reporter", namespace.name),
        ],
        None,
    );
    let (code, _, stderr) = audit(&writer, &["-n", &namespace.name, "--apply-reports"]);
    assert_eq!(code, 1, "audit --apply-reports: {stderr}");
    let stored = admin.json(&["get", "policyreport", "deployguard", "-n", &namespace.name]);
    assert_eq!(
        stored["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "deployguard"
    );
    let fails = stored["summary"]["fail"].as_u64().unwrap_or(0);
    assert!(
        fails >= 3,
        "the stored report counts {fails} failures: {stored}"
    );
    // The read-only identity cannot write them.
    let (code, _, stderr) = audit(&viewer, &["-n", &namespace.name, "--apply-reports"]);
    assert_eq!(
        code, 2,
        "a read-only identity's --apply-reports must fail: {stderr}"
    );
    admin.ok(&["delete", "clusterrole", "deployguard-e2e-reports"], None);
}
