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
        text.contains("noncompliant-deployment.yaml:4 Deployment/shop/payments container \"payments\": no readinessProbe"),
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
        stderr.contains("-:4: document 1: spec.containers[0].resources.limits.memory: \"12Mb\""),
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

/// LimitRanges among the inputs apply to their namespace: defaults satisfy the limit
/// rules and are reported with their source; bounds deny; `--namespace` places
/// documents without one.
#[test]
fn limit_ranges_among_the_inputs_count() {
    let example = repo("examples/limitrange-team.yaml");
    let output = deployguard(&["check", "--output", "json", &example], None);
    assert_eq!(exit_code(&output), 1, "{output:?}");
    let report = stdout_json(&output);
    let results = report["results"].as_array().unwrap();
    let web = results.iter().find(|r| r["name"] == "web").unwrap();
    assert_eq!(web["findings"], json!([]), "{web}");
    assert_eq!(
        web["limitRangeDefaults"][0],
        json!({"container": "web", "field": "limits.cpu", "value": "800m", "limitRange": "team-defaults"})
    );
    let heavy = results.iter().find(|r| r["name"] == "batch-heavy").unwrap();
    let rules: Vec<&str> = heavy["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["limit-range"], "{heavy}");
    assert!(
        heavy["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("cpu limit 2 is above the maximum 800m")
    );

    // Without the LimitRange's namespace the Deployments land elsewhere: no defaults.
    let text = std::fs::read_to_string(&example)
        .unwrap()
        .replace("  namespace: team-a\n", "");
    // The `web` result of `check --namespace team-b` on `manifest`.
    let web_in_team_b = |manifest: &str| {
        let output = deployguard(
            &["check", "--output", "json", "--namespace", "team-b", "-"],
            Some(manifest.as_bytes()),
        );
        let json = stdout_json(&output);
        let results = json["results"].as_array().unwrap();
        results
            .iter()
            .find(|r| r["name"] == "web")
            .cloned()
            .unwrap()
    };
    let web = web_in_team_b(&text);
    assert_eq!(web["namespace"], "team-b");
    assert_eq!(
        web["findings"],
        json!([]),
        "the LimitRange moved with them: {web}"
    );
    let split = text.replacen(
        "kind: LimitRange\nmetadata:\n",
        "kind: LimitRange\nmetadata:\n  namespace: team-a\n",
        1,
    );
    let web = web_in_team_b(&split);
    assert!(web["findings"].to_string().contains("cpu-limit"), "{web}");

    // `mutate` sizes the Go runtime from the limits the pods will get.
    let mutated = deployguard(&["mutate", "--output", "json", &example], None);
    let documents = stdout_json(&mutated);
    let env = &documents[1]["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(
        env,
        &json!([{"name": "GOMAXPROCS", "value": "2"}, {"name": "GOMEMLIMIT", "value": "460MiB"}])
    );
}

/// Workloads judged less than fully say so and why.
#[test]
fn skips_are_visible() {
    let manifest = r#"
apiVersion: v1
kind: Pod
metadata: {name: system, namespace: kube-system}
spec: {containers: [{name: a}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: owned
  annotations: {deployguard.io/exempt: "liveness-probe,no-such-rule"}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: r, uid: "1", controller: true}]
spec: {containers: [{name: a}]}
"#;
    let json = stdout_json(&deployguard(
        &["check", "--output", "json", "-"],
        Some(manifest.as_bytes()),
    ));
    assert_eq!(
        json["results"][0]["skipped"],
        json!(["namespace \"kube-system\" is excluded: not judged"])
    );
    // Applied by no known user, the owner reference is not trusted: judged in full.
    assert_eq!(
        json["results"][1]["skipped"],
        json!(["exemption annotation ignored: the policy does not allow exemptions"])
    );
    assert_eq!(
        json["results"][1]["notes"],
        json!([
            "owner reference claims a controller, but the request names no user: judged in full"
        ])
    );
    let controller = "system:serviceaccount:kube-system:replicaset-controller";
    let as_controller = stdout_json(&deployguard(
        &["check", "--output", "json", "--as", controller, "-"],
        Some(manifest.as_bytes()),
    ));
    assert_eq!(
        as_controller["results"][1]["skipped"],
        json!([
            "exemption annotation ignored: the policy does not allow exemptions",
            "controller-owned: judged at most in audit"
        ])
    );
    assert!(as_controller["results"][1].get("notes").is_none());
    let text = deployguard(&["check", "--as", "alice", "-"], Some(manifest.as_bytes()));
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        stdout.contains("Pod/kube-system/system skipped: namespace \"kube-system\" is excluded"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Pod/default/owned note: owner reference claims a controller, but the request comes from \"alice\": judged in full"),
        "{stdout}"
    );
}

/// Grants are shown by `check`, and `--at` fixes the day they are judged on.
#[test]
fn grants_are_shown_and_expire_by_the_given_date() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "exemptions:\n  grants:\n  - {namespace: default, kind: Pod, rules: [liveness-probe, readiness-probe], reason: v2 rewrite, expires: 2027-03-31}\n",
    )
    .unwrap();
    let manifest = "apiVersion: v1\nkind: Pod\nmetadata: {name: legacy}\nspec: {containers: [{name: a, resources: {limits: {cpu: 1, memory: 1Gi}}}]}\n";
    let config = policy.display().to_string();
    // A file, not stdin: a bad --at ends the process before it would read stdin.
    let pod = dir.path().join("pod.yaml");
    std::fs::write(&pod, manifest).unwrap();
    let pod = pod.display().to_string();
    let on = |day: &str| deployguard(&["check", "--config", &config, "--at", day, &pod], None);
    let before = on("2027-03-31");
    let stdout = String::from_utf8_lossy(&before.stdout);
    assert_eq!(exit_code(&before), 0, "{stdout}");
    assert!(
        stdout.contains("skipped: exempted from liveness-probe, readiness-probe by grant 0 of the policy: v2 rewrite (until 2027-03-31)"),
        "{stdout}"
    );
    let after = on("2027-04-01");
    let stdout = String::from_utf8_lossy(&after.stdout);
    assert_eq!(exit_code(&after), 1, "{stdout}");
    assert!(
        stdout.contains("note: grant 0 of the policy (liveness-probe, readiness-probe) expired after 2027-03-31: not applied"),
        "{stdout}"
    );
    let bad_date = on("2027-04-31");
    assert_eq!(exit_code(&bad_date), 2);
    assert!(
        String::from_utf8_lossy(&bad_date.stderr)
            .contains("\"2027-04-31\" is not a date written YYYY-MM-DD")
    );
}

/// microservices-demo's cartservice: readiness leaves periodSeconds to its default, so
/// once defaulted its probes are identical — as the webhook in a cluster sees them.
#[test]
fn probe_identity_uses_the_api_servers_defaults() {
    let cart = corpus()
        .join("GoogleCloudPlatform_microservices-demo__kubernetes-manifests__cartservice.yaml");
    let json = stdout_json(&deployguard(
        &["check", "--output", "json", &cart.display().to_string()],
        None,
    ));
    let found = json["results"][0]["findings"].to_string();
    assert!(
        found.contains("livenessProbe is identical to readinessProbe"),
        "{found}"
    );
}

/// Re-running `mutate` on a manifest whose limits were edited updates the values it wrote.
#[test]
fn mutate_again_after_editing_limits_updates_its_values() {
    let example = repo("examples/compliant-deployment.yaml");
    let once = deployguard(&["mutate", &example], None);
    assert_eq!(exit_code(&once), 0);
    let once = String::from_utf8(once.stdout).unwrap();
    let doc: Value = serde_saphyr::from_str(once.trim_start_matches("---\n")).unwrap();
    let limits = doc["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]
        .as_str()
        .unwrap()
        .to_owned();
    let edited = once.replacen(&format!("memory: {limits}"), "memory: 2Gi", 1);
    assert_ne!(edited, once);
    let twice = deployguard(
        &["mutate", "--output", "json", "-"],
        Some(edited.as_bytes()),
    );
    let env = &stdout_json(&twice)[0]["spec"]["template"]["spec"]["containers"][0]["env"];
    let gomemlimit: Vec<&Value> = env
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "GOMEMLIMIT")
        .collect();
    assert_eq!(
        gomemlimit,
        [&json!({"name": "GOMEMLIMIT", "value": "1843MiB"})],
        "{env}"
    );
}
