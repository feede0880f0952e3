//! Certificate rotation under load through the real API server: the serving certificate
//! is replaced kubelet-style (a `..data` symlink swap) while Pods are created; the server
//! closes its connections after the reload, the API server handshakes again and sees the
//! new certificate, and no admission fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine as _;

use crate::cluster_env::{cluster, eventually};
use crate::deployguard::{Release, Server, ServerFiles};
use crate::manifests::{compliant_container, pod};
use crate::pki::Pki;
use crate::shared_cluster;
use crate::volume::Volume;

const HANDSHAKES: &str = "deployguard_tls_handshakes_total";

/// The serials that completed at least one handshake.
fn serials(server: &Server) -> Vec<String> {
    server
        .scrape()
        .samples
        .into_iter()
        .filter(|(name, _, value)| name == HANDSHAKES && *value >= 1.0)
        .filter_map(|(_, mut labels, _)| labels.remove("serial"))
        .collect()
}

#[test]
#[ignore = "needs a real control plane: run tests/e2e/run"]
fn rotating_the_serving_certificate_fails_no_admission() {
    let _cluster = shared_cluster();
    // The caBundle is a CA of the test's own (certs.mode=secret), so that the next
    // serving certificate can be signed by it.
    let pki = Pki::new("rotation-ca");
    let ca = base64::engine::general_purpose::STANDARD.encode(&pki.ca_pem);
    let release = Release::install(
        "deployguard-rotate",
        &format!(
            "certs:\n  mode: secret\n  secret:\n    name: deployguard-rotate-tls\n    caBundle: {ca}\n"
        ),
    );
    let namespace = release.namespace("rotate");
    let first = pki.server(2095);
    let mut volume = Volume::new(
        &release.work.join("tls"),
        &[
            ("tls.crt", first.cert_pem.as_bytes()),
            ("tls.key", first.key_pem.as_bytes()),
        ],
    );
    let files = ServerFiles {
        cert: volume.path("tls.crt"),
        key: volume.path("tls.key"),
        policy: release.policy_file(),
        kubeconfig: release.service_account_kubeconfig(&release.name, &release.name),
    };
    let mut server = Server::start(&files, release.port, &release.work, &[]);

    // Pods created one after another through the API server, each through both webhooks.
    let stop = Arc::new(AtomicBool::new(false));
    let creating = {
        let (stop, namespace) = (stop.clone(), namespace.name.clone());
        std::thread::spawn(move || {
            let alice = cluster().alice();
            let mut failures = Vec::new();
            let mut created = 0;
            while !stop.load(Ordering::SeqCst) {
                let manifest = pod(
                    &format!("rot-{created}"),
                    "",
                    &compliant_container("app", "{limits: {cpu: '1', memory: 256Mi}}"),
                );
                let outcome = alice.run(&["apply", "-n", &namespace, "-f", "-"], Some(&manifest));
                if !outcome.success {
                    failures.push(outcome.stderr);
                }
                created += 1;
            }
            (created, failures)
        })
    };
    eventually(
        "Pods admitted before the rotation",
        Duration::from_secs(60),
        || {
            (server
                .reviews()
                .iter()
                .filter(|r| r["endpoint"] == "mutate")
                .count()
                >= 5)
                .then_some(())
        },
    );
    let before = serials(&server);
    assert_eq!(before.len(), 1, "{before:?}");

    let next = pki.server(2096);
    volume.update(&[
        ("tls.crt", next.cert_pem.as_bytes()),
        ("tls.key", next.key_pem.as_bytes()),
    ]);
    server.wait_for_log("the reload", |line| {
        line["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("TLS certificate reloaded"))
    });
    // The API server's kept connections close; its next calls handshake with the new one.
    let reviews_at_reload = server.reviews().len();
    eventually(
        "a handshake presenting the new certificate during the loop",
        Duration::from_secs(60),
        || {
            serials(&server)
                .iter()
                .any(|s| !before.contains(s))
                .then_some(())
        },
    );
    eventually(
        "Pods admitted after the new handshake",
        Duration::from_secs(60),
        || (server.reviews().len() >= reviews_at_reload + 10).then_some(()),
    );
    stop.store(true, Ordering::SeqCst);
    let (created, failures) = creating.join().expect("the creating thread");
    assert!(
        failures.is_empty(),
        "{} of {created} creations failed: {failures:?}",
        failures.len()
    );
    let stored = cluster()
        .admin()
        .json(&["get", "pods", "-n", &namespace.name]);
    let injected = stored["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["annotations"]["deployguard.io/injected"].is_string())
        .count();
    assert_eq!(
        injected, created,
        "every Pod went through deployguard's mutating webhook"
    );
}
