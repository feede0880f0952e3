//! deployguard as the end-to-end tests run it: the chart installed with Helm, its
//! webhooks pointed (`webhooks.url`) at `deployguard serve` on the host, which runs
//! with the chart's certificate, policy and ServiceAccount token.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

use super::cluster_env::{cluster, eventually, helm};
use super::namespaces::{Namespace, SCOPE_LABEL};
use super::openmetrics::{Metrics, parse_openmetrics};

/// The chart in the repository.
pub fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/deployguard")
}

/// The binary under test: DEPLOYGUARD_BIN (CI's static release build), else this build's.
pub fn binary() -> PathBuf {
    std::env::var_os("DEPLOYGUARD_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_deployguard")),
        PathBuf::from,
    )
}

/// A free loopback port. It is closed again before the server binds it; the chart
/// must know it first (it goes into webhooks.url), so port 0 cannot be used.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

pub struct Release {
    /// Release name, namespace and the chart's full name (they are all the same).
    pub name: String,
    pub port: u16,
    /// The release's files (certificate, policy, kubeconfigs, server logs), kept in
    /// the cluster's directory for a look after a failure.
    pub work: PathBuf,
    _namespace: Namespace,
}

impl Release {
    /// Installs the chart as release `name` in namespace `name`, its webhooks calling
    /// 127.0.0.1 and seeing only namespaces labelled for it; `values` is YAML added last.
    pub fn install(name: &str, values: &str) -> Release {
        assert!(
            name.contains("deployguard"),
            "the chart's full name is the release name only when it contains \"deployguard\""
        );
        let namespace = Namespace::create(name, None);
        let port = free_port();
        let work = cluster().dir.join("releases").join(name);
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).expect("release directory");
        let scoped = format!(
            "webhooks:\n  url: https://127.0.0.1:{port}\n  namespaceSelector:\n    matchLabels:\n      {SCOPE_LABEL}: {name}\n"
        );
        let scoped_file = work.join("scope.yaml");
        std::fs::write(&scoped_file, scoped).expect("write values");
        let values_file = work.join("values.yaml");
        std::fs::write(&values_file, values).expect("write values");
        let chart = chart();
        let outcome = helm(&[
            "install",
            name,
            chart.to_str().expect("utf-8 path"),
            "-n",
            name,
            "-f",
            scoped_file.to_str().expect("utf-8 path"),
            "-f",
            values_file.to_str().expect("utf-8 path"),
        ]);
        assert!(
            outcome.success,
            "helm install {name}: {}{}",
            outcome.stdout, outcome.stderr
        );
        Release {
            name: name.to_string(),
            port,
            work,
            _namespace: namespace,
        }
    }

    /// A namespace this release's webhooks judge.
    pub fn namespace(&self, name: &str) -> Namespace {
        Namespace::create(name, Some(&self.name))
    }

    fn secret_file(&self, key: &str, into: &str) -> PathBuf {
        let secret = cluster().admin().json(&[
            "get",
            "secret",
            &format!("{}-tls", self.name),
            "-n",
            &self.name,
        ]);
        let encoded = secret["data"][key].as_str().expect("Secret key");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64 Secret data");
        let path = self.work.join(into);
        std::fs::write(&path, bytes).expect("write Secret data");
        path
    }

    /// The chart's policy file, as its ConfigMap holds it.
    pub fn policy_file(&self) -> PathBuf {
        let map = cluster().admin().json(&[
            "get",
            "configmap",
            &format!("{}-policy", self.name),
            "-n",
            &self.name,
        ]);
        let path = self.work.join("policy.yaml");
        std::fs::write(
            &path,
            map["data"]["policy.yaml"].as_str().expect("policy.yaml"),
        )
        .expect("write policy");
        path
    }

    /// A kubeconfig that acts as ServiceAccount `account` of `namespace`, with a token
    /// from the TokenRequest API: exactly that account's RBAC.
    pub fn service_account_kubeconfig(&self, namespace: &str, account: &str) -> PathBuf {
        let token = cluster().admin().ok(
            &["create", "token", account, "-n", namespace, "--duration=2h"],
            None,
        );
        let path = self.work.join(format!("{namespace}-{account}.kubeconfig"));
        std::fs::write(&path, token_kubeconfig(token.trim())).expect("write kubeconfig");
        path
    }

    /// `deployguard serve` on the release's port, with the chart's certificate, policy
    /// and ServiceAccount; `extra` flags are added.
    pub fn serve(&self, extra: &[&str]) -> Server {
        let cert = self.secret_file("tls.crt", "tls.crt");
        let key = self.secret_file("tls.key", "tls.key");
        let policy = self.policy_file();
        let kubeconfig = self.service_account_kubeconfig(&self.name, &self.name);
        Server::start(
            &ServerFiles {
                cert,
                key,
                policy,
                kubeconfig,
            },
            self.port,
            &self.work,
            extra,
        )
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        // The webhook configurations are cluster-wide: never leave them behind.
        let _ = helm(&["uninstall", &self.name, "-n", &self.name, "--wait"]);
    }
}

pub fn token_kubeconfig(token: &str) -> String {
    let cluster = cluster();
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: {}\n    certificate-authority: {}\n\
         users:\n- name: sa\n  user:\n    token: {token}\ncontexts:\n- name: sa\n  context:\n    cluster: e2e\n    user: sa\n\
         current-context: sa\n",
        cluster.api_server,
        cluster.ca_file.display()
    )
}

pub struct ServerFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub policy: PathBuf,
    pub kubeconfig: PathBuf,
}

/// A `deployguard serve` process; its JSON log goes to a file the tests read.
pub struct Server {
    child: Child,
    pub log: PathBuf,
    pub metrics: String,
}

impl Server {
    pub fn start(files: &ServerFiles, port: u16, work: &Path, extra: &[&str]) -> Server {
        let log = work.join(format!("serve-{port}.log"));
        let out = File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let listen = format!("127.0.0.1:{port}");
        let mut args: Vec<&str> = vec![
            "serve",
            "--listen",
            &listen,
            "--metrics-listen",
            "127.0.0.1:0",
            "--tls-cert",
            files.cert.to_str().expect("utf-8"),
            "--tls-key",
            files.key.to_str().expect("utf-8"),
            "--config",
            files.policy.to_str().expect("utf-8"),
            "--log-format",
            "json",
            "--limit-ranges",
            "watch",
            "--drain-delay",
            "0",
        ];
        args.extend_from_slice(extra);
        let child = Command::new(binary())
            .args(&args)
            .env("KUBECONFIG", &files.kubeconfig)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start deployguard serve");
        let mut server = Server {
            child,
            log,
            metrics: String::new(),
        };
        let ready = server.wait_for_log("deployguard ready", |line| {
            line["message"] == "deployguard ready"
        });
        let metrics = ready["metrics_listen"]
            .as_str()
            .expect("metrics_listen")
            .to_string();
        server.metrics = metrics;
        server
    }

    /// Every JSON log line so far.
    pub fn log_lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// The review lines so far.
    pub fn reviews(&self) -> Vec<Value> {
        self.log_lines()
            .into_iter()
            .filter(|line| line["message"] == "review")
            .collect()
    }

    pub fn wait_for_log(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let what = format!("{what} (log: {})", self.log.display());
        eventually(&what, Duration::from_secs(30), || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "deployguard serve exited ({status}) waiting for {what}:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            self.log_lines().into_iter().find(&matches)
        })
    }

    /// The review line for an object, waited for (the API server may still be calling).
    pub fn review_of(
        &mut self,
        endpoint: &str,
        kind: &str,
        namespace: &str,
        name_prefix: &str,
    ) -> Value {
        let what = format!("{endpoint} review of {kind} {namespace}/{name_prefix}*");
        self.wait_for_log(&what, |line| {
            let f = line;
            f["message"] == "review"
                && f["endpoint"] == endpoint
                && f["kind"] == kind
                && f["namespace"] == namespace
                && f["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(name_prefix))
        })
    }

    /// The sum of a metric's samples whose labels contain every `labels` pair.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.scrape().value(name, labels)
    }

    /// One scrape of the metrics port, read by the integration tests' strict
    /// OpenMetrics reader (plain HTTP/1.0: the answer ends when the connection closes).
    pub fn scrape(&self) -> Metrics {
        let mut stream = TcpStream::connect(&self.metrics).expect("connect to the metrics port");
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: metrics\r\n\r\n")
            .expect("request metrics");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read metrics");
        let (_, text) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
        let samples = parse_openmetrics(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        Metrics {
            text: text.to_string(),
            samples,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
