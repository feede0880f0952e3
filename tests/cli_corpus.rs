//! The CLI over the whole corpus and the examples: the contract of `check`, `mutate`,
//! `review` and `config`, exit codes, golden outputs, and nothing panics.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
}

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .display()
        .to_string()
}

fn deployguard(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_deployguard"));
    command.args(args).env("NO_COLOR", "1");
    match stdin {
        None => command.output().expect("run deployguard"),
        Some(input) => {
            use std::io::Write;
            let mut child = command
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn deployguard");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input)
                .expect("write stdin");
            child.wait_with_output().expect("wait deployguard")
        }
    }
}

fn exit_code(output: &Output) -> i32 {
    output
        .status
        .code()
        .unwrap_or_else(|| panic!("deployguard died by a signal: {output:?}"))
}

fn stdout_json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {output:?}"))
}

#[test]
fn check_judges_the_whole_corpus_without_errors() {
    let output = deployguard(
        &["check", "--output", "json", &corpus().display().to_string()],
        None,
    );
    let report = stdout_json(&output);
    assert_eq!(
        exit_code(&output),
        1,
        "the corpus has enforce findings: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = &report["summary"];
    assert!(summary["files"].as_u64().unwrap() >= 240, "{summary}");
    assert!(summary["workloads"].as_u64().unwrap() >= 300, "{summary}");
    assert_eq!(summary["errors"], 0, "{}", report["errors"]);
    for result in report["results"].as_array().unwrap() {
        for key in [
            "source",
            "index",
            "apiVersion",
            "kind",
            "namespace",
            "name",
            "findings",
        ] {
            assert!(result.get(key).is_some(), "{key} missing in {result}");
        }
        for finding in result["findings"].as_array().unwrap() {
            for key in ["rule", "mode", "container", "message"] {
                assert!(finding[key].is_string(), "{key} in {finding}");
            }
        }
    }
}

#[test]
fn list_items_and_indexes() {
    let file = corpus().join("istio_istio__pkg__kube__inject__testdata__inject__list.yaml");
    let report = stdout_json(&deployguard(
        &["check", "--output", "json", &file.display().to_string()],
        None,
    ));
    let results = report["results"].as_array().unwrap();
    assert!(results.len() >= 2, "{report}");
    for (k, result) in results.iter().enumerate() {
        assert_eq!(result["index"], 0);
        assert_eq!(result["item"], k);
    }
}

#[test]
fn examples_exit_codes() {
    let good = deployguard(
        &["check", &repo("examples/compliant-deployment.yaml")],
        None,
    );
    assert_eq!(exit_code(&good), 0, "{good:?}");
    let bad = deployguard(
        &["check", &repo("examples/noncompliant-deployment.yaml")],
        None,
    );
    assert_eq!(exit_code(&bad), 1);
    let text = String::from_utf8_lossy(&bad.stdout);
    assert!(
        text.contains("noncompliant-deployment.yaml:0 Deployment/shop/payments container \"payments\": no readinessProbe"),
        "{text}"
    );
    assert!(text.contains("(readiness-probe) [enforce]"), "{text}");
    assert!(
        text.lines().last().unwrap().contains("1 would be denied"),
        "{text}"
    );
}

#[test]
fn input_errors_name_the_file_and_document_and_exit_2() {
    let input = b"apiVersion: v1\nkind: ConfigMap\n---\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    resources: {limits: {memory: 12Mb}}\n---\nkind: [oops\n";
    let output = deployguard(&["check", "--output", "json", "-"], Some(input));
    assert_eq!(exit_code(&output), 2);
    let report = stdout_json(&output);
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{report}");
    assert_eq!(
        (errors[0]["source"].as_str(), errors[0]["index"].as_u64()),
        (Some("-"), Some(1))
    );
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("spec.containers[0].resources.limits.memory")
    );
    assert_eq!(errors[1]["index"], 2);
    let text = deployguard(&["check", "-"], Some(input));
    let stderr = String::from_utf8_lossy(&text.stderr);
    assert!(
        stderr.contains("-: document 1: spec.containers[0].resources.limits.memory: \"12Mb\""),
        "{stderr}"
    );
    let missing = deployguard(&["check", "/nonexistent/file.yaml"], None);
    assert_eq!(exit_code(&missing), 2);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/file.yaml"));
}

#[test]
fn config_errors_exit_2_naming_the_key() {
    let dir = tempdir();
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, "rules:\n  cpu-limits: warn\n").unwrap();
    let output = deployguard(
        &[
            "check",
            "--config",
            &policy.display().to_string(),
            &repo("examples"),
        ],
        None,
    );
    assert_eq!(exit_code(&output), 2);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("rules.cpu-limits"),
        "{output:?}"
    );
    let printed = deployguard(&["config", "default"], None);
    std::fs::write(&policy, &printed.stdout).unwrap();
    let valid = deployguard(&["config", "validate", &policy.display().to_string()], None);
    assert_eq!(exit_code(&valid), 0, "{valid:?}");
    let text = String::from_utf8_lossy(&printed.stdout);
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let is_key = line.contains(':') && !line.trim_start().starts_with('#');
        let commented = line.contains('#') || (i > 0 && lines[i - 1].trim_start().starts_with('#'));
        assert!(!is_key || commented, "key without a comment: {line}");
    }
}

#[test]
fn warn_rollout_turns_denials_into_warnings() {
    let dir = tempdir();
    let policy = dir.join("warn.yaml");
    std::fs::write(&policy, "defaultMode: warn\n").unwrap();
    let output = deployguard(
        &[
            "check",
            "--config",
            &policy.display().to_string(),
            &repo("examples/noncompliant-deployment.yaml"),
        ],
        None,
    );
    assert_eq!(exit_code(&output), 0, "{output:?}");
}

#[test]
fn mutate_is_idempotent_over_the_corpus() {
    let dir = tempdir();
    let first = deployguard(&["mutate", &corpus().display().to_string()], None);
    assert_eq!(
        exit_code(&first),
        0,
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let once = dir.join("once.yaml");
    std::fs::write(&once, &first.stdout).unwrap();
    let second = deployguard(&["mutate", &once.display().to_string()], None);
    assert_eq!(exit_code(&second), 0);
    assert_eq!(
        String::from_utf8_lossy(&second.stdout),
        String::from_utf8_lossy(&first.stdout)
    );
    let injected = String::from_utf8_lossy(&first.stdout)
        .matches("deployguard.io/injected")
        .count();
    assert!(
        injected >= 90,
        "templates and pods alike are injected: {injected}"
    );
    // The mutated corpus judges like the original, save for env the injection added.
    let check = stdout_json(&deployguard(
        &["check", "--output", "json", &once.display().to_string()],
        None,
    ));
    assert_eq!(check["summary"]["errors"], 0);
}

#[test]
fn mutate_json_keeps_lists_as_lists_and_untouched_documents_verbatim() {
    let file = corpus().join("istio_istio__pkg__kube__inject__testdata__inject__list.yaml");
    let output = deployguard(
        &["mutate", "--output", "json", &file.display().to_string()],
        None,
    );
    let docs = stdout_json(&output);
    assert_eq!(docs[0]["kind"], "List");
    let input = "# keep this comment\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n";
    let output = deployguard(&["mutate", "-"], Some(input.as_bytes()));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("---\n{input}")
    );
}

/// Corpus AdmissionReviews, and bare AdmissionRequests wrapped in one.
fn corpus_reviews() -> Vec<(String, Vec<u8>)> {
    let mut reviews = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for path in names
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        let text = std::fs::read(&path).unwrap();
        let Ok(value) = serde_json::from_slice::<Value>(&text) else {
            continue;
        };
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if value["kind"] == "AdmissionReview" {
            reviews.push((name, text));
        } else if value.get("uid").is_some() && value.get("operation").is_some() {
            let wrapped = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": value});
            reviews.push((name, serde_json::to_vec(&wrapped).unwrap()));
        }
    }
    reviews
}

#[test]
fn review_answers_every_corpus_request_on_both_endpoints() {
    let reviews = corpus_reviews();
    assert!(reviews.len() >= 25, "{}", reviews.len());
    for (name, body) in &reviews {
        let request: Value = serde_json::from_slice(body).unwrap();
        for endpoint in ["validate", "mutate"] {
            let output = deployguard(&["review", "--endpoint", endpoint, "-"], Some(body));
            if exit_code(&output) == 2 {
                // Test fixtures that drop fields the API server always sends get a clear error.
                let stderr = String::from_utf8_lossy(&output.stderr);
                assert!(
                    stderr.contains("is not an AdmissionReview: "),
                    "{name}: {stderr}"
                );
                continue;
            }
            assert_eq!(
                exit_code(&output),
                0,
                "{name} {endpoint}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let response = stdout_json(&output);
            assert_eq!(response["apiVersion"], request["apiVersion"], "{name}");
            assert_eq!(
                response["response"]["uid"], request["request"]["uid"],
                "{name}"
            );
            if endpoint == "mutate" {
                assert_eq!(response["response"]["allowed"], true, "{name}");
            } else {
                assert!(response["response"].get("patch").is_none(), "{name}");
            }
        }
    }
}

#[test]
fn golden_outputs() {
    let check = |files: &[&str]| {
        let paths: Vec<String> = files
            .iter()
            .map(|f| corpus().join(f).display().to_string())
            .collect();
        let mut args = vec!["check", "--output", "json"];
        args.extend(paths.iter().map(String::as_str));
        let mut report = stdout_json(&deployguard(&args, None));
        for result in report["results"].as_array_mut().unwrap() {
            let source = result["source"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned();
            result["source"] = json!(source);
        }
        report
    };
    insta::assert_json_snapshot!(
        "check_corpus_subset",
        check(&[
            "GoogleCloudPlatform_microservices-demo__kubernetes-manifests__checkoutservice.yaml",
            "istio_istio__pkg__kube__inject__testdata__inject__native-sidecar.yaml",
            "kubernetes_website__content__en__examples__application__job__job-sidecar.yaml",
            "gjkim42_gomaxprocs-injector__gomaxprocs-injector.yaml",
            "FairwindsOps_polaris__test__checks__resourceRange__failure.cpu-number.yaml",
        ])
    );
    let mut reviews = serde_json::Map::new();
    for (name, body) in corpus_reviews() {
        for endpoint in ["validate", "mutate"] {
            let output = deployguard(&["review", "--endpoint", endpoint, "-"], Some(&body));
            let answer = match exit_code(&output) {
                0 => stdout_json(&output),
                _ => json!({"error": String::from_utf8_lossy(&output.stderr)}),
            };
            reviews.insert(format!("{name} {endpoint}"), answer);
        }
    }
    insta::assert_json_snapshot!("review_corpus", reviews);
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "deployguard-cli-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
