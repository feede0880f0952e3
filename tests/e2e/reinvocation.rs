//! Reinvocation through the real admission chain: a webhook after deployguard's lowers
//! the memory limit, the API server calls deployguard again (`reinvocationPolicy:
//! IfNeeded`), and the stored Pod's GOMEMLIMIT follows the final limit.

use std::time::Duration;

use crate::cluster_env::{cluster, eventually};
use crate::deployguard::Release;
use crate::manifests::{compliant_container, pod};
use crate::namespaces::SCOPE_LABEL;
use crate::pki::Pki;
use crate::second_webhook::{LOWERED_MEMORY, SecondWebhook, configuration};
use crate::shared_cluster;

#[test]
#[ignore = "needs a real control plane: run tests/e2e/run"]
fn a_later_webhook_lowering_limits_reinvokes_deployguard() {
    let _cluster = shared_cluster();
    let release = Release::install("deployguard-reinvoke", "");
    let mut server = release.serve(&[]);
    let namespace = release.namespace("reinvoke");
    let admin = cluster().admin();

    let pki = Pki::new("second-webhook-ca");
    let second = SecondWebhook::start(&pki.server(2099));
    // Mutating webhooks run in the order of their configurations' names.
    let name = "zz-e2e-lower-memory";
    assert!(name > release.name.as_str());
    admin.ok(
        &["apply", "-f", "-"],
        Some(&configuration(
            name,
            second.port,
            &pki.ca_pem,
            SCOPE_LABEL,
            &release.name,
        )),
    );
    let _remove = RemoveWebhook(name);

    cluster().alice().ok(
        &["apply", "-n", &namespace.name, "-f", "-"],
        Some(&pod(
            "reinvoked",
            "",
            &compliant_container(
                "app",
                "{requests: {cpu: 100m, memory: 128Mi}, limits: {cpu: '1', memory: 512Mi}}",
            ),
        )),
    );
    let stored = admin.json(&["get", "pod", "reinvoked", "-n", &namespace.name]);
    let container = &stored["spec"]["containers"][0];
    assert_eq!(
        container["resources"]["limits"]["memory"], LOWERED_MEMORY,
        "{stored}"
    );
    let gomemlimit: Vec<&str> = container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["name"] == "GOMEMLIMIT")
        .filter_map(|e| e["value"].as_str())
        .collect();
    // floor(256Mi × 0.9), not the 460MiB of the first call's 512Mi.
    assert_eq!(gomemlimit, ["230MiB"], "{stored}");
    assert_eq!(
        stored["metadata"]["annotations"]["deployguard.io/injected"],
        "app: GOMAXPROCS=2 GOMEMLIMIT=230MiB"
    );

    // The second webhook saw deployguard's env; deployguard was called twice.
    let seen = second
        .seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    assert!(
        seen.iter()
            .any(|names| names.iter().any(|n| n == "GOMEMLIMIT")),
        "{seen:?}"
    );
    server.review_of("mutate", "Pod", &namespace.name, "reinvoked");
    let calls = eventually(
        "deployguard's second /mutate call",
        Duration::from_secs(30),
        || {
            let calls: Vec<_> = server
                .reviews()
                .into_iter()
                .filter(|r| r["endpoint"] == "mutate" && r["name"] == "reinvoked")
                .collect();
            (calls.len() == 2).then_some(calls)
        },
    );
    // Each call of a webhook is its own AdmissionReview with its own uid, reinvocations
    // too (measured here on v1.37.2): the two calls are told apart by the object alone.
    assert_ne!(calls[0]["uid"], calls[1]["uid"], "{calls:?}");
    assert!(
        calls
            .iter()
            .all(|c| c["patch_ops"].as_u64().unwrap_or(0) > 0),
        "{calls:?}"
    );
}

/// Deletes a cluster-wide webhook configuration when dropped.
struct RemoveWebhook(&'static str);

impl Drop for RemoveWebhook {
    fn drop(&mut self) {
        let _ = cluster().admin().run(
            &[
                "delete",
                "mutatingwebhookconfiguration",
                self.0,
                "--ignore-not-found",
            ],
            None,
        );
    }
}
