//! `--output json`: `{"results", "summary", "errors", "skippedFiles"}`. A contract that
//! other tools read: fields are only ever added.

use serde::Serialize;

use super::{InputError, Report, SkippedFile, Summary};
use crate::cli::output::json_text;
use crate::policy::{Finding, LimitRangeDefault};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResultOut<'a> {
    source: &'a str,
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    item: Option<usize>,
    /// 1-based line of the file where the object starts.
    line: usize,
    api_version: &'a str,
    kind: &'a str,
    namespace: &'a str,
    name: &'a str,
    findings: &'a [Finding],
    /// Why the workload was judged less than fully (empty: fully judged).
    skipped: &'a [String],
    /// Why it was judged more than its object asked for (absent: nothing to say).
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    notes: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    limit_range_defaults: Vec<DefaultOut<'a>>,
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Out<'a> {
    results: Vec<ResultOut<'a>>,
    summary: &'a Summary,
    errors: &'a [InputError],
    skipped_files: &'a [SkippedFile],
}

pub fn render(report: &Report) -> String {
    let results = report
        .results
        .iter()
        .map(|judged| {
            let r = &judged.result;
            ResultOut {
                source: &judged.source,
                index: judged.index,
                item: r.item,
                line: judged.line,
                api_version: &r.api_version,
                kind: &r.kind,
                namespace: &r.namespace,
                name: &r.name,
                findings: &r.findings,
                skipped: &r.skips,
                notes: &r.notes,
                limit_range_defaults: r
                    .limit_range_defaults
                    .iter()
                    .map(DefaultOut::from)
                    .collect(),
            }
        })
        .collect();
    json_text(&Out {
        results,
        summary: &report.summary,
        errors: &report.errors,
        skipped_files: &report.skipped_files,
    })
}
