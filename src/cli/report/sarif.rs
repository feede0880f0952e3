//! `--output sarif`: SARIF 2.1.0 for GitHub code scanning (`upload-sarif`) and other
//! SARIF viewers. One `rule` per rule id with its help text; one result per finding at the
//! line of its container (of the object for findings about the whole pod), file URIs
//! relative to the working directory. Input errors and skipped files are the
//! invocation's notifications.

use serde_json::{Value, json};

use super::location::Base;
use super::rules::help;
use super::{Judged, Report};
use crate::cli::output::json_text;
use crate::policy::{Finding, Mode, RuleId};

const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// SARIF levels: what stops a deployment is an error.
fn level(mode: Mode) -> &'static str {
    match mode {
        Mode::Enforce => "error",
        Mode::Warn => "warning",
        Mode::Audit | Mode::Off => "note",
    }
}

pub fn render(report: &Report) -> String {
    json_text(&sarif(report, &Base::current()))
}

fn sarif(report: &Report, base: &Base) -> Value {
    let rules: Vec<Value> = RuleId::ALL.iter().map(|rule| descriptor(*rule)).collect();
    let results: Vec<Value> = report
        .results
        .iter()
        .flat_map(|judged| {
            judged
                .result
                .findings
                .iter()
                .map(move |finding| result(judged, finding, base))
        })
        .collect();
    let mut notifications: Vec<Value> = report
        .errors
        .iter()
        .map(|error| notification("error", &error.message, &error.source, error.line, base))
        .collect();
    notifications.extend(report.skipped_files.iter().map(|skipped| {
        let text = format!("skipped: {}", skipped.reason);
        notification("note", &text, &skipped.source, skipped.line, base)
    }));
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "deployguard",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": env!("CARGO_PKG_REPOSITORY"),
                "rules": rules,
            }},
            "invocations": [{
                "executionSuccessful": report.errors.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    })
}

fn descriptor(rule: RuleId) -> Value {
    let help = help(rule);
    json!({
        "id": rule.as_str(),
        "name": help.name,
        "shortDescription": {"text": help.summary},
        "fullDescription": {"text": help.help},
        "help": {"text": help.help},
        "properties": {"tags": ["kubernetes", help.category]},
    })
}

fn result(judged: &Judged, finding: &Finding, base: &Base) -> Value {
    // -1 is SARIF's "no index"; every rule is in `ALL`, so it does not occur.
    let rule_index = RuleId::ALL
        .iter()
        .position(|r| *r == finding.rule)
        .and_then(|k| i64::try_from(k).ok())
        .unwrap_or(-1);
    json!({
        "ruleId": finding.rule.as_str(),
        "ruleIndex": rule_index,
        "level": level(finding.mode),
        "message": {"text": format!(
            "{} {}: {}", judged.workload(), judged.subject(finding), finding.message
        )},
        "locations": [{
            "physicalLocation": physical(&judged.source, Some(judged.line_of(finding)), base),
            "logicalLocations": [{
                "fullyQualifiedName": judged.workload(),
                "kind": "resource",
            }],
        }],
        "properties": {
            "mode": finding.mode.as_str(),
            "container": finding.container,
        },
    })
}

fn physical(source: &str, line: Option<usize>, base: &Base) -> Value {
    let mut location = json!({"artifactLocation": {"uri": base.uri(source)}});
    if let Some(line) = line {
        location["region"] = json!({"startLine": line});
    }
    location
}

fn notification(level: &str, text: &str, source: &str, line: Option<usize>, base: &Base) -> Value {
    json!({
        "level": level,
        "message": {"text": text},
        "locations": [{"physicalLocation": physical(source, line, base)}],
    })
}
