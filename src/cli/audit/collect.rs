//! The audit: list every workload and LimitRange in the chosen namespaces, leave out the
//! objects their controller represents, and judge the rest with the engine `check` uses,
//! into the same [`Report`]. An object's source is `cluster:NAMESPACE/KIND/NAME` (line 1:
//! it has no file); a list that cannot be read is an input error with the source
//! `cluster:NAMESPACE/RESOURCE` (`*` for all namespaces).
//!
//! Forbidden (403) and not-found (404) lists are reported and the audit goes on: RBAC that
//! hides one namespace must not hide the others. Any other failure (no connection,
//! expired credentials, a server error) ends the audit, as the report would say little.

use kube::Client;
use serde_json::Value;
use thiserror::Error;

use super::kinds::{Kind, LIMIT_RANGES, NAMESPACES, WORKLOADS};
use super::owners::represented;
use super::progress::Progress;
use super::read::{list, status_code};
use crate::cli::containers::containers_of;
use crate::cli::locate::Lines;
use crate::cli::report::{InputError, Judged, Report};
use crate::evaluate::DEFAULT_NAMESPACE;
use crate::manifest::{Scope, collect_limit_ranges, judge_document_in};
use crate::policy::{LimitRanges, Policy, RequestContext};

/// Where to look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// Cluster-wide lists; namespace by namespace for a resource whose cluster-wide list is
    /// forbidden.
    AllNamespaces,
    Namespaces(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Options<'a> {
    pub targets: Targets,
    /// The audit has no requester (owner claims are checked against the cluster instead);
    /// only the date, for grant expiry.
    pub context: RequestContext<'a>,
    /// Items per list request.
    pub page_size: u32,
}

#[derive(Debug, Error)]
pub enum AuditError {
    #[error("cannot list {what}: {error}")]
    List { what: String, error: kube::Error },
}

/// Reads the cluster through `client` and judges what it holds.
pub async fn audit(
    client: &Client,
    policy: &Policy,
    options: &Options<'_>,
    progress: &mut Progress,
) -> Result<Report, AuditError> {
    let scopes: Vec<Option<String>> = match &options.targets {
        Targets::AllNamespaces => vec![None],
        Targets::Namespaces(names) => names.iter().cloned().map(Some).collect(),
    };
    let mut reader = Reader {
        client,
        page_size: options.page_size,
        progress,
        report: Report::default(),
        namespaces: None,
    };
    let ranges = reader.all(LIMIT_RANGES, &scopes).await?;
    let mut objects = Vec::new();
    for kind in WORKLOADS {
        objects.extend(reader.all(kind, &scopes).await?);
    }
    reader.progress.finish();
    let mut report = reader.report;
    judge(policy, options.context, &ranges, &objects, &mut report);
    report
        .summary
        .count(&report.results, &report.errors, &report.skipped_files);
    Ok(report)
}

fn judge(
    policy: &Policy,
    context: RequestContext<'_>,
    range_objects: &[Value],
    objects: &[Value],
    report: &mut Report,
) {
    let mut ranges = LimitRanges::default();
    for object in range_objects {
        for error in collect_limit_ranges(object, DEFAULT_NAMESPACE, &mut ranges) {
            report.errors.push(object_error(object, error.to_string()));
        }
    }
    let scope = Scope {
        limit_ranges: &ranges,
        default_namespace: DEFAULT_NAMESPACE,
        context,
    };
    for (object, represented) in objects.iter().zip(represented(objects)) {
        if represented {
            continue;
        }
        for judged in judge_document_in(policy, scope, object) {
            match judged {
                Ok(result) => report.results.push(Judged {
                    source: source_of(object),
                    index: 0,
                    line: 1,
                    containers: containers_of(object, &[], &Lines::unknown()),
                    result,
                }),
                Err(error) => report.errors.push(object_error(object, error.to_string())),
            }
        }
    }
}

/// `cluster:NAMESPACE/KIND/NAME`.
fn source_of(object: &Value) -> String {
    let text = |pointer| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    format!(
        "cluster:{}/{}/{}",
        text("/metadata/namespace"),
        text("/kind"),
        text("/metadata/name")
    )
}

fn object_error(object: &Value, message: String) -> InputError {
    InputError {
        source: source_of(object),
        index: None,
        item: None,
        line: None,
        message,
    }
}

struct Reader<'c, 'p> {
    client: &'c Client,
    page_size: u32,
    progress: &'p mut Progress,
    report: Report,
    /// The cluster's namespaces, once a cluster-wide list was forbidden.
    namespaces: Option<Result<Vec<String>, String>>,
}

impl Reader<'_, '_> {
    /// Every object of `kind` in `scopes`; lists that cannot be read become input errors.
    async fn all(
        &mut self,
        kind: Kind,
        scopes: &[Option<String>],
    ) -> Result<Vec<Value>, AuditError> {
        let mut objects = Vec::new();
        for scope in scopes {
            match self.one(kind, scope.as_deref()).await? {
                Ok(found) => objects.extend(found),
                Err(denied) if scope.is_none() => {
                    objects.extend(self.each_namespace(kind, denied).await?)
                }
                Err(denied) => self.denied(kind, scope.as_deref(), denied),
            }
        }
        Ok(objects)
    }

    /// One list: its objects, or why the API refused it (403, 404).
    async fn one(
        &mut self,
        kind: Kind,
        namespace: Option<&str>,
    ) -> Result<Result<Vec<Value>, String>, AuditError> {
        match list(self.client, kind, namespace, self.page_size).await {
            Ok(found) => {
                self.report.summary.files += 1;
                self.report.summary.documents += found.len();
                self.progress.listed(&place(kind, namespace), found.len());
                Ok(Ok(found))
            }
            Err(error) if matches!(status_code(&error), Some(403 | 404)) => {
                Ok(Err(error.to_string()))
            }
            Err(error) => Err(AuditError::List {
                what: place(kind, namespace),
                error,
            }),
        }
    }

    /// A forbidden cluster-wide list, tried again namespace by namespace: RBAC often
    /// grants a team only its own namespaces.
    async fn each_namespace(
        &mut self,
        kind: Kind,
        denied: String,
    ) -> Result<Vec<Value>, AuditError> {
        let names = match self.namespaces.take() {
            Some(names) => names,
            None => self.one(NAMESPACES, None).await?.map(|found| {
                found
                    .iter()
                    .filter_map(|ns| ns.pointer("/metadata/name")?.as_str().map(str::to_owned))
                    .collect()
            }),
        };
        self.namespaces = Some(names.clone());
        let names = match names {
            Ok(names) => names,
            Err(why) => {
                let message = format!("{denied}; nor can namespaces be listed to try each: {why}");
                self.denied(kind, None, message);
                return Ok(Vec::new());
            }
        };
        let mut objects = Vec::new();
        for name in names {
            match self.one(kind, Some(&name)).await? {
                Ok(found) => objects.extend(found),
                Err(denied) => self.denied(kind, Some(&name), denied),
            }
        }
        Ok(objects)
    }

    fn denied(&mut self, kind: Kind, namespace: Option<&str>, message: String) {
        self.report.errors.push(InputError {
            source: format!("cluster:{}/{}", namespace.unwrap_or("*"), kind.plural),
            index: None,
            item: None,
            line: None,
            message: format!("cannot list {}: {message}", place(kind, namespace)),
        });
    }
}

/// `pods in namespace "shop"`, `pods in all namespaces`.
fn place(kind: Kind, namespace: Option<&str>) -> String {
    match namespace {
        Some(namespace) => format!("{} in namespace {namespace:?}", kind.plural),
        None => format!("{} in all namespaces", kind.plural),
    }
}
