//! `check`'s reports as their readers see them: real line numbers on multi-document files,
//! scans that finish over repositories holding more than manifests, the wording of the
//! text output, and the SARIF, JUnit, GitHub and PolicyReport formats. Their schemas and
//! parsers are applied by `tests/fixtures/reports/check_formats.py` (run by `.ci/run`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn corpus(file: &str) -> PathBuf {
    root().join("../shared/corpus").join(file)
}

const FIXTURES: &str = "tests/fixtures/reports";

/// Runs deployguard in `cwd` (the repository root when `None`).
fn run_in(cwd: Option<&Path>, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deployguard"))
        .args(args)
        .current_dir(cwd.unwrap_or(root()))
        .env("NO_COLOR", "1")
        .output()
        .expect("run deployguard")
}

/// The requester the fixtures' controller-owned Pod is trusted from (judged in audit).
const CONTROLLER: &str = "system:serviceaccount:kube-system:replicaset-controller";

fn run(args: &[&str]) -> Output {
    run_in(None, args)
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exit code")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(output)))
}

fn array(value: &Value) -> &Vec<Value> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
}

/// The 1-based line where each document's content starts, counted independently of the
/// CLI: after each `---` line, the first line that is neither blank nor a comment.
fn document_starts(text: &str) -> Vec<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let content = |from: usize| {
        (from..lines.len())
            .find(|&k| {
                let line = lines[k].trim();
                !line.is_empty() && !line.starts_with('#') && line != "---"
            })
            .map(|k| k + 1)
    };
    let mut starts = Vec::new();
    let first_marker = lines.iter().position(|l| l.trim_end() == "---");
    if let Some(start) = content(0).filter(|&s| first_marker.is_none_or(|m| s <= m)) {
        starts.push(start);
    }
    for (k, line) in lines.iter().enumerate() {
        if line.trim_end() == "---" {
            starts.push(content(k + 1).unwrap_or(k + 1));
        }
    }
    starts
}

/// microservices-demo's release manifest: 35 documents, a licence header, and the
/// Deployment the issue found at line 441.
#[test]
fn results_carry_the_line_where_each_object_starts() {
    let file = corpus("GoogleCloudPlatform_microservices-demo__release__kubernetes-manifests.yaml");
    let path = file.display().to_string();
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let starts = document_starts(&text);
    let report = json(&run(&["check", "--output", "json", &path]));
    let results = array(&report["results"]);
    assert!(results.len() >= 10, "{report}");
    for result in results {
        let index = result["index"].as_u64().unwrap() as usize;
        let line = result["line"].as_u64().unwrap() as usize;
        assert_eq!(line, starts[index], "{}", result["name"]);
        assert_eq!(lines[line - 1], "apiVersion: apps/v1", "{}", result["name"]);
        let name = format!("  name: {}", result["name"].as_str().unwrap());
        assert!(
            lines[line..line + 4].contains(&name.as_str()),
            "{name} near {line}"
        );
    }
    let loadgenerator = results
        .iter()
        .find(|r| r["name"] == "loadgenerator")
        .unwrap();
    assert_eq!(loadgenerator["line"], 441);

    let text_output = stdout(&run(&["check", &path]));
    assert!(
        text_output.contains(&format!(
            "{path}:441 Deployment/default/loadgenerator container \"main\": no livenessProbe"
        )),
        "{text_output}"
    );
    assert!(
        !text_output.contains(&format!("{path}:15 ")),
        "no document indexes"
    );
}

/// Items of a List point at their own entry, not at the List.
#[test]
fn list_items_have_their_own_lines() {
    let file = corpus("istio_istio__pkg__kube__inject__testdata__inject__list.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let report = json(&run(&[
        "check",
        "--output",
        "json",
        &file.display().to_string(),
    ]));
    let results = array(&report["results"]);
    assert!(results.len() >= 2);
    let mut previous = 0;
    for result in results {
        let line = result["line"].as_u64().unwrap() as usize;
        assert!(line > previous, "items in order: {line} after {previous}");
        assert!(
            lines[line - 1].trim_start().starts_with("- "),
            "{}",
            lines[line - 1]
        );
        previous = line;
    }
}

#[test]
fn containers_are_located_and_named_by_role() {
    let file = format!("{FIXTURES}/workloads.yaml");
    let output = run(&["check", &file]);
    let text = stdout(&output);
    for expected in [
        "workloads.yaml:5 Deployment/shop/web init container \"migrate\": no CPU limit",
        "workloads.yaml:5 Deployment/shop/web sidecar container \"proxy\": no livenessProbe",
        "workloads.yaml:5 Deployment/shop/web container \"app\": no livenessProbe",
        "workloads.yaml:41 Job/batch/report container \"report\": no CPU limit",
    ] {
        assert!(text.contains(expected), "{expected} in\n{text}");
    }
    // The JSON contract is unchanged: findings keep exactly their four fields.
    let report = json(&run(&["check", "--output", "json", &file]));
    for result in array(&report["results"]) {
        for finding in array(&result["findings"]) {
            let keys: Vec<&String> = finding.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["rule", "mode", "container", "message"]);
        }
    }
    // SARIF points at the container's own entry.
    let sarif = json(&run(&["check", "--output", "sarif", &file]));
    let at = |container: &str, rule: &str| {
        array(&sarif["runs"][0]["results"])
            .iter()
            .find(|r| r["properties"]["container"] == container && r["ruleId"] == rule)
            .map(|r| r["locations"][0]["physicalLocation"]["region"]["startLine"].clone())
            .unwrap_or_else(|| panic!("no {rule} for {container}"))
    };
    assert_eq!(at("migrate", "cpu-limit"), 18);
    assert_eq!(
        at("proxy", "liveness-probe"),
        20,
        "the entry starts with `- image:`"
    );
    assert_eq!(at("app", "liveness-probe"), 26);
    assert_eq!(at("report", "cpu-limit"), 51);
}

#[test]
fn errors_name_the_file_and_line() {
    let file = format!("{FIXTURES}/errors/broken.yaml");
    let output = run(&["check", "--output", "json", &file]);
    assert_eq!(code(&output), 2, "a real syntax error stays an input error");
    let report = json(&output);
    let error = &array(&report["errors"])[0];
    assert_eq!(
        (error["index"].as_u64(), error["line"].as_u64()),
        (Some(1), Some(12))
    );
    assert_eq!(
        array(&report["results"]).len(),
        1,
        "the other document is still judged"
    );
    let text = run(&["check", &file]);
    assert!(
        stderr(&text).contains(&format!("{file}:12: document 1: invalid YAML")),
        "{}",
        stderr(&text)
    );
    // An object that cannot be read is named by its first line.
    let input = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    resources: {limits: {memory: 12Mb}}\n";
    let unreadable = run_stdin(&["check", "--output", "json", "-"], input);
    assert_eq!(json(&unreadable)["errors"][0]["line"], 1);
}

fn run_stdin(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_deployguard"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn deployguard");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait deployguard")
}

#[test]
fn files_that_are_not_manifests_are_skipped_with_the_reason() {
    let output = run(&["check", "--output", "json", "--exclude", "errors", FIXTURES]);
    assert_eq!(
        code(&output),
        1,
        "findings, not an input error: {}",
        stderr(&output)
    );
    let report = json(&output);
    assert_eq!(report["errors"], Value::Array(vec![]), "{report}");
    let skipped: Vec<(String, Option<u64>, String)> = array(&report["skippedFiles"])
        .iter()
        .map(|s| {
            let source = s["source"].as_str().unwrap();
            let name = source
                .strip_prefix(&format!("{FIXTURES}/"))
                .unwrap_or(source);
            (
                name.to_owned(),
                s["line"].as_u64(),
                s["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let names: Vec<(&str, Option<u64>)> =
        skipped.iter().map(|(n, l, _)| (n.as_str(), *l)).collect();
    assert_eq!(
        names,
        [
            ("chart/Chart.yaml", None),
            ("chart/templates/deployment.yaml", Some(4)),
            ("data.json", None),
            ("values.yaml", None),
            ("chart/templates/quoted.yaml", Some(5)),
        ]
    );
    assert!(skipped[1].2.contains("Go template"), "{}", skipped[1].2);
    assert!(
        skipped[2].2.contains("no document has a `kind`"),
        "{}",
        skipped[2].2
    );
    assert_eq!(report["summary"]["skippedFiles"], 5);
    assert_eq!(
        report["summary"]["files"], 6,
        "skipped files are still counted as read"
    );

    let text = stdout(&run(&["check", "--exclude", "errors", FIXTURES]));
    assert!(
        text.contains("data.json: skipped: not a Kubernetes manifest"),
        "{text}"
    );
    assert!(
        text.lines()
            .last()
            .unwrap()
            .ends_with("; 5 files skipped (not manifests)"),
        "{text}"
    );

    let strict = run(&[
        "check",
        "--output",
        "json",
        "--strict-inputs",
        "--exclude",
        "errors",
        FIXTURES,
    ]);
    assert_eq!(code(&strict), 2);
    let report = json(&strict);
    assert_eq!(report["summary"]["skippedFiles"], 0);
    let messages: Vec<&str> = array(&report["errors"])
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages.len(), 5, "{messages:?}");
    assert!(
        messages.iter().any(|m| m.contains("invalid YAML")),
        "the template's own error: {messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("\"{{ .Values.cpu }}\" is not a Kubernetes quantity"))
    );
}

/// A manifest that parses and judges is judged even with `{{` in it: braces cannot hide
/// a workload from the scan.
#[test]
fn braces_do_not_hide_a_manifest() {
    let input = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {note: \"{{ hello }}\"}\nspec:\n  containers: [{name: c}]\n";
    let output = run_stdin(&["check", "--output", "json", "-"], input);
    assert_eq!(code(&output), 1);
    let report = json(&output);
    assert_eq!(report["summary"]["skippedFiles"], 0);
    assert_eq!(report["results"][0]["name"], "p");
}

#[test]
fn excluded_paths_are_not_read() {
    let output = run(&[
        "check",
        "--output",
        "json",
        "--exclude",
        "*.json",
        "--exclude",
        "chart",
        "--exclude",
        "tests/fixtures/reports/errors",
        FIXTURES,
    ]);
    let report = json(&output);
    let sources: Vec<&str> = array(&report["skippedFiles"])
        .iter()
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, [format!("{FIXTURES}/values.yaml")]);
    assert_eq!(
        report["summary"]["files"], 2,
        "workloads.yaml and values.yaml"
    );
    let named = run(&[
        "check",
        "--exclude",
        "*.yaml",
        &format!("{FIXTURES}/workloads.yaml"),
    ]);
    assert!(
        stdout(&named).contains("0 workloads in 0 documents of 0 files"),
        "{}",
        stdout(&named)
    );
    let bad = run(&["check", "--exclude", "a/[b", FIXTURES]);
    assert_eq!(code(&bad), 2);
    assert!(
        stderr(&bad).contains("--exclude \"a/[b\""),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn summary_counts_are_singular_or_plural() {
    let one = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: x\n    livenessProbe: {exec: {command: [a]}}\n    readinessProbe: {exec: {command: [b]}}\n    resources: {limits: {cpu: \"1\", memory: 1Gi}}\n    env: [{name: GOMEMLIMIT, value: 2000MiB}]\n";
    let text = stdout(&run_stdin(&["check", "-"], one));
    let last = text.lines().last().unwrap();
    assert_eq!(
        last,
        "1 workload in 1 document of 1 file: 1 would be denied; 1 finding (1 enforce, 0 warn, 0 audit)",
        "{text}"
    );
    let file = corpus("GoogleCloudPlatform_microservices-demo__release__kubernetes-manifests.yaml");
    let many = stdout(&run(&["check", &file.display().to_string()]));
    assert!(
        many.lines().last().unwrap().starts_with(
            "12 workloads in 35 documents of 1 file: 1 would be denied; 15 findings ("
        ),
        "{many}"
    );
}

/// The same fix on many lines is printed once per rule; every finding is still listed.
#[test]
fn a_repeated_fix_is_printed_once_per_rule() {
    let dir = root().join("../shared/corpus").display().to_string();
    let text = stdout(&run(&["check", &dir]));
    let report = json(&run(&["check", "--output", "json", &dir]));
    let liveness = array(&report["results"])
        .iter()
        .flat_map(|r| array(&r["findings"]))
        .filter(|f| {
            f["rule"] == "liveness-probe"
                && f["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("no livenessProbe — ")
        })
        .count();
    assert!(liveness > 10);
    assert_eq!(
        text.matches("no livenessProbe (liveness-probe)").count(),
        liveness
    );
    let fix = "add one so the kubelet restarts the container when it stops responding";
    assert_eq!(text.matches(fix).count(), 1, "{fix}");
    assert!(
        text.contains(&format!(
            "how to fix:\n  liveness-probe ({liveness} findings): {fix}"
        )),
        "{text}"
    );
    // A fix that appears once stays on its line.
    let single = stdout(&run(&["check", &format!("{FIXTURES}/workloads.yaml")]));
    assert!(
        single.contains("(268435456 bytes) — too little room"),
        "{single}"
    );
}

#[test]
fn sarif_rules_levels_and_relative_uris() {
    let output = run(&[
        "check",
        "--output",
        "sarif",
        "--as",
        CONTROLLER,
        &format!("{FIXTURES}/workloads.yaml"),
    ]);
    assert_eq!(code(&output), 1, "exit codes do not depend on the format");
    let sarif = json(&output);
    assert_eq!(sarif["version"], "2.1.0");
    let run0 = &sarif["runs"][0];
    let rules = array(&run0["tool"]["driver"]["rules"]);
    assert_eq!(rules.len(), 13);
    for rule in rules {
        assert!(!rule["help"]["text"].as_str().unwrap().is_empty(), "{rule}");
    }
    let results = array(&run0["results"]);
    let levels: Vec<(&str, &str)> = results
        .iter()
        .map(|r| {
            (
                r["properties"]["mode"].as_str().unwrap(),
                r["level"].as_str().unwrap(),
            )
        })
        .collect();
    for (mode, level) in &levels {
        let expected = match *mode {
            "enforce" => "error",
            "warn" => "warning",
            _ => "note",
        };
        assert_eq!(*level, expected);
    }
    assert!(
        levels.iter().any(|(_, l)| *l == "note"),
        "the owned Pod's audit findings"
    );
    for result in results {
        let rule = result["ruleId"].as_str().unwrap();
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], rule);
        let uri = &result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"];
        assert_eq!(uri, "tests/fixtures/reports/workloads.yaml");
    }
    // Outside the working directory, or with characters a URI cannot hold as they are.
    let dir = tempdir("sarif");
    std::fs::copy(
        root().join(FIXTURES).join("workloads.yaml"),
        dir.join("my app#1.yaml"),
    )
    .unwrap();
    let sarif = json(&run_in(
        Some(&dir),
        &["check", "--output", "sarif", "my app#1.yaml"],
    ));
    let uri = &sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
        ["uri"];
    assert_eq!(uri, "my%20app%231.yaml");
}

#[test]
fn junit_has_a_suite_per_file_and_one_failure_per_denied_workload() {
    let output = run(&[
        "check",
        "--output",
        "junit",
        "--as",
        CONTROLLER,
        "--exclude",
        "chart",
        FIXTURES,
    ]);
    let xml = stdout(&output);
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "));
    assert!(xml.contains("<testsuites name=\"deployguard\" tests=\"9\" failures=\"3\" errors=\"1\" skipped=\"3\">"), "{xml}");
    assert_eq!(
        xml.matches("<testsuite ").count(),
        4,
        "broken, workloads, data.json, values.yaml"
    );
    // Denied: web and report from workloads.yaml, fine from broken.yaml.
    assert_eq!(xml.matches("<failure ").count(), 3);
    assert!(xml.contains("<testcase name=\"Deployment/shop/web\" classname=\"tests/fixtures/reports/workloads.yaml\" file=\"tests/fixtures/reports/workloads.yaml\" line=\"5\"><failure message=\"would be denied: 6 enforce findings\""));
    assert!(xml.contains("<testcase name=\"Deployment/shop/compliant\" classname=\"tests/fixtures/reports/workloads.yaml\" file=\"tests/fixtures/reports/workloads.yaml\" line=\"54\"/>"));
    assert!(xml.contains(
        "<skipped message=\"namespace &quot;kube-system&quot; is excluded: not judged\"/>"
    ));
    assert!(
        xml.contains("<system-out>[warn] container \"app\": GOMEMLIMIT"),
        "warn findings in system-out"
    );
    assert!(
        xml.contains(
            "<error message=\"invalid YAML: illegal placement of ':' indicator (column 5)\""
        ),
        "{xml}"
    );
    assert!(!xml.contains("<failure message=\"would be denied: 0"));
}

#[test]
fn github_commands_are_escaped() {
    let dir = tempdir("github");
    let text = std::fs::read_to_string(root().join(FIXTURES).join("workloads.yaml")).unwrap();
    std::fs::write(dir.join("a,b:c.yaml"), text).unwrap();
    std::fs::copy(
        root().join(FIXTURES).join("errors/broken.yaml"),
        dir.join("broken.yaml"),
    )
    .unwrap();
    let output = run_in(
        Some(&dir),
        &[
            "check",
            "--output",
            "github",
            "--as",
            CONTROLLER,
            "a,b:c.yaml",
            "broken.yaml",
        ],
    );
    let out = stdout(&output);
    assert!(
        out.contains("::error file=a%2Cb%3Ac.yaml,line=18,title=cpu-limit (Deployment/shop/web)::init container \"migrate\": no CPU limit — set resources.limits.cpu"),
        "{out}"
    );
    assert!(
        out.contains("::warning file=a%2Cb%3Ac.yaml,line=26,title=go-env (Deployment/shop/web)::")
    );
    assert!(out.contains("is above 95%25 of the memory limit"), "{out}");
    assert!(
        out.contains(
            "::notice file=a%2Cb%3Ac.yaml,line=98,title=liveness-probe (Pod/shop/owned)::"
        )
    );
    let error = out
        .lines()
        .find(|l| {
            l.starts_with(
                "::error file=broken.yaml,line=12,title=deployguard%3A input error::invalid YAML",
            )
        })
        .unwrap_or_else(|| panic!("{out}"));
    // One line, one position: the line in the properties, the column in the message.
    assert!(
        error.ends_with("::invalid YAML: illegal placement of ':' indicator (column 5)"),
        "{error}"
    );
    // The runner splits at the first `::` after the properties, and properties at `,`:
    // every command must come apart into known keys.
    for line in out.lines().filter(|l| l.starts_with("::")) {
        let (head, _) = line[2..].split_once("::").unwrap();
        let (_, properties) = head.split_once(' ').unwrap();
        let keys: Vec<&str> = properties
            .split(',')
            .map(|p| p.split_once('=').unwrap().0)
            .collect();
        assert!(
            keys == ["file", "line", "title"] || keys == ["file", "title"],
            "{line}"
        );
    }
    assert!(out.lines().last().unwrap().contains("would be denied"));
}

#[test]
fn policy_reports_per_namespace_with_results_and_summaries() {
    let file = format!("{FIXTURES}/workloads.yaml");
    let output = run(&[
        "check",
        "--output",
        "policyreport",
        "--as",
        CONTROLLER,
        &file,
    ]);
    assert_eq!(code(&output), 1);
    let list = json(&output);
    assert_eq!(
        (list["apiVersion"].as_str(), list["kind"].as_str()),
        (Some("v1"), Some("List"))
    );
    let items = array(&list["items"]);
    let namespaces: Vec<&str> = items
        .iter()
        .map(|r| r["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(namespaces, ["batch", "kube-system", "shop"]);
    for item in items {
        assert_eq!(item["apiVersion"], "wgpolicyk8s.io/v1alpha2");
        assert_eq!(item["kind"], "PolicyReport");
        assert_eq!(item["metadata"]["name"], "deployguard");
        assert!(item.get("source").is_none());
    }
    let shop = &items[2];
    let results = array(&shop["results"]);
    let outcome = |name: &str, result: &str| {
        results
            .iter()
            .filter(|r| r["resources"][0]["name"] == name && r["result"] == result)
            .count()
    };
    assert_eq!(outcome("compliant", "pass"), 1);
    assert_eq!(outcome("web", "fail"), 6);
    assert_eq!(outcome("web", "warn"), 3);
    assert_eq!(outcome("owned", "fail"), 6, "audit findings fail");
    assert_eq!(
        outcome("owned", "skip"),
        1,
        "with the reason they were capped"
    );
    assert_eq!(
        shop["summary"],
        serde_json::json!({"pass": 1, "fail": 12, "warn": 3, "error": 0, "skip": 1})
    );
    let severity = |mode: &str| {
        results
            .iter()
            .find(|r| r["properties"]["mode"] == mode)
            .map(|r| r["severity"].clone())
    };
    assert_eq!(severity("enforce"), Some("high".into()));
    assert_eq!(severity("warn"), Some("medium".into()));
    assert_eq!(severity("audit"), Some("low".into()));
    assert_eq!(
        items[1]["results"][0]["result"], "skip",
        "the excluded namespace"
    );
    let web = results.iter().find(|r| r["rule"] == "cpu-limit").unwrap();
    assert_eq!(web["properties"]["source"], format!("{file}:18"));
    assert_eq!(
        web["message"].as_str().unwrap(),
        "init container \"migrate\": no CPU limit — set resources.limits.cpu (or a pod-level spec.resources.limits.cpu)"
    );

    let open = json(&run(&["check", "--output", "openreports", &file]));
    for item in array(&open["items"]) {
        assert_eq!(item["apiVersion"], "openreports.io/v1alpha1");
        assert_eq!(item["kind"], "Report");
        assert_eq!(item["source"], "deployguard");
    }
}

#[test]
fn large_namespaces_are_split_under_a_mebibyte() {
    let dir = tempdir("split");
    let mut text = String::new();
    for k in 0..700 {
        text.push_str(&format!(
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: app-{k}, namespace: big}}\nspec:\n  template:\n    spec:\n      containers:\n        - {{name: a, image: x}}\n        - {{name: b, image: y}}\n"
        ));
    }
    std::fs::write(dir.join("many.yaml"), text).unwrap();
    let list = json(&run_in(
        Some(&dir),
        &["check", "--output", "policyreport", "many.yaml"],
    ));
    let items = array(&list["items"]);
    assert!(items.len() >= 2, "{} reports", items.len());
    let mut total = 0;
    for (k, item) in items.iter().enumerate() {
        let name = if k == 0 {
            "deployguard".to_owned()
        } else {
            format!("deployguard-{}", k + 1)
        };
        assert_eq!(item["metadata"]["name"], name);
        let size = serde_json::to_vec(item).unwrap().len();
        assert!(size <= 1024 * 1024, "{name}: {size} bytes");
        let results = array(&item["results"]).len();
        let summary: u64 = item["summary"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(summary as usize, results);
        total += results;
    }
    assert_eq!(total, 700 * 12, "every finding is in exactly one report");
}

fn tempdir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("deployguard-reports-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Misspelt kinds and keys are findings of `manifest-typo` (warn), and the finding a
/// misspelt key explains names it.
#[test]
fn misspellings_are_caught() {
    let input = r#"apiVersion: apps/v1
kind: Deploymnet
metadata: {name: web}
spec: {}
---
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: app
    livenesProbe: {tcpSocket: {port: 80}}
    readinessProbe: {tcpSocket: {port: 80}}
    resources: {limits: {cpu: 1, memroy: 1Gi}}
"#;
    let output = run_stdin(&["check", "-"], input);
    let text = stdout(&output);
    assert_eq!(code(&output), 1, "{text}");
    assert!(
        text.contains("Deploymnet/default/web manifest: kind \"Deploymnet\" is not a Kubernetes kind: did you mean Deployment?"),
        "{text}"
    );
    assert!(
        text.contains("container \"app\": no livenessProbe (found \"livenesProbe\")"),
        "{text}"
    );
    assert!(
        text.contains("container \"app\": no memory limit (found \"resources.limits.memroy\")"),
        "{text}"
    );
    assert!(
        text.contains("unknown key \"livenesProbe\": did you mean \"livenessProbe\"?"),
        "{text}"
    );
    let report = json(&run_stdin(&["check", "--output", "json", "-"], input));
    let typos: Vec<&Value> = array(&report["results"])
        .iter()
        .flat_map(|r| array(&r["findings"]))
        .filter(|f| f["rule"] == "manifest-typo")
        .collect();
    assert_eq!(typos.len(), 3, "{typos:?}");
    assert!(typos.iter().all(|f| f["mode"] == "warn"));
}
