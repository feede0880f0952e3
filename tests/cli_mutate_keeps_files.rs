//! `deployguard mutate` over every YAML manifest of the corpus keeps the file: a line
//! diff against the input shows only added lines, except on lines of flow collections it
//! extended, and the output reads as the same objects as `--output json` gives.

use std::path::{Path, PathBuf};
use std::process::Command;

use deployguard::documents::parse_documents;
use serde_json::Value;
use similar::{ChangeTag, TextDiff};

fn corpus_yaml() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

fn mutate(args: &[&str]) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_deployguard"))
        .arg("mutate")
        .args(args)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{args:?}: {output:?}");
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (text(output.stdout), text(output.stderr))
}

/// Lines of `input` the output no longer has, save those it extended (a flow collection
/// grown after its last entry) or that hold a bracket (`env: []` turned into a block).
fn removed_lines(input: &str, output: &str) -> Vec<String> {
    let diff = TextDiff::from_lines(input, output);
    let inserted: Vec<&str> = diff
        .iter_all_changes()
        .filter(|c| c.tag() == ChangeTag::Insert)
        .map(|c| c.value().trim_end())
        .collect();
    diff.iter_all_changes()
        .filter(|c| c.tag() == ChangeTag::Delete)
        .map(|c| c.value().trim_end())
        // A last line without its newline comes back with one.
        .filter(|line| !inserted.contains(line))
        .filter(|line| line.is_empty() || !inserted.iter().any(|new| new.starts_with(line)))
        .filter(|line| !line.contains(['{', '}', '[', ']']))
        .map(str::to_owned)
        .collect()
}

fn values(yaml: &str) -> Vec<Value> {
    parse_documents(yaml, false)
        .into_iter()
        .filter_map(|d| d.unwrap().value)
        .collect()
}

#[test]
fn mutate_only_adds_lines_to_the_corpus() {
    let mut mutated = 0;
    for file in corpus_yaml() {
        let path = file.display().to_string();
        let (output, stderr) = mutate(&[&path]);
        assert!(
            !stderr.contains("rewritten without"),
            "{path}: fell back: {stderr}"
        );
        let input = std::fs::read_to_string(&file).unwrap();
        if output.trim_start_matches("---\n") == input {
            continue;
        }
        mutated += 1;
        let removed = removed_lines(&input, &output);
        // Only a flow collection being extended may change the line it sits on.
        let block_removed: Vec<&String> = removed
            .iter()
            .filter(|line| !line.contains(['{', '}', '[', ']']))
            .collect();
        assert_eq!(
            block_removed,
            Vec::<&String>::new(),
            "{path}: lines removed"
        );
        let (json, _) = mutate(&["--output", "json", &path]);
        let expected: Vec<Value> = serde_json::from_str(&json).unwrap();
        assert_eq!(values(&output), expected, "{path}: the same objects");
    }
    assert!(mutated >= 60, "most of the corpus is mutated: {mutated}");
}

#[test]
fn comments_directives_and_crlf_survive() {
    let input = "# licence line 1\r\n# licence line 2\r\n%YAML 1.2\r\n---\r\napiVersion: v1\r\nkind: Pod # the pod\r\nmetadata:\r\n  name: 'p'\r\nspec:\r\n  containers:\r\n  - name: app\r\n    resources:\r\n      limits: {cpu: \"1\", memory: 1Gi}\r\n...\r\n# trailing\r\n";
    let dir = std::env::temp_dir().join(format!("deployguard-keep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pod.yaml");
    std::fs::write(&file, input).unwrap();
    let (output, stderr) = mutate(&[&file.display().to_string()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(stderr, "");
    assert_eq!(
        output,
        input.replace(
            "  name: 'p'\r\n",
            "  name: 'p'\r\n  annotations:\r\n    deployguard.io/injected: \"app: GOMAXPROCS=2 GOMEMLIMIT=921MiB\"\r\n",
        )
        .replace(
            "memory: 1Gi}\r\n",
            "memory: 1Gi}\r\n    env:\r\n    - name: GOMAXPROCS\r\n      value: \"2\"\r\n    - name: GOMEMLIMIT\r\n      value: \"921MiB\"\r\n",
        )
    );
}

/// After a limits edit, the values deployguard wrote change on their own lines only.
#[test]
fn values_written_before_are_updated_in_place() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/compliant-deployment.yaml");
    let (once, _) = mutate(&[&example.display().to_string()]);
    let edited = once.replacen("memory: 512Mi}", "memory: 2Gi}", 1);
    assert_ne!(edited, once);
    let dir = std::env::temp_dir().join(format!("deployguard-again-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("edited.yaml");
    std::fs::write(&file, &edited).unwrap();
    let (twice, stderr) = mutate(&[&file.display().to_string()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(stderr, "");
    let diff = TextDiff::from_lines(&edited, &twice);
    let changed: Vec<(ChangeTag, &str)> = diff
        .iter_all_changes()
        .filter(|c| c.tag() != ChangeTag::Equal)
        .map(|c| (c.tag(), c.value().trim()))
        .collect();
    assert_eq!(
        changed,
        [
            (
                ChangeTag::Delete,
                "deployguard.io/injected: \"checkout: GOMAXPROCS=2 GOMEMLIMIT=460MiB\""
            ),
            (
                ChangeTag::Insert,
                "deployguard.io/injected: \"checkout: GOMAXPROCS=2 GOMEMLIMIT=1843MiB\""
            ),
            (ChangeTag::Delete, "value: \"460MiB\""),
            (ChangeTag::Insert, "value: \"1843MiB\""),
        ]
    );
}
