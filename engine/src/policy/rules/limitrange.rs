//! `limit-range`: the pod as the `LimitRanger` admission plugin makes it
//! (`plugin/pkg/admission/limitranger`): default limits and requests filled in from the
//! namespace's LimitRanges, then every `min`, `max` and `maxLimitRequestRatio` checked.
//! A template outside them is denied at `kubectl apply`, instead of a ReplicaSet that
//! silently creates no pod.

use std::borrow::Cow;

use crate::policy::finding::{Finding, Mode, RuleId};
use crate::policy::limitrange::{LimitItem, LimitKind, LimitRange};
use crate::policy::podspec::{ContainerRole, ContainerView, CpuMemory, PodSpecView};
use crate::policy::quantity::Quantity;

/// A value a LimitRange filled in, for the report ("where the value came from").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitRangeDefault {
    pub container: String,
    /// `limits.cpu`, `requests.memory`, …
    pub field: &'static str,
    pub value: String,
    pub limit_range: String,
}

#[derive(Clone, Copy)]
enum Resource {
    Cpu,
    Memory,
}

const RESOURCES: [Resource; 2] = [Resource::Cpu, Resource::Memory];

impl Resource {
    fn name(self) -> &'static str {
        match self {
            Resource::Cpu => "cpu",
            Resource::Memory => "memory",
        }
    }

    fn of(self, list: &CpuMemory) -> Option<Quantity> {
        match self {
            Resource::Cpu => list.cpu,
            Resource::Memory => list.memory,
        }
    }

    fn slot(self, list: &mut CpuMemory) -> &mut Option<Quantity> {
        match self {
            Resource::Cpu => &mut list.cpu,
            Resource::Memory => &mut list.memory,
        }
    }
}

/// Fills in what the LimitRanges default, as `LimitRanger` does: a missing limit takes
/// `default`, a missing request takes `defaultRequest` (unless a limit was written: the
/// API server then copies it into the request first). Where several LimitRanges default
/// the same resource, the first by name is used — the plugin's choice is not
/// deterministic — and a warning names them.
pub fn apply_defaults<'s, 'a>(
    spec: &'s PodSpecView<'a>,
    ranges: &[LimitRange],
    defaults: &mut Vec<LimitRangeDefault>,
    out: &mut Vec<Finding>,
) -> Cow<'s, PodSpecView<'a>> {
    // Most namespaces have no LimitRange: the review's hot path copies nothing then.
    if ranges.is_empty() {
        return Cow::Borrowed(spec);
    }
    let mut defaulted = spec.clone();
    for container in &mut defaulted.containers {
        for resource in RESOURCES {
            let written_limit = resource.of(&container.limits).is_some();
            let written_request = resource.of(&container.requests).is_some();
            let pick = |of: fn(&LimitItem) -> &CpuMemory| -> Vec<(&str, Quantity)> {
                ranges
                    .iter()
                    .filter_map(|range| {
                        range
                            .items
                            .iter()
                            .filter(|item| item.kind == LimitKind::Container)
                            .find_map(|item| resource.of(of(item)))
                            .map(|value| (range.name.as_str(), value))
                    })
                    .collect()
            };
            let mut fill = |field: &'static str,
                            sources: Vec<(&str, Quantity)>,
                            slot: &mut Option<Quantity>| {
                let Some((name, value)) = sources.first() else {
                    return;
                };
                *slot = Some(*value);
                defaults.push(LimitRangeDefault {
                    container: container.name.to_string(),
                    field,
                    value: value.written(),
                    limit_range: (*name).to_owned(),
                });
                if sources.len() > 1 {
                    let names: Vec<String> =
                        sources.iter().map(|(n, _)| format!("{n:?}")).collect();
                    out.push(Finding {
                        rule: RuleId::LimitRange,
                        mode: Mode::Warn,
                        container: container.name.to_string(),
                        message: format!(
                            "LimitRanges {} all default {field}; which one applies is not deterministic — keep one \
                             default per resource in a namespace, or set {field}",
                            names.join(", ")
                        ),
                    });
                }
            };
            if !written_limit {
                let (field, sources) = match resource {
                    Resource::Cpu => ("limits.cpu", pick(|i| &i.default)),
                    Resource::Memory => ("limits.memory", pick(|i| &i.default)),
                };
                fill(field, sources, resource.slot(&mut container.limits));
            }
            if !written_limit && !written_request {
                let field = match resource {
                    Resource::Cpu => "requests.cpu",
                    Resource::Memory => "requests.memory",
                };
                fill(
                    field,
                    pick(|i| &i.default_request),
                    resource.slot(&mut container.requests),
                );
            }
        }
    }
    Cow::Owned(defaulted)
}

/// Checks the defaulted pod against every LimitRange's bounds. `written` is the pod
/// before defaulting, to tell a default limit from one the user wrote.
pub fn check(
    defaulted: &PodSpecView<'_>,
    written: &PodSpecView<'_>,
    ranges: &[LimitRange],
    out: &mut Vec<Finding>,
) {
    for (container, original) in defaulted.containers.iter().zip(&written.containers) {
        for resource in RESOURCES {
            invalid_request(container, original, resource, ranges, out);
        }
        for range in ranges {
            for item in range
                .items
                .iter()
                .filter(|i| i.kind == LimitKind::Container)
            {
                for resource in RESOURCES {
                    let usage = Usage {
                        limit: resource.of(&container.limits),
                        request: request_of(container, resource),
                    };
                    for message in violations(item, resource, usage) {
                        out.push(finding(
                            &container.name,
                            format!("{message} per container of LimitRange {:?}", range.name),
                        ));
                    }
                }
            }
        }
    }
    for range in ranges {
        for item in range.items.iter().filter(|i| i.kind == LimitKind::Pod) {
            for resource in RESOURCES {
                for message in violations(item, resource, pod_usage(defaulted, resource)) {
                    out.push(finding(
                        "",
                        format!("{message} per pod of LimitRange {:?}", range.name),
                    ));
                }
            }
        }
    }
}

/// A request above the limit a LimitRange gives makes the pod invalid.
fn invalid_request(
    container: &ContainerView<'_>,
    original: &ContainerView<'_>,
    resource: Resource,
    ranges: &[LimitRange],
    out: &mut Vec<Finding>,
) {
    let defaulted_limit = resource.of(&original.limits).is_none();
    let (Some(limit), Some(request)) = (
        resource.of(&container.limits),
        resource.of(&container.requests),
    ) else {
        return;
    };
    if defaulted_limit && request.millis_ceil() > limit.millis_ceil() {
        let from = ranges
            .iter()
            .find(|r| {
                r.items
                    .iter()
                    .any(|i| resource.of(&i.default) == Some(limit))
            })
            .map(|r| format!(" of LimitRange {:?}", r.name))
            .unwrap_or_default();
        out.push(finding(
            &container.name,
            format!(
                "{} request {} is above the default limit {}{from} that the container would get — no such pod \
                 is valid; set a {} limit of at least the request",
                resource.name(),
                request.written(),
                limit.written(),
                resource.name()
            ),
        ));
    }
}

/// The request the pod would run with: written or defaulted, else the limit (which the
/// API server copies into an unset request).
fn request_of(container: &ContainerView<'_>, resource: Resource) -> Option<Quantity> {
    resource
        .of(&container.requests)
        .or(resource.of(&container.limits))
}

#[derive(Clone, Copy)]
struct Usage {
    limit: Option<Quantity>,
    request: Option<Quantity>,
}

/// The pod's total as `LimitRanger` counts it: the sum over containers, or the largest
/// init container where that is more (init containers run one at a time). `None` when
/// a container leaves the resource unset.
fn pod_usage(pod: &PodSpecView<'_>, resource: Resource) -> Usage {
    let total = |value: fn(&ContainerView<'_>, Resource) -> Option<Quantity>| -> Option<Quantity> {
        let mut sum = 0u128;
        let mut largest_init = 0u128;
        for container in &pod.containers {
            let millis = value(container, resource)?.millis_ceil();
            match container.role {
                ContainerRole::Init => largest_init = largest_init.max(millis),
                // Native sidecars keep running beside the main containers.
                ContainerRole::Main | ContainerRole::Sidecar => sum = sum.saturating_add(millis),
            }
        }
        Some(Quantity::from_millis(sum.max(largest_init)))
    };
    Usage {
        limit: total(|c, r| r.of(&c.limits)),
        request: total(request_of),
    }
}

/// What `usage` breaks of `item`'s bounds for `resource`.
fn violations(item: &LimitItem, resource: Resource, usage: Usage) -> Vec<String> {
    let name = resource.name();
    let mut found = Vec::new();
    if let Some(min) = resource.of(&item.min) {
        match usage.request {
            None => found.push(format!(
                "no {name} request, but the minimum is {}",
                shown(resource, min)
            )),
            Some(request) if request.millis_ceil() < min.millis_ceil() => found.push(format!(
                "{name} request {} is below the minimum {}",
                shown(resource, request),
                shown(resource, min)
            )),
            Some(_) => {}
        }
    }
    // One finding per bound, in LimitRanger's order: no limit, the limit, the request.
    if let Some(max) = resource.of(&item.max) {
        let above = |q: &Quantity| q.millis_ceil() > max.millis_ceil();
        match (usage.limit, usage.request) {
            (None, _) => found.push(format!(
                "no {name} limit, but the maximum is {}",
                shown(resource, max)
            )),
            (Some(limit), _) if above(&limit) => found.push(format!(
                "{name} limit {} is above the maximum {}",
                shown(resource, limit),
                shown(resource, max)
            )),
            (_, Some(request)) if above(&request) => found.push(format!(
                "{name} request {} is above the maximum {}",
                shown(resource, request),
                shown(resource, max)
            )),
            _ => {}
        }
    }
    if let Some(ratio) = resource.of(&item.max_limit_request_ratio) {
        let (limit, request) = (
            usage.limit.map_or(0, Quantity::millis_ceil),
            usage.request.map_or(0, Quantity::millis_ceil),
        );
        if limit == 0 || request == 0 {
            found.push(format!(
                "{name} needs both a limit and a request: the maximum limit-to-request ratio is {}",
                ratio.written()
            ));
        } else if limit.saturating_mul(1000) > ratio.millis_ceil().saturating_mul(request) {
            found.push(format!(
                "{name} limit-to-request ratio {} is above the maximum {}",
                ratio_text(limit, request),
                ratio.written()
            ));
        }
    }
    found
}

/// A quantity as written; a pod total of memory in `Mi` or `Gi` where it divides.
fn shown(resource: Resource, quantity: Quantity) -> String {
    const MI: u128 = 1 << 20;
    let bytes = quantity.units_ceil();
    match resource {
        Resource::Memory
            if quantity.suffix().is_empty() && bytes > 0 && bytes % (MI << 10) == 0 =>
        {
            format!("{}Gi", bytes / (MI << 10))
        }
        Resource::Memory if quantity.suffix().is_empty() && bytes > 0 && bytes % MI == 0 => {
            format!("{}Mi", bytes / MI)
        }
        _ => quantity.written(),
    }
}

/// `limit ÷ request` with two decimals.
fn ratio_text(limit: u128, request: u128) -> String {
    let hundredths = limit.saturating_mul(100) / request;
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

fn finding(container: &str, message: String) -> Finding {
    Finding {
        rule: RuleId::LimitRange,
        mode: Mode::Enforce,
        container: container.to_owned(),
        message: format!(
            "{message} — the API server would reject every pod; fit the bounds or change the LimitRange"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn ranges(specs: &[(&str, Value)]) -> Vec<LimitRange> {
        specs
            .iter()
            .map(|(name, limits)| {
                LimitRange::from_json(
                    &json!({"metadata": {"name": name}, "spec": {"limits": limits}}),
                )
                .unwrap()
            })
            .collect()
    }

    /// (defaults filled in, findings as (mode, container, message)).
    fn judge(
        spec: Value,
        ranges: &[LimitRange],
    ) -> (Vec<LimitRangeDefault>, Vec<(Mode, String, String)>) {
        let json = spec.to_string();
        let view = PodSpecView::from_json(&json, "spec").unwrap();
        let (mut defaults, mut out) = (Vec::new(), Vec::new());
        let defaulted = apply_defaults(&view, ranges, &mut defaults, &mut out);
        check(&defaulted, &view, ranges, &mut out);
        (
            defaults,
            out.into_iter()
                .map(|f| (f.mode, f.container, f.message))
                .collect(),
        )
    }

    fn defaults_of(list: &[LimitRangeDefault]) -> Vec<(&str, &str, &str)> {
        list.iter()
            .map(|d| (d.field, d.value.as_str(), d.limit_range.as_str()))
            .collect()
    }

    #[test]
    fn defaults_fill_what_is_missing() {
        // The Kubernetes docs' "memory-defaults" LimitRange.
        let memory_defaults = ranges(&[(
            "mem-limit-range",
            json!([{"type": "Container", "default": {"memory": "512Mi"}, "defaultRequest": {"memory": "256Mi"}}]),
        )]);
        let (defaults, found) = judge(json!({"containers": [{"name": "app"}]}), &memory_defaults);
        assert_eq!(
            defaults_of(&defaults),
            [
                ("limits.memory", "512Mi", "mem-limit-range"),
                ("requests.memory", "256Mi", "mem-limit-range")
            ]
        );
        assert_eq!(found, []);
        let (defaults, _) = judge(
            json!({"containers": [{"name": "app", "resources": {"limits": {"memory": "1Gi"}}}]}),
            &memory_defaults,
        );
        assert_eq!(
            defaults,
            [],
            "a written limit is kept, and the API server copies it into the request"
        );
    }

    #[test]
    fn a_request_above_the_default_limit_is_an_invalid_pod() {
        let memory_defaults = ranges(&[(
            "defaults",
            json!([{"type": "Container", "default": {"memory": "512Mi"}}]),
        )]);
        let (_, found) = judge(
            json!({"containers": [{"name": "app", "resources": {"requests": {"memory": "700Mi"}}}]}),
            &memory_defaults,
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].2.starts_with(
            "memory request 700Mi is above the default limit 512Mi of LimitRange \"defaults\""
        ));
    }

    #[test]
    fn bounds_per_container_and_per_pod() {
        // The Kubernetes docs' "cpu-min-max-demo-lr" and a Pod maximum.
        let bounds = ranges(&[(
            "cpu-min-max-demo-lr",
            json!([{"type": "Container", "max": {"cpu": "800m"}, "min": {"cpu": "200m"}},
                   {"type": "Pod", "max": {"memory": "1Gi"}, "maxLimitRequestRatio": {"cpu": "2"}}]),
        )]);
        let spec = json!({"containers": [
            {"name": "big", "resources": {"limits": {"cpu": "1500m", "memory": "600Mi"}, "requests": {"cpu": "500m"}}},
            {"name": "small", "resources": {"limits": {"cpu": "100m", "memory": "600Mi"}}}]});
        let (_, found) = judge(spec, &bounds);
        let summary: Vec<(&str, &str)> = found
            .iter()
            .map(|(_, c, m)| (c.as_str(), m.split(" per ").next().unwrap()))
            .collect();
        assert_eq!(
            summary,
            [
                ("big", "cpu limit 1500m is above the maximum 800m"),
                ("small", "cpu request 100m is below the minimum 200m"),
                ("", "cpu limit-to-request ratio 2.66 is above the maximum 2"),
                ("", "memory limit 1200Mi is above the maximum 1Gi"),
            ]
        );
        assert!(
            found[0]
                .2
                .contains("per container of LimitRange \"cpu-min-max-demo-lr\"")
        );
        assert!(found.iter().all(|(mode, _, _)| *mode == Mode::Enforce));
    }

    #[test]
    fn a_defaulted_limit_satisfies_max() {
        let bounds = ranges(&[("lr", json!([{"type": "Container", "max": {"cpu": "2"}}]))]);
        let (defaults, found) = judge(json!({"containers": [{"name": "app"}]}), &bounds);
        assert_eq!(
            defaults_of(&defaults),
            [("limits.cpu", "2", "lr"), ("requests.cpu", "2", "lr")]
        );
        assert_eq!(found, []);
    }

    #[test]
    fn several_defaults_for_one_resource_warn() {
        let two = ranges(&[
            (
                "a-team",
                json!([{"type": "Container", "default": {"cpu": "1"}}]),
            ),
            (
                "b-platform",
                json!([{"type": "Container", "default": {"cpu": "2"}}]),
            ),
        ]);
        let (defaults, found) = judge(json!({"containers": [{"name": "app"}]}), &two);
        assert_eq!(defaults_of(&defaults)[0], ("limits.cpu", "1", "a-team"));
        assert_eq!(found[0].0, Mode::Warn);
        assert!(
            found[0]
                .2
                .contains("LimitRanges \"a-team\", \"b-platform\" all default limits.cpu"),
            "{found:?}"
        );
    }
}
