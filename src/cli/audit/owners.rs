//! Which objects are represented by their controller: a ReplicaSet's pods by the
//! ReplicaSet, the ReplicaSet by its Deployment. Such an object was made from a template
//! that is judged already, so judging it again would report every finding once per
//! replica. An object is represented only when its controller owner was read, is the
//! same object (uid) and selects it; a claim that cannot be checked so (an owner that is
//! missing, of a kind not listed, or whose selector does not match) is judged in full.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};
use serde_json::Value;

/// For each object, whether its controller owner among `objects` represents it.
pub fn represented(objects: &[Value]) -> Vec<bool> {
    let mut by_name: HashMap<(&str, &str, &str), &Value> = HashMap::new();
    for object in objects {
        by_name.insert(
            (
                text(object, "/metadata/namespace"),
                text(object, "/kind"),
                text(object, "/metadata/name"),
            ),
            object,
        );
    }
    objects
        .iter()
        .map(|object| {
            let Some(owner) = controller(object) else {
                return false;
            };
            let key = (
                text(object, "/metadata/namespace"),
                text(owner, "/kind"),
                text(owner, "/name"),
            );
            by_name.get(&key).is_some_and(|found| {
                let uid = text(owner, "/uid");
                (uid.is_empty() || uid == text(found, "/metadata/uid")) && selects(found, object)
            })
        })
        .collect()
}

/// The ownerReference with `controller: true`.
fn controller(object: &Value) -> Option<&Value> {
    object
        .pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|owner| owner.get("controller").and_then(Value::as_bool) == Some(true))
}

/// Whether `owner`'s selector matches `object`'s labels. A CronJob has no selector: the
/// Jobs it creates are found by owner uid alone.
fn selects(owner: &Value, object: &Value) -> bool {
    let labels: BTreeMap<String, String> = object
        .pointer("/metadata/labels")
        .and_then(|labels| serde_json::from_value(labels.clone()).ok())
        .unwrap_or_default();
    match text(owner, "/kind") {
        "CronJob" => true,
        // A ReplicationController's selector is a plain map, defaulted to the template's labels.
        "ReplicationController" => {
            let selector = owner
                .pointer("/spec/selector")
                .or_else(|| owner.pointer("/spec/template/metadata/labels"))
                .and_then(Value::as_object);
            selector.is_some_and(|map| {
                !map.is_empty()
                    && map.iter().all(|(k, v)| {
                        v.as_str()
                            .is_some_and(|v| labels.get(k).is_some_and(|l| l == v))
                    })
            })
        }
        _ => label_selector(owner)
            .is_some_and(|selector| !selector.selects_all() && selector.matches(&labels)),
    }
}

/// `spec.selector` as a LabelSelector. An empty one is refused by the API for every kind
/// that has one, so it selects nothing here.
fn label_selector(owner: &Value) -> Option<Selector> {
    let selector: LabelSelector =
        serde_json::from_value(owner.pointer("/spec/selector")?.clone()).ok()?;
    Selector::try_from(selector).ok()
}

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(
        kind: &str,
        name: &str,
        labels: Value,
        owner: Option<(&str, &str, &str)>,
        spec: Value,
    ) -> Value {
        let mut object = json!({"kind": kind, "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}"), "labels": labels}, "spec": spec});
        if let Some((kind, name, uid)) = owner {
            object["metadata"]["ownerReferences"] =
                json!([{"kind": kind, "name": name, "uid": uid, "controller": true}]);
        }
        object
    }

    #[test]
    fn owners_that_exist_and_select_represent_their_objects() {
        let rs = object(
            "ReplicaSet",
            "web-1",
            json!({"app": "web", "hash": "1"}),
            Some(("Deployment", "web", "uid-web")),
            json!({"selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "hash", "operator": "In", "values": ["1"]}]}}),
        );
        let deployment = object(
            "Deployment",
            "web",
            json!({}),
            None,
            json!({"selector": {"matchLabels": {"app": "web"}}}),
        );
        let pod = |name, labels, owner| object("Pod", name, labels, owner, json!({}));
        let objects = [
            deployment,
            rs,
            pod(
                "owned",
                json!({"app": "web", "hash": "1"}),
                Some(("ReplicaSet", "web-1", "uid-web-1")),
            ),
            pod(
                "unselected",
                json!({"app": "web", "hash": "2"}),
                Some(("ReplicaSet", "web-1", "uid-web-1")),
            ),
            pod(
                "orphan",
                json!({"app": "web"}),
                Some(("ReplicaSet", "gone", "uid-gone")),
            ),
            pod(
                "other-uid",
                json!({"app": "web", "hash": "1"}),
                Some(("ReplicaSet", "web-1", "uid-old")),
            ),
            pod("plain", json!({}), None),
        ];
        assert_eq!(
            represented(&objects),
            [false, true, true, false, false, false, false]
        );
    }

    #[test]
    fn replication_controllers_and_cron_jobs() {
        let rc = object(
            "ReplicationController",
            "rc",
            json!({}),
            None,
            json!({"selector": {"app": "old"}}),
        );
        let cron = object("CronJob", "nightly", json!({}), None, json!({}));
        let empty = object(
            "ReplicaSet",
            "empty",
            json!({}),
            None,
            json!({"selector": {}}),
        );
        let objects = [
            rc,
            cron,
            empty,
            object(
                "Pod",
                "a",
                json!({"app": "old"}),
                Some(("ReplicationController", "rc", "uid-rc")),
                json!({}),
            ),
            object(
                "Pod",
                "b",
                json!({"app": "new"}),
                Some(("ReplicationController", "rc", "uid-rc")),
                json!({}),
            ),
            object(
                "Job",
                "nightly-1",
                json!({}),
                Some(("CronJob", "nightly", "uid-nightly")),
                json!({}),
            ),
            object(
                "Pod",
                "c",
                json!({"x": "y"}),
                Some(("ReplicaSet", "empty", "uid-empty")),
                json!({}),
            ),
        ];
        assert_eq!(
            represented(&objects),
            [false, false, false, true, false, true, false]
        );
    }
}
