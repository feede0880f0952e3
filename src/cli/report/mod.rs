//! What one `check` run found, and the formats it is printed in. Every format reads the
//! same [`Report`]; each file here writes one format.

mod github;
mod json;
mod junit;
mod location;
mod policyreport;
mod rules;
mod sarif;
mod text;
mod xml;

use clap::ValueEnum;
use serde::Serialize;
use serde_json::Value;

use super::containers::{Container, noun};
use super::output::print_text;
use crate::manifest::WorkloadResult;
use crate::policy::{Finding, Mode};

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    /// SARIF 2.1.0, for GitHub code scanning and other SARIF viewers.
    Sarif,
    /// JUnit XML, for the test reports of GitLab, Jenkins and others.
    Junit,
    /// GitHub Actions workflow commands: annotations on the pull request's files.
    Github,
    /// wgpolicyk8s.io/v1alpha2 PolicyReports, as a `v1` List.
    Policyreport,
    /// openreports.io/v1alpha1 Reports, as a `v1` List.
    Openreports,
}

/// Prints `report` to standard output in `format`. Input errors go to standard error as
/// well where the format has no place for them: text (before its summary line) and the
/// Kubernetes reports, which are applied to a cluster rather than read.
pub fn print(report: &Report, format: Format) {
    let out = match format {
        Format::Text => {
            print_text(&text::render(report));
            text::print_errors(report);
            print_text(&text::summary(report));
            return;
        }
        Format::Json => json::render(report),
        Format::Sarif => sarif::render(report),
        Format::Junit => junit::render(report),
        Format::Github => github::render(report),
        Format::Policyreport => policyreport::render(report, policyreport::Api::WgPolicy),
        Format::Openreports => policyreport::render(report, policyreport::Api::OpenReports),
    };
    print_text(&out);
    if matches!(format, Format::Policyreport | Format::Openreports) {
        text::print_errors(report);
        text::print_skipped(report);
    }
}

/// The PolicyReports (`--output openreports`: the OpenReports Reports) of `report`, as
/// objects to apply to a cluster.
pub fn cluster_reports(report: &Report, format: Format) -> Vec<Value> {
    let api = match format {
        Format::Openreports => policyreport::Api::OpenReports,
        _ => policyreport::Api::WgPolicy,
    };
    policyreport::objects(report, api)
}

/// Everything one run found.
#[derive(Debug, Default)]
pub struct Report {
    pub results: Vec<Judged>,
    pub errors: Vec<InputError>,
    pub skipped_files: Vec<SkippedFile>,
    pub summary: Summary,
}

/// One workload, judged.
#[derive(Debug)]
pub struct Judged {
    pub source: String,
    /// 0-based document index in the file.
    pub index: usize,
    /// 1-based line of the file where the object starts.
    pub line: usize,
    pub result: WorkloadResult,
    pub containers: Vec<Container>,
}

impl Judged {
    fn container(&self, finding: &Finding) -> Option<&Container> {
        self.containers.iter().find(|c| c.name == finding.container)
    }

    /// `container "x"`, `init container "x"`, `sidecar container "x"`, or `pod`.
    pub fn subject(&self, finding: &Finding) -> String {
        match self.container(finding) {
            Some(container) => format!("{} \"{}\"", noun(container.role), container.name),
            None => finding.subject(),
        }
    }

    /// The container's line where known, else the object's.
    pub fn line_of(&self, finding: &Finding) -> usize {
        self.container(finding).map_or(self.line, |c| c.line)
    }

    /// `Kind/namespace/name`.
    pub fn workload(&self) -> String {
        let r = &self.result;
        format!("{}/{}/{}", r.kind, r.namespace, r.name)
    }

    /// Whether the webhook would deny it.
    pub fn denied(&self) -> bool {
        self.result.findings.iter().any(|f| f.mode == Mode::Enforce)
    }
}

/// A file, document or object that could not be read.
#[derive(Debug, Serialize)]
pub struct InputError {
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<usize>,
    /// 1-based line of the file; absent when the file itself could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub message: String,
}

/// A file that is not a Kubernetes manifest, and why.
#[derive(Debug, Serialize)]
pub struct SkippedFile {
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub reason: String,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub files: usize,
    pub documents: usize,
    pub workloads: usize,
    pub findings: usize,
    pub enforce: usize,
    pub warn: usize,
    pub audit: usize,
    pub errors: usize,
    /// Files among `files` that were not judged (see `skippedFiles`).
    pub skipped_files: usize,
}

impl Summary {
    /// Counts what `results`, `errors` and `skipped` hold; `files` and `documents` are
    /// counted while reading.
    pub fn count(&mut self, results: &[Judged], errors: &[InputError], skipped: &[SkippedFile]) {
        self.workloads = results.len();
        self.errors = errors.len();
        self.skipped_files = skipped.len();
        for finding in results.iter().flat_map(|r| &r.result.findings) {
            self.findings += 1;
            match finding.mode {
                Mode::Enforce => self.enforce += 1,
                Mode::Warn => self.warn += 1,
                Mode::Audit => self.audit += 1,
                Mode::Off => {}
            }
        }
    }
}

/// `1 file`, `2 files`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
