//! `cpu-limit`, `memory-limit`, `cpu-request`, `memory-request`.

use crate::policy::finding::{Finding, Mode, RuleId};
use crate::policy::podspec::{ContainerView, PodSpecView};

pub fn check(container: &ContainerView<'_>, pod: &PodSpecView<'_>, out: &mut Vec<Finding>) {
    let mut found = |rule, message: &str| {
        out.push(Finding {
            rule,
            mode: Mode::Enforce,
            container: container.name.to_string(),
            message: message.to_owned(),
        })
    };
    // A pod-level limit (Kubernetes 1.34+) bounds every container without its own.
    let cpu_limit = container.limits.cpu.or(pod.pod_limits.cpu);
    let memory_limit = container.limits.memory.or(pod.pod_limits.memory);
    if cpu_limit.is_none() {
        found(
            RuleId::CpuLimit,
            "no CPU limit — set resources.limits.cpu (or a pod-level spec.resources.limits.cpu)",
        );
    }
    if memory_limit.is_none() {
        found(
            RuleId::MemoryLimit,
            "no memory limit — set resources.limits.memory (or a pod-level spec.resources.limits.memory)",
        );
    }
    // Kubernetes copies a limit into an unset request, so a limit is an effective request.
    if container
        .requests
        .cpu
        .or(cpu_limit)
        .or(pod.pod_requests.cpu)
        .is_none()
    {
        found(
            RuleId::CpuRequest,
            "no CPU request — set resources.requests.cpu so the scheduler reserves CPU",
        );
    }
    if container
        .requests
        .memory
        .or(memory_limit)
        .or(pod.pod_requests.memory)
        .is_none()
    {
        found(
            RuleId::MemoryRequest,
            "no memory request — set resources.requests.memory so the scheduler reserves memory",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn rules(spec: Value) -> Vec<RuleId> {
        let json = spec.to_string();
        let view = PodSpecView::from_json(&json, "spec").unwrap();
        let mut out = Vec::new();
        for container in &view.containers {
            check(container, &view, &mut out);
        }
        out.into_iter().map(|f| f.rule).collect()
    }

    #[test]
    fn nothing_set() {
        let spec = json!({"containers": [{"name": "app"}]});
        assert_eq!(
            rules(spec),
            [
                RuleId::CpuLimit,
                RuleId::MemoryLimit,
                RuleId::CpuRequest,
                RuleId::MemoryRequest
            ]
        );
    }

    #[test]
    fn limits_are_effective_requests() {
        let spec = json!({"containers": [{"name": "app", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]});
        assert_eq!(rules(spec), []);
    }

    #[test]
    fn requests_alone_leave_limits_missing() {
        let spec = json!({"containers": [{"name": "app", "resources": {"requests": {"cpu": 0.5, "memory": "128Mi"}}}]});
        assert_eq!(rules(spec), [RuleId::CpuLimit, RuleId::MemoryLimit]);
    }

    #[test]
    fn pod_level_limits_cover_containers() {
        let spec = json!({
            "resources": {"limits": {"cpu": "2", "memory": "2Gi"}},
            "containers": [{"name": "a"}, {"name": "b", "resources": {"limits": {"cpu": "500m"}}}],
        });
        assert_eq!(rules(spec), []);
        let only_requests = json!({
            "resources": {"requests": {"cpu": "2", "memory": "2Gi"}},
            "containers": [{"name": "a"}],
        });
        assert_eq!(
            rules(only_requests),
            [RuleId::CpuLimit, RuleId::MemoryLimit]
        );
    }

    #[test]
    fn init_containers_are_checked() {
        let spec = json!({"containers": [], "initContainers": [{"name": "init", "resources": {"limits": {"cpu": "1"}}}]});
        assert_eq!(rules(spec), [RuleId::MemoryLimit, RuleId::MemoryRequest]);
    }
}
