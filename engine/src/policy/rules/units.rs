//! `resource-units`: quantities whose size says the unit was wrong — `memory: 1000m` is
//! one byte (`m` is milli), `cpu: 500` is five hundred cores.

use crate::policy::finding::{Finding, Mode, RuleId};
use crate::policy::podspec::{ContainerView, PodSpecView};
use crate::policy::quantity::Quantity;

/// No container starts in less memory than this.
pub const MIN_MEMORY_BYTES: u128 = 4 << 20;

pub fn check(
    container: &ContainerView<'_>,
    pod: &PodSpecView<'_>,
    max_cpu_cores: u32,
    out: &mut Vec<Finding>,
) {
    let mut found = |mode, message: String| {
        out.push(Finding {
            rule: RuleId::ResourceUnits,
            mode,
            container: container.name.to_string(),
            message,
        })
    };
    // A zero limit bounds nothing: the pod-level one applies.
    let own = container.limits.memory.filter(|q| !q.is_zero());
    if let Some(limit) = own.or(pod.pod_limits.memory) {
        let bytes = limit.units_ceil();
        if bytes > 0 && bytes < MIN_MEMORY_BYTES {
            found(
                Mode::Enforce,
                format!(
                    "memory limit {}{}. No container runs in under 4 MiB",
                    size(limit),
                    hint(limit)
                ),
            );
        }
    }
    if let Some(request) = container.requests.memory {
        let bytes = request.units_ceil();
        let small = bytes > 0 && bytes < MIN_MEMORY_BYTES;
        if request.suffix() == "m" {
            let fix = if small {
                hint(request)
            } else {
                " — write it in bytes, Mi or Gi".to_owned()
            };
            found(
                Mode::Enforce,
                format!(
                    "memory request {}, as m is milli (a thousandth of a byte){fix}",
                    size(request)
                ),
            );
        } else if small {
            found(
                Mode::Warn,
                format!(
                    "memory request {}{}. The scheduler reserves next to nothing",
                    size(request),
                    hint(request)
                ),
            );
        }
    }
    let too_many_cores = |cpu: Quantity| cpu.millis_ceil() > u128::from(max_cpu_cores) * 1000;
    let cpu_fields = [
        (
            "limit",
            container
                .limits
                .cpu
                .filter(|q| !q.is_zero())
                .or(pod.pod_limits.cpu),
        ),
        ("request", container.requests.cpu),
    ];
    for (field, cpu) in cpu_fields {
        if let Some(cpu) = cpu.filter(|cpu| too_many_cores(*cpu)) {
            let cores = cpu.millis_ceil().div_ceil(1000);
            let hint = cpu
                .respelled("m")
                .filter(|_| cpu.suffix().is_empty())
                .map(|milli| format!(" — did you mean {milli}?"))
                .unwrap_or_default();
            found(
                Mode::Warn,
                format!(
                    "CPU {field} {} is {cores} cores, more than {max_cpu_cores}{hint}",
                    cpu.written()
                ),
            );
        }
    }
}

/// `1000m is 1 byte`
fn size(memory: Quantity) -> String {
    let bytes = memory.units_ceil();
    let unit = if bytes == 1 { "byte" } else { "bytes" };
    format!("{} is {bytes} {unit}", memory.written())
}

/// ` — did you mean 1000Mi?`, where the spelling suggests the intended unit.
fn hint(memory: Quantity) -> String {
    let intended = match memory.suffix() {
        "m" | "" | "k" | "Ki" => memory.respelled("Mi"),
        "M" | "Mi" => memory.respelled("Gi"),
        _ => None,
    };
    intended
        .map(|spelling| format!(" — did you mean {spelling}?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn findings(resources: Value) -> Vec<(Mode, String)> {
        let spec = json!({"containers": [{"name": "app", "resources": resources}]});
        let json = spec.to_string();
        let view = PodSpecView::from_json(&json, "spec").unwrap();
        let mut out = Vec::new();
        check(&view.containers[0], &view, 128, &mut out);
        out.into_iter().map(|f| (f.mode, f.message)).collect()
    }

    #[test]
    fn memory_limits_under_four_mebibytes_deny() {
        let cases = [
            (
                json!("1000m"),
                "memory limit 1000m is 1 byte — did you mean 1000Mi?",
            ),
            (
                json!(512),
                "memory limit 512 is 512 bytes — did you mean 512Mi?",
            ),
            (
                json!("512"),
                "memory limit 512 is 512 bytes — did you mean 512Mi?",
            ),
            (
                json!("2Mi"),
                "memory limit 2Mi is 2097152 bytes — did you mean 2Gi?",
            ),
            (
                json!("100Ki"),
                "memory limit 100Ki is 102400 bytes — did you mean 100Mi?",
            ),
        ];
        for (memory, message) in cases {
            let found = findings(json!({"limits": {"memory": memory}}));
            assert_eq!(found.len(), 1, "{memory}: {found:?}");
            assert_eq!(found[0].0, Mode::Enforce);
            assert!(found[0].1.starts_with(message), "{memory}: {found:?}");
        }
        for fine in [json!("4Mi"), json!("1Gi"), json!(0), json!("4194304")] {
            assert_eq!(findings(json!({"limits": {"memory": fine}})), [], "{fine}");
        }
    }

    #[test]
    fn memory_requests_deny_only_milli() {
        let milli = findings(json!({"requests": {"memory": "128974848000m"}}));
        assert_eq!(milli.len(), 1);
        assert_eq!(milli[0].0, Mode::Enforce, "m is never meant for memory");
        assert_eq!(
            milli[0].1,
            "memory request 128974848000m is 128974848 bytes, as m is milli (a thousandth of a byte) — \
             write it in bytes, Mi or Gi"
        );
        let small = findings(json!({"requests": {"memory": "100Ki"}}));
        assert_eq!(small[0].0, Mode::Warn);
        assert_eq!(findings(json!({"requests": {"memory": "128Mi"}})), []);
    }

    #[test]
    fn cpu_above_the_core_count_warns() {
        let found = findings(json!({"limits": {"cpu": 500}, "requests": {"cpu": "200"}}));
        assert_eq!(
            found,
            [
                (
                    Mode::Warn,
                    "CPU limit 500 is 500 cores, more than 128 — did you mean 500m?".to_owned()
                ),
                (
                    Mode::Warn,
                    "CPU request 200 is 200 cores, more than 128 — did you mean 200m?".to_owned()
                ),
            ]
        );
        assert_eq!(findings(json!({"limits": {"cpu": "128"}})), []);
        let big_k = findings(json!({"limits": {"cpu": "1k"}}));
        assert_eq!(big_k[0].1, "CPU limit 1k is 1000 cores, more than 128");
    }

    #[test]
    fn a_pod_level_memory_limit_counts_for_containers_without_their_own() {
        let spec =
            json!({"resources": {"limits": {"memory": "1000m"}}, "containers": [{"name": "app"}]});
        let json = spec.to_string();
        let view = PodSpecView::from_json(&json, "spec").unwrap();
        let mut out = Vec::new();
        check(&view.containers[0], &view, 128, &mut out);
        assert_eq!(out.len(), 1);
    }
}
