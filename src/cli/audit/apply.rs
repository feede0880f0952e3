//! `--apply-reports`: the PolicyReports written to the cluster by server-side apply, as
//! `kubectl apply --server-side --field-manager deployguard --force-conflicts` would:
//! deployguard owns its reports' fields, so a conflict with another manager is overridden
//! rather than failing the audit.

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::Value;

/// The field manager named in `managedFields`.
pub const FIELD_MANAGER: &str = "deployguard";

/// Applies every report object; one message per report that could not be written.
pub async fn apply_reports(client: &Client, reports: &[Value]) -> Vec<String> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut failures = Vec::new();
    for report in reports {
        let text = |pointer| {
            report
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let (api_version, kind, name) =
            (text("/apiVersion"), text("/kind"), text("/metadata/name"));
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let resource =
            ApiResource::from_gvk_with_plural(&gvk, &format!("{}s", kind.to_lowercase()));
        let api: Api<DynamicObject> = match report
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
        {
            Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        if let Err(error) = api.patch(name, &params, &Patch::Apply(report)).await {
            let place = report
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("cluster");
            failures.push(format!("cannot apply {kind} {place}/{name}: {error}"));
        }
    }
    failures
}
