//! The downward API's `resourceFieldRef`, evaluated as the kubelet does
//! (`ExtractContainerResourceValue`): `ceil(quantity ÷ divisor)`, CPU in millicores and
//! memory in bytes, read from the entry's own container or the one `containerName` names.

use super::podspec::{ContainerView, PodSpecView, ResourceFieldRef};

/// Which resource a `resourceFieldRef` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldResource {
    Cpu,
    Memory,
}

impl ResourceFieldRef<'_> {
    /// The resource read, for the `resource`s that can size the Go runtime.
    pub fn kind(&self) -> Option<FieldResource> {
        match &*self.resource {
            "limits.cpu" | "requests.cpu" => Some(FieldResource::Cpu),
            "limits.memory" | "requests.memory" => Some(FieldResource::Memory),
            _ => None,
        }
    }

    /// `limits.memory (divisor 1Mi)`, for messages.
    pub fn describe(&self) -> String {
        match self.divisor {
            Some(divisor) => format!("{} (divisor {})", self.resource, divisor.written()),
            None => self.resource.to_string(),
        }
    }
}

/// The value the kubelet gives the variable, or `None` when admission cannot know it: the
/// referenced limit is absent (the kubelet then uses the node's allocatable), the
/// container does not exist, or the resource is not CPU or memory.
pub fn resource_field_value(
    field: &ResourceFieldRef<'_>,
    own: &ContainerView<'_>,
    pod: &PodSpecView<'_>,
) -> Option<u128> {
    let container = match field.container_name.as_deref() {
        Some(name) => pod.container(name)?,
        None => own,
    };
    let quantity = match &*field.resource {
        "limits.cpu" => container.limits.cpu,
        "limits.memory" => container.limits.memory,
        // The API server copies a limit into an unset request.
        "requests.cpu" => container.requests.cpu.or(container.limits.cpu),
        "requests.memory" => container.requests.memory.or(container.limits.memory),
        _ => None,
    }?;
    if field.resource.starts_with("limits.") && quantity.is_zero() {
        return None;
    }
    match field.kind()? {
        FieldResource::Cpu => {
            let divisor = field.divisor.map_or(1000, |d| d.millis_ceil());
            (divisor > 0).then(|| quantity.millis_ceil().div_ceil(divisor))
        }
        FieldResource::Memory => {
            let divisor = field.divisor.map_or(1, |d| d.units_ceil());
            (divisor > 0).then(|| quantity.units_ceil().div_ceil(divisor))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::podspec::EnvSource;
    use serde_json::{Value, json};

    /// The value of the first env entry of container `app`, next to a container `other`.
    fn value_of(field_ref: Value) -> Option<u128> {
        let spec = json!({"containers": [
            {"name": "app", "resources": {"limits": {"cpu": "1500m", "memory": "512Mi"}, "requests": {"memory": "256Mi"}},
             "env": [{"name": "X", "valueFrom": {"resourceFieldRef": field_ref}}]},
            {"name": "other", "resources": {"limits": {"cpu": "3", "memory": "2Gi"}}},
            {"name": "bare"}]});
        let json = spec.to_string();
        let view = PodSpecView::from_json(&json, "spec").unwrap();
        let app = &view.containers[0];
        let EnvSource::ResourceField(field) = &app.env[0].source else {
            panic!("not a resourceFieldRef")
        };
        resource_field_value(field, app, &view)
    }

    #[test]
    fn divisors_as_the_kubelet_applies_them() {
        let mib = 1 << 20;
        assert_eq!(
            value_of(json!({"resource": "limits.memory"})),
            Some(512 * mib)
        );
        assert_eq!(
            value_of(json!({"resource": "limits.memory", "divisor": "1"})),
            Some(512 * mib)
        );
        assert_eq!(
            value_of(json!({"resource": "limits.memory", "divisor": "1Mi"})),
            Some(512)
        );
        assert_eq!(
            value_of(json!({"resource": "limits.memory", "divisor": "1Gi"})),
            Some(1),
            "rounded up"
        );
        assert_eq!(
            value_of(json!({"resource": "limits.cpu"})),
            Some(2),
            "1500m rounds up to 2"
        );
        assert_eq!(
            value_of(json!({"resource": "limits.cpu", "divisor": "1m"})),
            Some(1500)
        );
        assert_eq!(
            value_of(json!({"resource": "requests.memory", "divisor": "1Mi"})),
            Some(256)
        );
        assert_eq!(
            value_of(json!({"resource": "requests.cpu", "divisor": "1m"})),
            Some(1500),
            "request defaults to the limit"
        );
    }

    #[test]
    fn another_containers_resources() {
        let other =
            json!({"resource": "limits.memory", "containerName": "other", "divisor": "1Mi"});
        assert_eq!(value_of(other), Some(2048));
        assert_eq!(
            value_of(json!({"resource": "limits.cpu", "containerName": "other"})),
            Some(3)
        );
    }

    #[test]
    fn unknowable_values() {
        assert_eq!(
            value_of(json!({"resource": "limits.memory", "containerName": "bare"})),
            None,
            "node allocatable"
        );
        assert_eq!(
            value_of(json!({"resource": "limits.memory", "containerName": "missing"})),
            None
        );
        assert_eq!(
            value_of(json!({"resource": "limits.ephemeral-storage"})),
            None
        );
        assert_eq!(
            value_of(json!({"resource": "limits.memory", "divisor": "0"})),
            None
        );
    }
}
