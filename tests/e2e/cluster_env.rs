//! The control plane `tests/e2e/cluster up DIR` started, read from `DIR/env`
//! (`DEPLOYGUARD_E2E_DIR` names DIR), and kubectl as its users.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Cluster {
    pub dir: PathBuf,
    pub admin_kubeconfig: PathBuf,
    pub alice_kubeconfig: PathBuf,
    pub api_server: String,
    pub kubectl_bin: PathBuf,
    pub ca_file: PathBuf,
}

/// The cluster of this run; a test run without one fails with what to do.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let dir = std::env::var_os("DEPLOYGUARD_E2E_DIR")
            .map(PathBuf::from)
            .expect(
                "DEPLOYGUARD_E2E_DIR is not set: run the end-to-end tests with tests/e2e/run \
             (or `tests/e2e/cluster up DIR` and DEPLOYGUARD_E2E_DIR=DIR)",
            );
        let env = read_env(&dir.join("env"));
        let get = |key: &str| {
            env.get(key)
                .unwrap_or_else(|| panic!("{}/env has no {key}", dir.display()))
                .clone()
        };
        Cluster {
            admin_kubeconfig: get("KUBECONFIG").into(),
            alice_kubeconfig: get("ALICE_KUBECONFIG").into(),
            api_server: get("API_SERVER"),
            kubectl_bin: get("KUBECTL").into(),
            ca_file: get("CLUSTER_CA").into(),
            dir,
        }
    })
}

/// `NAME='value'` lines as the harness writes them (single-quoted, `'\''` for a quote).
fn read_env(path: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (is the cluster up?)", path.display()));
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| {
            let value = value.trim();
            let inner = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\''));
            let value = inner.map_or(value.to_string(), |v| v.replace(r"'\''", "'"));
            (key.to_string(), value)
        })
        .collect()
}

impl Cluster {
    pub fn admin(&self) -> Kubectl {
        Kubectl::new(&self.admin_kubeconfig)
    }

    pub fn alice(&self) -> Kubectl {
        Kubectl::new(&self.alice_kubeconfig)
    }
}

/// What a kubectl (or helm) run printed.
#[derive(Debug)]
pub struct Outcome {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    fn of(command: &mut Command, stdin: Option<&str>) -> Outcome {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{command:?}: {e}"));
        let mut input = child.stdin.take().expect("stdin is piped");
        input
            .write_all(stdin.unwrap_or("").as_bytes())
            .expect("write stdin");
        drop(input);
        let output = child.wait_with_output().expect("wait for the command");
        Outcome {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// kubectl with one user's kubeconfig.
#[derive(Clone)]
pub struct Kubectl {
    kubeconfig: PathBuf,
}

impl Kubectl {
    pub fn new(kubeconfig: &Path) -> Kubectl {
        Kubectl {
            kubeconfig: kubeconfig.to_path_buf(),
        }
    }

    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Outcome {
        let mut command = Command::new(&cluster().kubectl_bin);
        command.env("KUBECONFIG", &self.kubeconfig).args(args);
        Outcome::of(&mut command, stdin)
    }

    /// Runs and asserts success; the standard output.
    pub fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let outcome = self.run(args, stdin);
        assert!(
            outcome.success,
            "kubectl {} failed:\n{}{}",
            args.join(" "),
            outcome.stdout,
            outcome.stderr
        );
        outcome.stdout
    }

    pub fn apply(&self, yaml: &str) -> Outcome {
        self.run(&["apply", "-f", "-"], Some(yaml))
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let text = self.ok(&all, None);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("kubectl {args:?}: {e}: {text}"))
    }
}

pub fn helm(args: &[&str]) -> Outcome {
    let helm = std::env::var_os("HELM").unwrap_or_else(|| "helm".into());
    let mut command = Command::new(helm);
    command
        .env("KUBECONFIG", &cluster().admin_kubeconfig)
        .args(args);
    Outcome::of(&mut command, None)
}

/// Polls `check` until it returns Some, for at most `patience`.
pub fn eventually<T>(what: &str, patience: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {patience:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The Pods of `namespace` matching `selector`, once there are `count` of them (what a
/// controller makes appears a moment after the API server accepted its owner).
pub fn pods_eventually(namespace: &str, selector: &str, count: usize) -> Vec<Value> {
    let admin = cluster().admin();
    eventually(
        &format!("{count} Pods {selector} in {namespace}"),
        Duration::from_secs(60),
        || {
            let list = admin.json(&["get", "pods", "-n", namespace, "-l", selector]);
            let items = list["items"].as_array().cloned().unwrap_or_default();
            (items.len() == count).then_some(items)
        },
    )
}

/// The literal value of env variable `name` of a stored Pod's first container.
pub fn env_value(pod: &Value, name: &str) -> Option<String> {
    pod["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
        .map(str::to_string)
}
