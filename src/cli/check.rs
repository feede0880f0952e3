//! `deployguard check`: judge manifests offline, exactly as the webhook would on CREATE.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::inputs::expand;
use super::output::{Paint, print_json};
use super::{CliResult, input_error, policy_from};
use crate::documents::{Document, DocumentError};
use crate::manifest::{
    DEFAULT_NAMESPACE, ManifestError, Scope, WorkloadResult, collect_limit_ranges,
    judge_document_in,
};
use crate::policy::{Finding, LimitRangeDefault, LimitRanges, Mode, Policy};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Policy file (YAML); the built-in default policy when absent.
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    output: CheckOutput,
    /// The namespace of documents that name none; LimitRanges among the inputs apply to
    /// the workloads of their namespace.
    #[arg(long, default_value = DEFAULT_NAMESPACE)]
    namespace: String,
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
    /// Why the workload was judged less than fully (empty: fully judged).
    skipped: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    limit_range_defaults: &'a [DefaultOut<'a>],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DefaultOut<'a> {
    container: &'a str,
    field: &'a str,
    value: &'a str,
    limit_range: &'a str,
}

impl<'a> From<&'a LimitRangeDefault> for DefaultOut<'a> {
    fn from(d: &'a LimitRangeDefault) -> Self {
        DefaultOut {
            container: &d.container,
            field: d.field,
            value: &d.value,
            limit_range: &d.limit_range,
        }
    }
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
    let report = judge_inputs(&policy, &inputs, &args.namespace);
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

/// Reads every input first, so that LimitRanges anywhere among them apply to the
/// workloads of their namespace, then judges.
fn judge_inputs(policy: &Policy, inputs: &[super::inputs::Input], namespace: &str) -> Report {
    let mut report = Report::default();
    let texts: Vec<_> = inputs.iter().map(|input| (input, input.read())).collect();
    let mut parsed: Vec<(
        &super::inputs::Input,
        Vec<Result<Document<'_>, DocumentError>>,
    )> = Vec::new();
    for (input, text) in &texts {
        report.summary.files += 1;
        match text {
            Ok(text) => parsed.push((input, input.documents(text))),
            Err(error) => report.errors.push(ErrorOut {
                source: input.name.clone(),
                index: None,
                item: None,
                message: format!("{error:#}"),
            }),
        }
    }
    let mut limit_ranges = LimitRanges::default();
    for (input, documents) in &parsed {
        for document in documents.iter().flatten() {
            let Some(value) = &document.value else {
                continue;
            };
            for error in collect_limit_ranges(value, namespace, &mut limit_ranges) {
                let ManifestError::Unreadable { item, message } = error;
                report
                    .errors
                    .push(ErrorOut::at(&input.name, document.index, item, message));
            }
        }
    }
    let scope = Scope {
        limit_ranges: &limit_ranges,
        default_namespace: namespace,
    };
    for (input, documents) in parsed {
        for document in documents {
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
            for judged in judge_document_in(policy, scope, value) {
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
    let defaults: Vec<Vec<DefaultOut<'_>>> = report
        .results
        .iter()
        .map(|(_, _, r)| {
            r.limit_range_defaults
                .iter()
                .map(DefaultOut::from)
                .collect()
        })
        .collect();
    let results = report
        .results
        .iter()
        .zip(&defaults)
        .map(|((source, index, r), defaults)| ResultOut {
            source,
            index: *index,
            item: r.item,
            api_version: &r.api_version,
            kind: &r.kind,
            namespace: &r.namespace,
            name: &r.name,
            findings: &r.findings,
            skipped: &r.skips,
            limit_range_defaults: defaults,
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
        let at = format!(
            "{source}:{index}{item} {}/{}/{}",
            result.kind, result.namespace, result.name
        );
        for skip in &result.skips {
            println!("{at} skipped: {skip}");
        }
        for default in &result.limit_range_defaults {
            println!(
                "{at} container \"{}\": {} {} from LimitRange {:?}",
                default.container, default.field, default.value, default.limit_range
            );
        }
        for finding in &result.findings {
            println!(
                "{at} {}: {} ({}) {}",
                finding.subject(),
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
