//! `--output policyreport` and `--output openreports`: the reports `kubectl get
//! policyreport` and Policy Reporter read, as a `v1` List ready for `kubectl apply
//! --server-side -f -`. One report per namespace, split before it would pass 1 MiB
//! (etcd refuses objects over 1.5 MiB); subjects without a namespace go to the
//! cluster-scoped report. Only fields the CRDs define are written: a cluster prunes the
//! rest.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::location::Base;
use super::rules::help;
use super::{Judged, Report};
use crate::cli::output::json_text;
use crate::policy::{Finding, Mode};

/// The API group a report is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `wgpolicyk8s.io/v1alpha2` `PolicyReport` / `ClusterPolicyReport`.
    WgPolicy,
    /// `openreports.io/v1alpha1` `Report` / `ClusterReport`, where Kyverno is moving.
    OpenReports,
}

impl Api {
    fn api_version(self) -> &'static str {
        match self {
            Api::WgPolicy => "wgpolicyk8s.io/v1alpha2",
            Api::OpenReports => "openreports.io/v1alpha1",
        }
    }

    fn kind(self, namespaced: bool) -> &'static str {
        match (self, namespaced) {
            (Api::WgPolicy, true) => "PolicyReport",
            (Api::WgPolicy, false) => "ClusterPolicyReport",
            (Api::OpenReports, true) => "Report",
            (Api::OpenReports, false) => "ClusterReport",
        }
    }
}

/// The largest report written, in bytes of compact JSON: under etcd's 1.5 MiB request
/// limit with room for the metadata the API server adds.
const MAX_REPORT_BYTES: usize = 1024 * 1024;

const POLICY: &str = "deployguard";

pub fn render(report: &Report, api: Api) -> String {
    let items = objects(report, api);
    json_text(&json!({"apiVersion": "v1", "kind": "List", "items": items}))
}

/// The report objects, without the List around them (for server-side apply).
pub fn objects(report: &Report, api: Api) -> Vec<Value> {
    reports(report, api, &Base::current(), MAX_REPORT_BYTES)
}

fn reports(report: &Report, api: Api, base: &Base, max_bytes: usize) -> Vec<Value> {
    // `None`: cluster-scoped. Every kind deployguard judges is namespaced today.
    let mut by_namespace: BTreeMap<Option<&str>, Vec<Value>> = BTreeMap::new();
    for judged in &report.results {
        by_namespace
            .entry(Some(judged.result.namespace.as_str()))
            .or_default()
            .extend(results_of(judged, base));
    }
    let mut items = Vec::new();
    for (namespace, results) in by_namespace {
        let chunks = split(
            results,
            max_bytes.saturating_sub(envelope_bytes(api, namespace)),
        );
        for (k, results) in chunks.into_iter().enumerate() {
            let name = match k {
                0 => POLICY.to_owned(),
                _ => format!("{POLICY}-{}", k + 1),
            };
            items.push(envelope(api, namespace, &name, results));
        }
    }
    items
}

fn envelope(api: Api, namespace: Option<&str>, name: &str, results: Vec<Value>) -> Value {
    let mut metadata = json!({"name": name});
    if let Some(namespace) = namespace {
        metadata["namespace"] = json!(namespace);
    }
    metadata["labels"] = json!({"app.kubernetes.io/managed-by": POLICY});
    let tally = |outcome: &str| results.iter().filter(|r| r["result"] == outcome).count();
    let summary = json!({
        "pass": tally("pass"),
        "fail": tally("fail"),
        "warn": tally("warn"),
        "error": tally("error"),
        "skip": tally("skip"),
    });
    let mut report = json!({
        "apiVersion": api.api_version(),
        "kind": api.kind(namespace.is_some()),
        "metadata": metadata,
    });
    if api == Api::OpenReports {
        report["source"] = json!(POLICY);
    }
    report["summary"] = summary;
    report["results"] = Value::Array(results);
    report
}

/// The bytes of a report around its results, with room for the longest name and counts.
fn envelope_bytes(api: Api, namespace: Option<&str>) -> usize {
    let empty = envelope(
        api,
        namespace,
        &format!("{POLICY}-{}", usize::MAX),
        Vec::new(),
    );
    serde_json::to_vec(&empty).map_or(0, |v| v.len()) + 5 * 20
}

/// Splits `results` into runs of at most `budget` bytes of JSON each (a result larger
/// than the budget goes alone). Always at least one run, so that an empty namespace
/// still gets its report.
fn split(results: Vec<Value>, budget: usize) -> Vec<Vec<Value>> {
    let mut chunks = vec![Vec::new()];
    let mut used = 0;
    for result in results {
        // A comma separates it from the previous one.
        let size = serde_json::to_vec(&result).map_or(0, |v| v.len()) + 1;
        if used + size > budget && chunks.last().is_some_and(|c| !c.is_empty()) {
            chunks.push(Vec::new());
            used = 0;
        }
        used += size;
        if let Some(last) = chunks.last_mut() {
            last.push(result);
        }
    }
    chunks
}

/// A workload's results: a `fail`/`warn` per finding and a `skip` per reason it was
/// judged less than fully; `pass` when it was judged fully and nothing was found.
fn results_of(judged: &Judged, base: &Base) -> Vec<Value> {
    let r = &judged.result;
    let resource = json!({
        "apiVersion": r.api_version,
        "kind": r.kind,
        "namespace": r.namespace,
        "name": r.name,
    });
    let source = format!("{}:{}", base.relative(&judged.source), judged.line);
    let mut results: Vec<Value> = r
        .findings
        .iter()
        .map(|finding| finding_result(judged, finding, &resource, base))
        .collect();
    results.extend(r.skips.iter().map(|skip| {
        json!({
            "policy": POLICY,
            "result": "skip",
            "message": skip,
            "scored": true,
            "resources": [resource],
            "properties": {"source": source},
        })
    }));
    if results.is_empty() {
        results.push(json!({
            "policy": POLICY,
            "result": "pass",
            "message": "no findings",
            "scored": true,
            "resources": [resource],
            "properties": {"source": source},
        }));
    }
    results
}

fn finding_result(judged: &Judged, finding: &Finding, resource: &Value, base: &Base) -> Value {
    let (result, severity) = match finding.mode {
        Mode::Enforce => ("fail", "high"),
        Mode::Warn => ("warn", "medium"),
        Mode::Audit | Mode::Off => ("fail", "low"),
    };
    json!({
        "policy": POLICY,
        "rule": finding.rule.as_str(),
        "category": help(finding.rule).category,
        "result": result,
        "severity": severity,
        "message": format!("{}: {}", judged.subject(finding), finding.message),
        "scored": true,
        "resources": [resource],
        "properties": {
            "container": finding.container,
            "mode": finding.mode.as_str(),
            "source": format!("{}:{}", base.relative(&judged.source), judged.line_of(finding)),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(n: usize) -> Value {
        json!({"policy": POLICY, "result": "fail", "message": "x".repeat(n)})
    }

    #[test]
    fn results_are_split_within_the_budget() {
        let results: Vec<Value> = (0..10).map(|_| result(80)).collect();
        let one = serde_json::to_vec(&results[0]).unwrap().len() + 1;
        let chunks = split(results, one * 4);
        let sizes: Vec<usize> = chunks.iter().map(Vec::len).collect();
        assert_eq!(sizes, [4, 4, 2]);
        assert_eq!(split(Vec::new(), 100), [Vec::<Value>::new()]);
        let big = split(vec![result(500), result(1)], 100);
        assert_eq!(big.len(), 2, "an oversized result goes alone");
    }

    #[test]
    fn subjects_without_a_namespace_get_the_cluster_report() {
        for (api, kind) in [
            (Api::WgPolicy, "ClusterPolicyReport"),
            (Api::OpenReports, "ClusterReport"),
        ] {
            let report = envelope(api, None, POLICY, vec![result(1)]);
            assert_eq!(report["kind"], kind);
            assert!(report["metadata"].get("namespace").is_none());
            assert_eq!(report["summary"]["fail"], 1);
        }
        let namespaced = envelope(Api::WgPolicy, Some("shop"), POLICY, Vec::new());
        assert_eq!(namespaced["metadata"]["namespace"], "shop");
        assert!(
            namespaced.get("source").is_none(),
            "not in the wgpolicyk8s CRD"
        );
    }
}
