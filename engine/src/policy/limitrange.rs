//! LimitRanges, read with the API server's own defaulting (`SetDefaults_LimitRangeItem`):
//! for a `Container` item a missing `default` takes `max`, a missing `defaultRequest`
//! takes `default`, then `min`. So `deployguard check` reading raw YAML and the server
//! reading stored objects see the same bounds.

use std::collections::BTreeMap;

use serde_json::Value;

use super::podspec::{CpuMemory, SpecError};
use super::quantity::Quantity;

/// What an item bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// Each container.
    Container,
    /// The sum over the pod's containers.
    Pod,
}

impl LimitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Container => "Container",
            LimitKind::Pod => "Pod",
        }
    }
}

/// One `spec.limits[]` entry of type `Container` or `Pod`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitItem {
    pub kind: LimitKind,
    pub max: CpuMemory,
    pub min: CpuMemory,
    pub default: CpuMemory,
    pub default_request: CpuMemory,
    pub max_limit_request_ratio: CpuMemory,
}

/// A LimitRange: its name and the items that bound pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitRange {
    pub name: String,
    pub items: Vec<LimitItem>,
}

impl LimitRange {
    /// Reads a LimitRange object; items of other types (`PersistentVolumeClaim`) are skipped.
    pub fn from_json(object: &Value) -> Result<LimitRange, SpecError> {
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let at = |path: String| move |problem: String| SpecError { path, problem };
        let limits = match object.pointer("/spec/limits") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(items)) => items.as_slice(),
            Some(_) => return Err(at("spec.limits".into())("expected an array".into())),
        };
        let mut items = Vec::new();
        for (index, item) in limits.iter().enumerate() {
            let kind = match item.get("type").and_then(Value::as_str) {
                Some("Container") => LimitKind::Container,
                Some("Pod") => LimitKind::Pod,
                _ => continue,
            };
            let list =
                |field: &str| read_list(item.get(field), &format!("spec.limits[{index}].{field}"));
            let mut parsed = LimitItem {
                kind,
                max: list("max")?,
                min: list("min")?,
                default: list("default")?,
                default_request: list("defaultRequest")?,
                max_limit_request_ratio: list("maxLimitRequestRatio")?,
            };
            if kind == LimitKind::Container {
                parsed.default = parsed.default.or(parsed.max);
                parsed.default_request = parsed.default_request.or(parsed.default).or(parsed.min);
            }
            items.push(parsed);
        }
        Ok(LimitRange { name, items })
    }
}

fn read_list(value: Option<&Value>, path: &str) -> Result<CpuMemory, SpecError> {
    let Some(map) = value.filter(|v| !v.is_null()) else {
        return Ok(CpuMemory::default());
    };
    let map = map.as_object().ok_or_else(|| SpecError {
        path: path.to_owned(),
        problem: "expected an object".to_owned(),
    })?;
    let quantity = |name: &str| {
        map.get(name)
            .filter(|v| !v.is_null())
            .map(|raw| {
                Quantity::from_json(raw).map_err(|e| SpecError {
                    path: format!("{path}.{name}"),
                    problem: e.to_string(),
                })
            })
            .transpose()
    };
    Ok(CpuMemory {
        cpu: quantity("cpu")?,
        memory: quantity("memory")?,
    })
}

/// No LimitRanges anywhere: what a door judges with when it knows of none (`review`, a
/// standalone `check`, the server without the watch).
pub static NO_LIMIT_RANGES: LimitRanges = LimitRanges::new();

/// The LimitRanges of every namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitRanges {
    by_namespace: BTreeMap<String, Vec<LimitRange>>,
}

impl LimitRanges {
    pub const fn new() -> LimitRanges {
        LimitRanges {
            by_namespace: BTreeMap::new(),
        }
    }

    pub fn insert(&mut self, namespace: &str, range: LimitRange) {
        let ranges = self.by_namespace.entry(namespace.to_owned()).or_default();
        ranges.retain(|r| r.name != range.name);
        ranges.push(range);
        ranges.sort_by(|a, b| a.name.cmp(&b.name));
    }

    pub fn remove(&mut self, namespace: &str, name: &str) {
        if let Some(ranges) = self.by_namespace.get_mut(namespace) {
            ranges.retain(|r| r.name != name);
            if ranges.is_empty() {
                self.by_namespace.remove(namespace);
            }
        }
    }

    /// The LimitRanges of `namespace`, by name.
    pub fn namespace(&self, namespace: &str) -> &[LimitRange] {
        self.by_namespace
            .get(namespace)
            .map_or(&[][..], Vec::as_slice)
    }

    pub fn is_empty(&self) -> bool {
        self.by_namespace.is_empty()
    }
}

impl CpuMemory {
    /// Each resource from `self`, else from `other`.
    pub fn or(self, other: CpuMemory) -> CpuMemory {
        CpuMemory {
            cpu: self.cpu.or(other.cpu),
            memory: self.memory.or(other.memory),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(text: &str) -> Option<Quantity> {
        Some(Quantity::parse(text).unwrap())
    }

    #[test]
    fn container_items_are_defaulted_as_the_api_server_does() {
        let range = LimitRange::from_json(
            &json!({"kind": "LimitRange", "metadata": {"name": "bounds"},
            "spec": {"limits": [
                {"type": "Container", "max": {"cpu": "2", "memory": "1Gi"}, "min": {"cpu": "100m"}},
                {"type": "Pod", "max": {"cpu": "4"}},
                {"type": "PersistentVolumeClaim", "max": {"storage": "10Gi"}},
            ]}}),
        )
        .unwrap();
        assert_eq!(range.name, "bounds");
        assert_eq!(range.items.len(), 2);
        let container = &range.items[0];
        assert_eq!(container.default.cpu, q("2"), "a missing default takes max");
        assert_eq!(
            container.default_request.memory,
            q("1Gi"),
            "defaultRequest takes default"
        );
        assert_eq!(
            container.default_request.cpu,
            q("2"),
            "default comes before min"
        );
        assert_eq!(
            range.items[1].default,
            CpuMemory::default(),
            "Pod items get no defaults"
        );
        let min_only = LimitRange::from_json(&json!({"metadata": {"name": "m"},
            "spec": {"limits": [{"type": "Container", "min": {"memory": "64Mi"}}]}}))
        .unwrap();
        assert_eq!(min_only.items[0].default_request.memory, q("64Mi"));
        assert_eq!(min_only.items[0].default.memory, None);
    }

    #[test]
    fn bad_quantities_are_named() {
        let error = LimitRange::from_json(&json!({"metadata": {"name": "x"},
            "spec": {"limits": [{"type": "Container", "default": {"memory": "1GB"}}]}}))
        .unwrap_err();
        assert_eq!(error.path, "spec.limits[0].default.memory");
    }

    #[test]
    fn ranges_are_kept_per_namespace_by_name() {
        let mut ranges = LimitRanges::default();
        let named = |name: &str| LimitRange {
            name: name.into(),
            items: Vec::new(),
        };
        ranges.insert("shop", named("b"));
        ranges.insert("shop", named("a"));
        ranges.insert("shop", named("b"));
        ranges.insert("shop", named("c"));
        ranges.remove("shop", "c");
        let names: Vec<&str> = ranges
            .namespace("shop")
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert!(ranges.namespace("other").is_empty());
    }
}
