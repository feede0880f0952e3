//! `serve --limit-ranges watch`: the real server over real TLS, its kube-rs watch talking
//! to an in-process plain-HTTP stand-in for the API (tests/common/fake_kube_api.rs). The
//! initial list, ADDED/MODIFIED/DELETED, BOOKMARK, 410 Gone, dropped streams, readiness
//! and its timeout, and the live read before a denial.

#[allow(dead_code)]
mod common;

use std::time::{Duration, Instant};

use common::fake_kube_api::{Answer, FakeApi, limit_range};
use common::{clients::*, load::*, pki::*, server::*, wait::*};
use serde_json::{Value, json};

/// Default limits well inside the maximum: a container without limits gets 500m / 256Mi.
fn defaults(namespace: &str, name: &str, max_cpu: &str) -> Value {
    limit_range(
        namespace,
        name,
        json!({
            "default": {"cpu": "500m", "memory": "256Mi"},
            "max": {"cpu": max_cpu, "memory": "1Gi"}
        }),
    )
}

/// A CREATE review of a Deployment with probes (so that only resource rules can deny)
/// and `resources` on its container.
fn deployment(namespace: &str, name: &str, resources: Value) -> Vec<u8> {
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("uid-{namespace}-{name}"),
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{
                            "name": "app",
                            "image": "registry.example.com/app:1.0.0",
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
                            "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5},
                            "resources": resources
                        }]}
                    }
                }
            },
            "oldObject": null,
            "dryRun": false
        }
    });
    serde_json::to_vec(&review).unwrap()
}

fn no_limits(namespace: &str) -> Vec<u8> {
    deployment(namespace, "plain", json!({}))
}

/// Within the defaults' maximum of 1 CPU unless the maximum is lowered.
fn explicit_limits(namespace: &str, cpu: &str) -> Vec<u8> {
    deployment(
        namespace,
        "explicit",
        json!({"limits": {"cpu": cpu, "memory": "512Mi"}}),
    )
}

struct Setup {
    server: TestServer,
    client: reqwest::Client,
}

impl Setup {
    async fn start(api_url: &str, sync_timeout: &str) -> Setup {
        let pki = Pki::new("limit range CA");
        let server = TestServer::start(
            &pki,
            &[
                "--limit-ranges",
                "watch",
                "--kube-api-url",
                api_url,
                "--limit-ranges-sync-timeout",
                sync_timeout,
            ],
        )
        .await;
        let client = client(&pki.ca_pem, Http::Two);
        Setup { server, client }
    }

    /// Allowed?, and the denial message (empty when allowed).
    async fn judge(&self, body: Vec<u8>) -> (bool, String) {
        let url = self.server.url("/validate");
        let (status, _, answer) = post(&self.client, Http::Two, &url, body).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        let response = &answer["response"];
        let message = response["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        (response["allowed"].as_bool().unwrap(), message)
    }

    async fn allowed(&self, body: Vec<u8>) -> bool {
        self.judge(body).await.0
    }

    async fn readyz(&self) -> (u16, String) {
        let response = self
            .client
            .get(self.server.url("/readyz"))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    async fn wait_ready(&self) -> String {
        eventually("/readyz answering 200", || async {
            let (status, body) = self.readyz().await;
            (status == 200).then_some(body)
        })
        .await
    }

    async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.server.metrics().await.value(name, labels)
    }

    /// Waits until `body` is judged `allowed`.
    async fn until(&self, what: &str, body: Vec<u8>, allowed: bool) {
        eventually(what, || {
            let body = body.clone();
            async move { (self.allowed(body).await == allowed).then_some(()) }
        })
        .await;
    }
}

/// The initial list applies: defaults satisfy the limit rules, the maximum denies; a
/// namespace without any is judged as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_initial_list_applies_defaults_and_bounds() {
    let api = FakeApi::start(&[defaults("team", "defaults", "1")]).await;
    let setup = Setup::start(&api.url(), "10").await;
    assert_eq!(setup.wait_ready().await, "ok: LimitRanges synced\n");

    assert!(setup.allowed(no_limits("team")).await);
    assert!(setup.allowed(explicit_limits("team", "800m")).await);
    let (allowed, message) = setup.judge(explicit_limits("team", "2")).await;
    assert!(!allowed);
    assert!(message.contains("(limit-range)"), "{message}");
    assert!(
        message.contains("defaults"),
        "names the LimitRange: {message}"
    );

    let (allowed, message) = setup.judge(no_limits("elsewhere")).await;
    assert!(!allowed);
    assert!(message.contains("(cpu-limit)"), "{message}");
    assert!(message.contains("(memory-limit)"), "{message}");

    assert_eq!(
        setup.metric("deployguard_limit_ranges_synced", &[]).await,
        1.0
    );
    assert_eq!(setup.metric("deployguard_limit_ranges", &[]).await, 1.0);
    assert_eq!(
        setup.metric("deployguard_limit_ranges_invalid", &[]).await,
        0.0
    );
    // The denial in "elsewhere" looked live first and found nothing.
    let none = [("outcome", "none")];
    assert_eq!(
        setup
            .metric("deployguard_limit_range_live_reads_total", &none)
            .await,
        1.0
    );
    assert_eq!(
        api.requests(|r| r.starts_with("/api/v1/namespaces/elsewhere/limitranges"))
            .len(),
        1
    );
    // Only the denial for a missing limit looked: not the allowed ones, not the one
    // denied for a LimitRange bound.
    assert_eq!(api.requests(|r| r.contains("/namespaces/")).len(), 1);
}

/// ADDED, MODIFIED and DELETED events change the view; a BOOKMARK changes nothing and
/// the stream goes on. The live read is refused (403) so that only the watch can allow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_events_add_change_and_remove_limit_ranges() {
    let api = FakeApi::start(&[defaults("team", "defaults", "1")]).await;
    api.set_namespaced(Answer::Forbidden);
    let setup = Setup::start(&api.url(), "10").await;
    setup.wait_ready().await;
    assert!(!setup.allowed(no_limits("late")).await);

    // ADDED in another namespace.
    api.apply(defaults("late", "late-defaults", "1"));
    setup
        .until("the ADDED LimitRange applying", no_limits("late"), true)
        .await;
    assert_eq!(setup.metric("deployguard_limit_ranges", &[]).await, 2.0);

    // BOOKMARK: harmless, and the next event still arrives on the same stream.
    api.bookmark();
    assert!(setup.allowed(no_limits("late")).await);
    assert!(setup.allowed(explicit_limits("late", "800m")).await);

    // MODIFIED lowers the maximum below the explicit limit.
    api.apply(defaults("late", "late-defaults", "600m"));
    setup
        .until(
            "the MODIFIED maximum denying",
            explicit_limits("late", "800m"),
            false,
        )
        .await;
    let (_, message) = setup.judge(explicit_limits("late", "800m")).await;
    assert!(message.contains("(limit-range)"), "{message}");

    // DELETED: without limits is denied again.
    api.delete("late", "late-defaults", false);
    setup
        .until("the DELETED LimitRange gone", no_limits("late"), false)
        .await;
    assert_eq!(setup.metric("deployguard_limit_ranges", &[]).await, 1.0);
    assert!(
        setup.allowed(no_limits("team")).await,
        "the other one stays"
    );

    assert_eq!(api.cluster_lists(), 1, "{:?}", api.requests(|_| true));
    assert_eq!(api.watches().len(), 1, "{:?}", api.watches());
    assert_eq!(
        setup
            .metric("deployguard_limit_range_watch_errors_total", &[])
            .await,
        0.0
    );
    let failed = [("outcome", "failed")];
    assert!(
        setup
            .metric("deployguard_limit_range_live_reads_total", &failed)
            .await
            >= 1.0
    );
}

/// A 410 Gone makes the watch list again; the new list replaces the view whole, dropping
/// what was deleted and adding what was created while the events were lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_forces_a_relist_of_the_new_state() {
    let api = FakeApi::start(&[defaults("old", "old-defaults", "1")]).await;
    api.set_namespaced(Answer::Forbidden);
    let setup = Setup::start(&api.url(), "10").await;
    setup.wait_ready().await;
    assert!(setup.allowed(no_limits("old")).await);
    eventually("the watch stream open", || async {
        (api.open_streams() == 1).then_some(())
    })
    .await;

    // Changes whose events are lost, then the stream expires.
    api.delete("old", "old-defaults", true);
    api.apply_silently(defaults("new", "new-defaults", "1"));
    assert!(setup.allowed(no_limits("old")).await, "nothing seen yet");
    api.expire();

    setup
        .until("the relist adding new-defaults", no_limits("new"), true)
        .await;
    assert!(
        !setup.allowed(no_limits("old")).await,
        "old-defaults dropped"
    );
    assert_eq!(api.cluster_lists(), 2);
    assert!(
        setup
            .metric("deployguard_limit_range_watch_errors_total", &[])
            .await
            >= 1.0
    );
    assert_eq!(
        setup.metric("deployguard_limit_ranges_synced", &[]).await,
        1.0
    );
    let (status, body) = setup.readyz().await;
    assert_eq!((status, body.as_str()), (200, "ok: LimitRanges synced\n"));
}

/// A closed stream is watched again from the last resourceVersion seen, without a relist,
/// and the event sent meanwhile arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stream_is_resumed() {
    let api = FakeApi::start(&[]).await;
    api.set_namespaced(Answer::Forbidden);
    let setup = Setup::start(&api.url(), "10").await;
    setup.wait_ready().await;
    api.apply(defaults("first", "first", "1"));
    setup
        .until("the first ADDED applying", no_limits("first"), true)
        .await;
    let seen = api.resource_version();

    api.close_streams();
    api.apply(defaults("second", "second", "1"));
    setup
        .until(
            "the ADDED sent around the reconnect applying",
            no_limits("second"),
            true,
        )
        .await;
    let watches = api.watches();
    assert_eq!(watches.len(), 2, "{watches:?}");
    assert!(
        watches[1].contains(&format!("resourceVersion={seen}&"))
            || watches[1].ends_with(&format!("resourceVersion={seen}")),
        "resumed from {seen}: {watches:?}"
    );
    assert_eq!(api.cluster_lists(), 1, "no relist");
    assert!(setup.allowed(no_limits("first")).await);
}

/// /readyz waits for the first list, then reports it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_the_first_list() {
    let api = FakeApi::start(&[defaults("team", "defaults", "1")]).await;
    api.set_lists(Answer::Hang);
    let setup = Setup::start(&api.url(), "60").await;
    eventually("the list requested", || async {
        (api.cluster_lists() == 1).then_some(())
    })
    .await;
    let (status, body) = setup.readyz().await;
    assert_eq!(status, 503);
    assert_eq!(
        body,
        "not ready: waiting for the first list of LimitRanges (at most 60 s, --limit-ranges-sync-timeout)\n"
    );
    assert_eq!(
        setup.metric("deployguard_limit_ranges_synced", &[]).await,
        0.0
    );

    api.set_lists(Answer::Normal);
    assert_eq!(setup.wait_ready().await, "ok: LimitRanges synced\n");
    assert_eq!(
        setup.metric("deployguard_limit_ranges_synced", &[]).await,
        1.0
    );
    assert!(setup.allowed(no_limits("team")).await);
}

/// An API that never answers: ready after the sync timeout, saying it has no LimitRange
/// data; a live read gives up within its bound and the denial stands; once the API
/// answers, the view syncs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_that_never_answers_is_waited_for_only_until_the_sync_timeout() {
    let api = FakeApi::start(&[defaults("team", "defaults", "1")]).await;
    api.set_lists(Answer::Hang);
    api.set_namespaced(Answer::Hang);
    let started = Instant::now();
    let setup = Setup::start(&api.url(), "1").await;
    let body = setup.wait_ready().await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "ready before the timeout"
    );
    assert!(
        body.starts_with("ok, without LimitRange data: no complete list of LimitRanges within 1 s"),
        "{body}"
    );
    assert_eq!(
        setup.metric("deployguard_limit_ranges_synced", &[]).await,
        0.0
    );

    let asked = Instant::now();
    let (allowed, message) = setup.judge(no_limits("team")).await;
    let took = asked.elapsed();
    assert!(!allowed, "no LimitRange data: denied");
    assert!(message.contains("(cpu-limit)"), "{message}");
    assert!(
        took >= Duration::from_millis(900),
        "waited for the live read: {took:?}"
    );
    assert!(took < WEBHOOK_TIMEOUT, "{took:?}");
    let timeout = [("outcome", "timeout")];
    assert_eq!(
        setup
            .metric("deployguard_limit_range_live_reads_total", &timeout)
            .await,
        1.0
    );

    api.set_lists(Answer::Normal);
    eventually("/readyz reporting the late sync", || async {
        (setup.readyz().await == (200, "ok: LimitRanges synced\n".to_owned())).then_some(())
    })
    .await;
    assert_eq!(
        setup.metric("deployguard_limit_ranges_synced", &[]).await,
        1.0
    );
    assert!(setup.allowed(no_limits("team")).await);
}

/// Nothing listens where the API should be: the watch keeps failing (counted), the server
/// is ready after the sync timeout, and live reads fail fast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_is_waited_for_only_until_the_sync_timeout() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let setup = Setup::start(&url, "1").await;
    let (status, _) = setup.readyz().await;
    assert_eq!(status, 503, "not ready at once");
    let body = setup.wait_ready().await;
    assert!(body.starts_with("ok, without LimitRange data"), "{body}");
    assert!(
        setup
            .metric("deployguard_limit_range_watch_errors_total", &[])
            .await
            >= 1.0
    );
    assert_eq!(
        setup.metric("deployguard_limit_ranges_synced", &[]).await,
        0.0
    );
    let (allowed, _) = setup.judge(no_limits("team")).await;
    assert!(!allowed);
    let failed = [("outcome", "failed")];
    assert_eq!(
        setup
            .metric("deployguard_limit_range_live_reads_total", &failed)
            .await,
        1.0
    );
}

/// A LimitRange stored but not yet delivered by the watch is found by the live read made
/// before a denial, and the Deployment is allowed; the watch's view is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_read_finds_what_the_watch_has_not_delivered() {
    let api = FakeApi::start(&[]).await;
    let setup = Setup::start(&api.url(), "10").await;
    setup.wait_ready().await;
    api.apply_silently(defaults("fresh", "fresh-defaults", "1"));

    assert!(setup.allowed(no_limits("fresh")).await);
    // Its bounds apply too: the CPU limit is defaulted, the memory limit is above the max.
    let too_much_memory = deployment("fresh", "big", json!({"limits": {"memory": "2Gi"}}));
    let (allowed, message) = setup.judge(too_much_memory).await;
    assert!(!allowed);
    assert!(message.contains("(limit-range)"), "{message}");
    assert!(!message.contains("(cpu-limit)"), "{message}");
    let found = [("outcome", "found")];
    assert_eq!(
        setup
            .metric("deployguard_limit_range_live_reads_total", &found)
            .await,
        2.0
    );
    assert_eq!(setup.metric("deployguard_limit_ranges", &[]).await, 0.0);
    assert_eq!(
        api.requests(|r| r.starts_with("/api/v1/namespaces/fresh/limitranges"))
            .len(),
        2
    );
}

/// `--limit-ranges watch` with no API to watch refuses to start, saying why.
#[test]
fn watch_without_an_api_refuses_to_start() {
    let home = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_deployguard"))
        .args([
            "serve",
            "--limit-ranges",
            "watch",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--metrics-listen", "127.0.0.1:0", "--log-format", "text"])
        .env_clear()
        .env("HOME", home.path())
        .env("KUBECONFIG", home.path().join("missing"))
        .env("DEPLOYGUARD_DEV_CERT_DIR", home.path().join("dev"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("--limit-ranges watch: no Kubernetes API to watch"),
        "{stderr}"
    );
}

/// The built binary, configured as in a cluster through a kubeconfig: HTTPS to the API
/// with its CA (kube-rs's rustls on aws-lc-rs, the provider `serve` installs), a bearer
/// token, the watch synced, and a template judged with the listed LimitRange.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_watches_through_a_kubeconfig_over_https() {
    let pki = Pki::new("API and webhook CA");
    let api = FakeApi::start_tls(&[defaults("team", "defaults", "1")], &pki.server(2090)).await;
    let temp = tempfile::tempdir().unwrap();
    let kubeconfig = temp.path().join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig(&pki.ca_pem, "s3cr3t-token")).unwrap();
    let pair = pki.server(2090);
    let (cert, key) = (temp.path().join("tls.crt"), temp.path().join("tls.key"));
    std::fs::write(&cert, pair.cert_pem).unwrap();
    std::fs::write(&key, pair.key_pem).unwrap();

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_deployguard"))
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .args(["--log-format", "text", "--limit-ranges", "watch"])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("RUST_LOG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("DEPLOYGUARD_KUBE_API_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let log = log_lines(child.stdout.take().unwrap());
    let ready = wait_for_line(&log, "deployguard ready");
    let listen = ready
        .split_whitespace()
        .find_map(|word| word.strip_prefix("listen="))
        .unwrap()
        .to_owned();

    let client = client(&pki.ca_pem, Http::One);
    let readyz = format!("https://{listen}/readyz");
    eventually("/readyz reporting the sync", || async {
        let response = client.get(&readyz).send().await.ok()?;
        (response.text().await.ok()? == "ok: LimitRanges synced\n").then_some(())
    })
    .await;
    wait_for_line(&log, "LimitRanges listed");
    let url = format!("https://{listen}/validate");
    let (_, _, answer) = post(&client, Http::One, &url, no_limits("team")).await;
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let authorizations = api.authorizations();
    assert!(!authorizations.is_empty());
    assert!(
        authorizations.iter().all(|a| a == "Bearer s3cr3t-token"),
        "{authorizations:?}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// The child's log, line by line, from a reader thread.
fn log_lines(stdout: std::process::ChildStdout) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

fn wait_for_line(lines: &std::sync::mpsc::Receiver<String>, text: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(text) => return line,
            Ok(line) => seen.push(line),
            Err(_) => panic!("no log line with {text:?}; log:\n{}", seen.join("\n")),
        }
    }
}
