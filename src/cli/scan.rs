//! Reading the inputs of `check` into a [`Report`]: every file is read and parsed first,
//! so that LimitRanges anywhere among them apply to the workloads of their namespace;
//! files that are not manifests are set aside with the reason; then every workload is
//! judged and located.

use serde_json::Value;

use super::classify::{self, NotManifest};
use super::containers::containers_of;
use super::inputs::Input;
use super::locate::{Lines, Step};
use super::report::{InputError, Judged, Report, SkippedFile};
use crate::documents::{Document, DocumentError};
use crate::manifest::{ManifestError, Scope, collect_limit_ranges, judge_document_in};
use crate::policy::{LimitRanges, Policy, RequestContext};

/// How the scan treats files that are not manifests.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// The namespace of documents that name none.
    pub namespace: &'a str,
    /// Report non-manifests as input errors (exit 2) instead of skipping them.
    pub strict_inputs: bool,
    /// Who applies the documents, and when.
    pub context: RequestContext<'a>,
}

/// One file's documents, parsed.
struct Parsed<'t> {
    name: &'t str,
    text: &'t str,
    documents: Vec<Result<Document<'t>, DocumentError>>,
}

pub fn scan(policy: &Policy, inputs: &[Input], options: Options<'_>) -> Report {
    let mut report = Report::default();
    let texts: Vec<_> = inputs.iter().map(|input| (input, input.read())).collect();
    let mut manifests = Vec::new();
    for (input, text) in &texts {
        report.summary.files += 1;
        let text = match text {
            Ok(text) => text,
            Err(error) => {
                report.errors.push(InputError {
                    source: input.name.clone(),
                    index: None,
                    item: None,
                    line: None,
                    message: format!("{error:#}"),
                });
                continue;
            }
        };
        let file = Parsed {
            name: &input.name,
            text,
            documents: input.documents(text),
        };
        report.summary.documents += file.documents.len();
        match set_aside(&file, options.strict_inputs) {
            Some(not) if options.strict_inputs => report.errors.push(InputError {
                source: file.name.to_owned(),
                index: None,
                item: None,
                line: not.line,
                message: not.reason,
            }),
            Some(not) => report.skipped_files.push(skipped(&file, not)),
            None => manifests.push(file),
        }
    }
    let mut limit_ranges = LimitRanges::default();
    let range_errors: Vec<Vec<InputError>> = manifests
        .iter()
        .map(|file| collect_ranges(file, options.namespace, &mut limit_ranges))
        .collect();
    let scope = Scope {
        limit_ranges: &limit_ranges,
        default_namespace: options.namespace,
        context: options.context,
    };
    for (file, mut errors) in manifests.iter().zip(range_errors) {
        let mut results = Vec::new();
        judge_file(policy, scope, file, &mut results, &mut errors);
        // A template that happens to parse still fails on `{{ .Values.x }}` quantities.
        let template = (!errors.is_empty() && !options.strict_inputs)
            .then(|| classify::template(file.text))
            .flatten();
        match template {
            Some(not) => report.skipped_files.push(skipped(file, not)),
            None => {
                report.results.append(&mut results);
                report.errors.append(&mut errors);
            }
        }
    }
    report
        .summary
        .count(&report.results, &report.errors, &report.skipped_files);
    report
}

fn skipped(file: &Parsed<'_>, not: NotManifest) -> SkippedFile {
    SkippedFile {
        source: file.name.to_owned(),
        line: not.line,
        reason: not.reason,
    }
}

/// Adds the file's LimitRanges to `ranges`; the errors of those that cannot be read.
fn collect_ranges(file: &Parsed<'_>, namespace: &str, ranges: &mut LimitRanges) -> Vec<InputError> {
    let mut errors = Vec::new();
    for document in file.documents.iter().flatten() {
        let Some(value) = &document.value else {
            continue;
        };
        let found = collect_limit_ranges(value, namespace, ranges);
        if !found.is_empty() {
            let lines = Lines::of(document);
            for error in found {
                errors.push(unreadable(file.name, document, &lines, error));
            }
        }
    }
    errors
}

/// Why a file is not judged at all: a template that does not parse, or a file without
/// any Kubernetes object. Under `strict`, a template keeps its parse errors instead.
fn set_aside(file: &Parsed<'_>, strict: bool) -> Option<NotManifest> {
    if file.documents.iter().any(Result::is_err) {
        return classify::template(file.text).filter(|_| !strict);
    }
    classify::without_kind(file.documents.iter().flatten().map(|d| d.value.as_ref()))
}

fn judge_file(
    policy: &Policy,
    scope: Scope<'_>,
    file: &Parsed<'_>,
    results: &mut Vec<Judged>,
    errors: &mut Vec<InputError>,
) {
    for document in &file.documents {
        let document = match document {
            Ok(document) => document,
            Err(error) => {
                errors.push(InputError {
                    source: file.name.to_owned(),
                    index: Some(error.index),
                    item: None,
                    line: Some(error.line),
                    message: error.message.clone(),
                });
                continue;
            }
        };
        let Some(value) = &document.value else {
            continue;
        };
        let judgements = judge_document_in(policy, scope, value);
        if judgements.is_empty() {
            continue;
        }
        // Parsed again for positions only where there is something to point at.
        let lines = Lines::of(document);
        for judged in judgements {
            match judged {
                Ok(result) => {
                    let at = item_path(result.item);
                    let object = object_at(value, result.item);
                    results.push(Judged {
                        source: file.name.to_owned(),
                        index: document.index,
                        line: lines.line_of(&at),
                        containers: containers_of(object, &at, &lines),
                        result,
                    });
                }
                Err(error) => errors.push(unreadable(file.name, document, &lines, error)),
            }
        }
    }
}

fn unreadable(
    source: &str,
    document: &Document<'_>,
    lines: &Lines,
    ManifestError::Unreadable { item, message }: ManifestError,
) -> InputError {
    InputError {
        source: source.to_owned(),
        index: Some(document.index),
        item,
        line: Some(lines.line_of(&item_path(item))),
        message,
    }
}

/// The path of a List's item, or of the document's root.
fn item_path(item: Option<usize>) -> Vec<Step<'static>> {
    item.map(|k| vec![Step::Key("items"), Step::Index(k)])
        .unwrap_or_default()
}

fn object_at(document: &Value, item: Option<usize>) -> &Value {
    item.and_then(|k| document.get("items")?.get(k))
        .unwrap_or(document)
}
