//! `--output junit`: JUnit XML as GitLab and Jenkins read it. A `testsuite` per file, a
//! `testcase` per workload (`file` and `line` attributes point at the object); a workload
//! the webhook would deny has one `failure` listing every enforce finding (JUnit allows
//! one per test case), warn and audit findings go to `system-out`. A workload judged not
//! at all is `skipped`; unreadable documents are `error` test cases, files that are not
//! manifests a skipped one.

use std::fmt::Write as _;

use super::xml::{attribute, text};
use super::{Judged, Report, count};
use crate::policy::Mode;

/// One test case, written.
struct Case {
    xml: String,
    outcome: Outcome,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Passed,
    Failed,
    Error,
    Skipped,
}

/// A file's test cases, in the order the file holds them.
struct Suite<'a> {
    name: &'a str,
    cases: Vec<Case>,
}

pub fn render(report: &Report) -> String {
    let mut suites: Vec<Suite<'_>> = Vec::new();
    for judged in &report.results {
        push(&mut suites, &judged.source, workload_case(judged));
    }
    for error in &report.errors {
        let name = match (error.index, error.item) {
            (Some(index), Some(item)) => format!("document {index}, item {item}"),
            (Some(index), None) => format!("document {index}"),
            _ => "the file".to_owned(),
        };
        let body = format!(
            "<error message=\"{}\" type=\"input\">{}</error>",
            attribute(first_line(&error.message)),
            text(&error.message)
        );
        let case = case_xml(&name, &error.source, error.line, &body);
        push(
            &mut suites,
            &error.source,
            Case {
                xml: case,
                outcome: Outcome::Error,
            },
        );
    }
    for skipped in &report.skipped_files {
        let body = format!("<skipped message=\"{}\"/>", attribute(&skipped.reason));
        let case = case_xml("the file", &skipped.source, skipped.line, &body);
        push(
            &mut suites,
            &skipped.source,
            Case {
                xml: case,
                outcome: Outcome::Skipped,
            },
        );
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let all: Vec<&Case> = suites.iter().flat_map(|s| &s.cases).collect();
    let _ = writeln!(out, "<testsuites name=\"deployguard\" {}>", counters(&all));
    for suite in &suites {
        let cases: Vec<&Case> = suite.cases.iter().collect();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" {}>",
            attribute(suite.name),
            counters(&cases)
        );
        for case in &suite.cases {
            out.push_str(&case.xml);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Adds `case` to the suite of `source`, opening one at its first case.
fn push<'a>(suites: &mut Vec<Suite<'a>>, source: &'a str, case: Case) {
    match suites.iter_mut().find(|s| s.name == source) {
        Some(suite) => suite.cases.push(case),
        None => suites.push(Suite {
            name: source,
            cases: vec![case],
        }),
    }
}

fn counters(cases: &[&Case]) -> String {
    let n = |outcome| cases.iter().filter(|c| c.outcome == outcome).count();
    format!(
        "tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\"",
        cases.len(),
        n(Outcome::Failed),
        n(Outcome::Error),
        n(Outcome::Skipped)
    )
}

fn workload_case(judged: &Judged) -> Case {
    let result = &judged.result;
    let line =
        |f: &crate::policy::Finding| format!("{}: {} ({})", judged.subject(f), f.message, f.rule);
    let enforced: Vec<String> = result
        .findings
        .iter()
        .filter(|f| f.mode == Mode::Enforce)
        .map(line)
        .collect();
    let mut out: Vec<String> = result
        .findings
        .iter()
        .filter(|f| f.mode != Mode::Enforce)
        .map(|f| format!("[{}] {}", f.mode, line(f)))
        .collect();
    let mut body = String::new();
    let outcome = if !enforced.is_empty() {
        let _ = write!(
            body,
            "<failure message=\"would be denied: {}\" type=\"enforce\">{}</failure>",
            count(enforced.len(), "enforce finding"),
            text(&enforced.join("\n"))
        );
        Outcome::Failed
    } else if result.findings.is_empty() && !result.skips.is_empty() {
        let _ = write!(
            body,
            "<skipped message=\"{}\"/>",
            attribute(&result.skips.join("; "))
        );
        Outcome::Skipped
    } else {
        Outcome::Passed
    };
    if outcome != Outcome::Skipped {
        out.extend(result.skips.iter().map(|skip| format!("skipped: {skip}")));
    }
    if !out.is_empty() {
        let _ = write!(body, "<system-out>{}</system-out>", text(&out.join("\n")));
    }
    Case {
        xml: case_xml(&judged.workload(), &judged.source, Some(judged.line), &body),
        outcome,
    }
}

fn case_xml(name: &str, source: &str, line: Option<usize>, body: &str) -> String {
    let line = line.map(|l| format!(" line=\"{l}\"")).unwrap_or_default();
    let open = format!(
        "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\"{line}",
        attribute(name),
        attribute(source),
        attribute(source)
    );
    if body.is_empty() {
        format!("{open}/>\n")
    } else {
        format!("{open}>{body}</testcase>\n")
    }
}

fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or_default()
}
