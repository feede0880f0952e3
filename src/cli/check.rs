//! `deployguard check`: judge manifests offline, exactly as the webhook would on CREATE.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::inputs::expand;
use super::output::{Paint, print_json};
use super::{CliResult, input_error, policy_from};
use crate::manifest::{ManifestError, WorkloadResult, judge_document};
use crate::policy::{Finding, Mode, Policy};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Policy file (YAML); the built-in default policy when absent.
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    output: CheckOutput,
    /// Files, directories (searched for *.yaml, *.yml, *.json) or `-` for stdin.
    #[arg(required = true)]
    paths: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CheckOutput {
    Text,
    Json,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResultOut<'a> {
    source: &'a str,
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    item: Option<usize>,
    api_version: &'a str,
    kind: &'a str,
    namespace: &'a str,
    name: &'a str,
    findings: &'a [Finding],
}

#[derive(Serialize, Default)]
struct Summary {
    files: usize,
    documents: usize,
    workloads: usize,
    findings: usize,
    enforce: usize,
    warn: usize,
    audit: usize,
    errors: usize,
}

#[derive(Serialize)]
struct ErrorOut {
    source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    item: Option<usize>,
    message: String,
}

impl ErrorOut {
    fn at(source: &str, index: usize, item: Option<usize>, message: String) -> ErrorOut {
        ErrorOut {
            source: source.to_owned(),
            index: Some(index),
            item,
            message,
        }
    }
}

/// Everything one run found.
#[derive(Default)]
struct Report {
    results: Vec<(String, usize, WorkloadResult)>,
    errors: Vec<ErrorOut>,
    summary: Summary,
}

pub fn run(args: CheckArgs) -> CliResult {
    let policy = policy_from(args.config.as_ref())?;
    let inputs = expand(&args.paths).map_err(input_error)?;
    let report = judge_inputs(&policy, &inputs);
    match args.output {
        CheckOutput::Json => print_json_report(&report),
        CheckOutput::Text => print_text_report(&report),
    }
    Ok(if report.summary.errors > 0 {
        ExitCode::from(super::EXIT_INPUT_ERROR)
    } else if report.summary.enforce > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn judge_inputs(policy: &Policy, inputs: &[super::inputs::Input]) -> Report {
    let mut report = Report::default();
    for input in inputs {
        report.summary.files += 1;
        let text = match input.read() {
            Ok(text) => text,
            Err(error) => {
                report.errors.push(ErrorOut {
                    source: input.name.clone(),
                    index: None,
                    item: None,
                    message: format!("{error:#}"),
                });
                continue;
            }
        };
        for document in input.documents(&text) {
            report.summary.documents += 1;
            let document = match document {
                Ok(document) => document,
                Err(error) => {
                    report
                        .errors
                        .push(ErrorOut::at(&input.name, error.index, None, error.message));
                    continue;
                }
            };
            let Some(value) = &document.value else {
                continue;
            };
            for judged in judge_document(policy, value) {
                match judged {
                    Ok(result) => report
                        .results
                        .push((input.name.clone(), document.index, result)),
                    Err(ManifestError::Unreadable { item, message }) => report
                        .errors
                        .push(ErrorOut::at(&input.name, document.index, item, message)),
                }
            }
        }
    }
    let summary = &mut report.summary;
    summary.workloads = report.results.len();
    summary.errors = report.errors.len();
    for finding in report.results.iter().flat_map(|(_, _, r)| &r.findings) {
        summary.findings += 1;
        match finding.mode {
            Mode::Enforce => summary.enforce += 1,
            Mode::Warn => summary.warn += 1,
            Mode::Audit => summary.audit += 1,
            Mode::Off => {}
        }
    }
    report
}

fn print_json_report(report: &Report) {
    #[derive(Serialize)]
    struct Out<'a> {
        results: Vec<ResultOut<'a>>,
        summary: &'a Summary,
        errors: &'a [ErrorOut],
    }
    let results = report
        .results
        .iter()
        .map(|(source, index, r)| ResultOut {
            source,
            index: *index,
            item: r.item,
            api_version: &r.api_version,
            kind: &r.kind,
            namespace: &r.namespace,
            name: &r.name,
            findings: &r.findings,
        })
        .collect();
    print_json(&Out {
        results,
        summary: &report.summary,
        errors: &report.errors,
    });
}

fn print_text_report(report: &Report) {
    let paint = Paint::for_stdout();
    for (source, index, result) in &report.results {
        let item = result.item.map(|k| format!("[{k}]")).unwrap_or_default();
        for finding in &result.findings {
            println!(
                "{source}:{index}{item} {}/{}/{} container \"{}\": {} ({}) {}",
                result.kind,
                result.namespace,
                result.name,
                finding.container,
                finding.message,
                finding.rule,
                paint.mode(finding.mode),
            );
        }
    }
    for error in &report.errors {
        match error.index {
            Some(index) => eprintln!(
                "deployguard: {}: document {index}: {}",
                error.source, error.message
            ),
            None => eprintln!("deployguard: {}", error.message),
        }
    }
    let s = &report.summary;
    let denied = report
        .results
        .iter()
        .filter(|(_, _, r)| r.findings.iter().any(|f| f.mode == Mode::Enforce))
        .count();
    let mut line = format!(
        "{} workloads in {} documents of {} files: {} would be denied; {} enforce, {} warn, {} audit findings",
        s.workloads, s.documents, s.files, denied, s.enforce, s.warn, s.audit
    );
    if s.errors > 0 {
        line.push_str(&format!("; {} input errors", s.errors));
    }
    println!("{}", paint.summary(&line, s.enforce > 0 || s.errors > 0));
}
