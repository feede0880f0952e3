//! Reading a PodSpec from JSON text: derived serde structs that borrow strings from the
//! text and skip every field no rule reads. An error is read again with
//! `serde_path_to_error` (only then, so the fast path pays nothing for paths) and names
//! the field it was found in.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::scalars::{PortValue, QuantityWire};
use super::{
    ContainerRole, ContainerView, CpuMemory, EnvSource, EnvVar, PodSpecView, ProbeView,
    ResizePolicy, ResourceFieldRef, SpecError,
};
use crate::policy::probe_defaults::PROBE_DEFAULTS;
use crate::strict::Strict;
use crate::text::Text;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct PodSpecWire<'a> {
    #[serde(borrow, default)]
    containers: Option<Vec<Strict<ContainerWire<'a>>>>,
    #[serde(borrow, default)]
    init_containers: Option<Vec<Strict<ContainerWire<'a>>>>,
    #[serde(borrow, default)]
    restart_policy: Option<Text<'a>>,
    #[serde(default)]
    resources: Option<Strict<ResourcesWire>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct ContainerWire<'a> {
    #[serde(borrow)]
    name: Text<'a>,
    #[serde(borrow, default)]
    restart_policy: Option<Text<'a>>,
    #[serde(default)]
    resources: Option<Strict<ResourcesWire>>,
    #[serde(borrow, default)]
    env: Option<Vec<Strict<EnvWire<'a>>>>,
    // Probes stay raw: the probe-settings rule compares whole probes as stored.
    #[serde(borrow, default)]
    liveness_probe: Option<&'a RawValue>,
    #[serde(borrow, default)]
    readiness_probe: Option<&'a RawValue>,
    #[serde(borrow, default)]
    startup_probe: Option<&'a RawValue>,
    #[serde(borrow, default)]
    ports: Option<Vec<Strict<PortWire<'a>>>>,
    #[serde(borrow, default)]
    resize_policy: Option<Vec<Strict<ResizeWire<'a>>>>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "an object")]
struct ResourcesWire {
    #[serde(default)]
    limits: Option<Strict<CpuMemoryWire>>,
    #[serde(default)]
    requests: Option<Strict<CpuMemoryWire>>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "an object")]
struct CpuMemoryWire {
    #[serde(default)]
    cpu: Option<QuantityWire>,
    #[serde(default)]
    memory: Option<QuantityWire>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct EnvWire<'a> {
    #[serde(borrow)]
    name: Text<'a>,
    #[serde(borrow, default)]
    value: Option<Text<'a>>,
    #[serde(borrow, default)]
    value_from: Option<Strict<ValueFromWire<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct ValueFromWire<'a> {
    #[serde(borrow, default)]
    resource_field_ref: Option<Strict<FieldRefWire<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct FieldRefWire<'a> {
    #[serde(borrow, default)]
    container_name: Option<Text<'a>>,
    #[serde(borrow)]
    resource: Text<'a>,
    #[serde(default)]
    divisor: Option<QuantityWire>,
}

#[derive(Deserialize)]
#[serde(expecting = "an object")]
struct PortWire<'a> {
    #[serde(borrow, default)]
    name: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct ResizeWire<'a> {
    #[serde(borrow, default)]
    resource_name: Option<Text<'a>>,
    #[serde(borrow, default)]
    restart_policy: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct ProbeWire<'a> {
    #[serde(borrow, default)]
    http_get: Option<Strict<HandlerWire<'a>>>,
    #[serde(borrow, default)]
    tcp_socket: Option<Strict<HandlerWire<'a>>>,
    #[serde(default)]
    period_seconds: Option<i64>,
    #[serde(default)]
    timeout_seconds: Option<i64>,
    #[serde(default)]
    failure_threshold: Option<i64>,
}

#[derive(Deserialize)]
#[serde(expecting = "an object")]
struct HandlerWire<'a> {
    #[serde(borrow, default)]
    port: Option<PortValue<'a>>,
}

/// Parses `json` as `T`; an error names the field under `path` where it was found.
fn parse<'a, T: Deserialize<'a>>(json: &'a str, path: &str) -> Result<T, SpecError> {
    serde_json::from_str(json).map_err(|_| explain::<T>(json, path))
}

/// Reads `json` again, tracking the path, to say where the first error is.
fn explain<'a, T: Deserialize<'a>>(json: &'a str, path: &str) -> SpecError {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let error = match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Ok(_) => {
            return SpecError {
                path: path.to_owned(),
                problem: "cannot be read".to_owned(),
            };
        }
        Err(error) => error,
    };
    let inner = error.path().to_string();
    SpecError {
        path: match inner.as_str() {
            "" | "." => path.to_owned(),
            _ if path.is_empty() => inner,
            _ if inner.starts_with('[') => format!("{path}{inner}"),
            _ => format!("{path}.{inner}"),
        },
        problem: without_position(error.inner()),
    }
}

/// serde_json's message without its ` at line L column C`: positions in a sub-document
/// (or in JSON re-written from YAML) mean nothing to the reader; the path says where.
pub fn without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_owned()
}

/// `null` means unset in Kubernetes objects.
fn present(raw: Option<&RawValue>) -> Option<&RawValue> {
    raw.filter(|raw| raw.get() != "null")
}

impl<'a> PodSpecView<'a> {
    /// Reads a PodSpec from its JSON text. `path` is the dotted location of `spec`, for
    /// error messages.
    pub fn from_json(json: &'a str, path: &str) -> Result<PodSpecView<'a>, SpecError> {
        let Strict(wire): Strict<PodSpecWire<'a>> = parse(json, path)?;
        let mut containers = Vec::new();
        for (role_field, list) in [
            ("containers", wire.containers),
            ("initContainers", wire.init_containers),
        ] {
            for (index, item) in list.into_iter().flatten().enumerate() {
                let at = format_args!("{path}.{role_field}[{index}]").to_string();
                containers.push(container(item.0, role_field, index, &at)?);
            }
        }
        let (pod_limits, pod_requests) = resources(wire.resources);
        Ok(PodSpecView {
            containers,
            restart_policy: wire.restart_policy,
            pod_limits,
            pod_requests,
        })
    }
}

fn container<'a>(
    wire: ContainerWire<'a>,
    role_field: &str,
    index: usize,
    at: &str,
) -> Result<ContainerView<'a>, SpecError> {
    let role = match (role_field, wire.restart_policy.as_deref()) {
        ("containers", _) => ContainerRole::Main,
        (_, Some("Always")) => ContainerRole::Sidecar,
        _ => ContainerRole::Init,
    };
    let (limits, requests) = resources(wire.resources);
    let has_env = wire.env.is_some();
    Ok(ContainerView {
        role,
        index,
        name: wire.name,
        liveness: probe(wire.liveness_probe, at, "livenessProbe")?,
        readiness: probe(wire.readiness_probe, at, "readinessProbe")?,
        startup: probe(wire.startup_probe, at, "startupProbe")?,
        port_names: wire
            .ports
            .into_iter()
            .flatten()
            .filter_map(|port| port.0.name)
            .collect(),
        limits,
        requests,
        env: wire
            .env
            .into_iter()
            .flatten()
            .map(|e| env_var(e.0))
            .collect(),
        has_env,
        resize_policy: resize_policy(wire.resize_policy.unwrap_or_default()),
    })
}

fn resources(wire: Option<Strict<ResourcesWire>>) -> (CpuMemory, CpuMemory) {
    let wire = wire.unwrap_or_default().0;
    let map = |wire: Option<Strict<CpuMemoryWire>>| {
        let wire = wire.unwrap_or_default().0;
        CpuMemory {
            cpu: wire.cpu.map(|q| q.0),
            memory: wire.memory.map(|q| q.0),
        }
    };
    (map(wire.limits), map(wire.requests))
}

fn env_var(wire: EnvWire<'_>) -> EnvVar<'_> {
    let source = match wire.value_from.map(|from| from.0) {
        None => wire.value.map_or(EnvSource::Empty, EnvSource::Literal),
        Some(ValueFromWire {
            resource_field_ref: None,
        }) => EnvSource::Opaque,
        Some(ValueFromWire {
            resource_field_ref: Some(Strict(field)),
        }) => EnvSource::ResourceField(ResourceFieldRef {
            container_name: field.container_name.filter(|name| !name.is_empty()),
            resource: field.resource,
            divisor: field.divisor.map(|q| q.0),
        }),
    };
    EnvVar {
        name: wire.name,
        source,
    }
}

fn resize_policy(items: Vec<Strict<ResizeWire<'_>>>) -> ResizePolicy {
    let mut policy = ResizePolicy::default();
    for Strict(item) in items {
        let restarts = item.restart_policy.as_deref() == Some("RestartContainer");
        match item.resource_name.as_deref() {
            Some("cpu") => policy.cpu_restarts = restarts,
            Some("memory") => policy.memory_restarts = restarts,
            _ => {}
        }
    }
    policy
}

fn probe<'a>(
    raw: Option<&'a RawValue>,
    container_path: &str,
    field: &str,
) -> Result<Option<ProbeView<'a>>, SpecError> {
    let Some(raw) = present(raw) else {
        return Ok(None);
    };
    let Strict(wire): Strict<ProbeWire<'a>> =
        parse(raw.get(), &format!("{container_path}.{field}"))?;
    let port = |handler: Option<Strict<HandlerWire<'a>>>| handler.and_then(|h| h.0.port)?.0;
    // Kubernetes defaults unset and zero probe timings (SetDefaults_Probe).
    let timing = |field: &str, value: Option<i64>| {
        let default = PROBE_DEFAULTS
            .iter()
            .find(|(name, _)| *name == field)
            .map_or(0, |(_, default)| *default);
        value.filter(|v| *v != 0).unwrap_or(default)
    };
    Ok(Some(ProbeView {
        raw,
        ports: [port(wire.http_get), port(wire.tcp_socket)],
        period_seconds: timing("periodSeconds", wire.period_seconds),
        timeout_seconds: timing("timeoutSeconds", wire.timeout_seconds),
        failure_threshold: timing("failureThreshold", wire.failure_threshold),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::podspec::ProbePort;
    use crate::policy::quantity::Quantity;

    fn error_of(json: &str) -> String {
        PodSpecView::from_json(json, "spec.template.spec")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_name_the_field_without_positions() {
        assert_eq!(
            error_of(
                r#"{"containers": [{"name": "a", "resources": {"limits": {"cpu": "lots"}}}]}"#
            ),
            "spec.template.spec.containers[0].resources.limits.cpu: \"lots\" is not a Kubernetes quantity \
             (expected e.g. 500m, 1.5, 128Mi, 1G, 2e3)"
        );
        assert_eq!(
            error_of(r#"{"containers": [{"image": "a"}]}"#),
            "spec.template.spec.containers[0]: missing field `name`"
        );
        assert_eq!(
            error_of(r#"{"initContainers": [{"name": "a", "env": [{"name": 5}]}]}"#),
            "spec.template.spec.initContainers[0].env[0].name: invalid type: integer `5`, expected a string"
        );
        assert_eq!(
            error_of(
                r#"{"containers": [{"name": "a", "livenessProbe": {"periodSeconds": "10"}}]}"#
            ),
            "spec.template.spec.containers[0].livenessProbe.periodSeconds: invalid type: string \"10\", expected i64"
        );
        assert_eq!(
            error_of("[]"),
            "spec.template.spec: invalid type: sequence, expected an object"
        );
    }

    #[test]
    fn reads_yaml_numbers_ports_nulls_and_escapes() {
        let json = r#"{"containers": [{"name": "a\u0026b", "ports": [{"name": "http"}, {"containerPort": 1}],
            "resources": {"limits": {"cpu": 0.5, "memory": null}},
            "livenessProbe": {"httpGet": {"port": "8080"}, "periodSeconds": 0},
            "readinessProbe": {"tcpSocket": {"port": "http"}, "timeoutSeconds": 3},
            "startupProbe": null,
            "env": [{"name": "A", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "containerName": ""}}}]}]}"#;
        let view = PodSpecView::from_json(json, "spec").unwrap();
        let container = &view.containers[0];
        assert_eq!(container.name, "a&b");
        assert_eq!(container.port_names, [Text::from("http")]);
        assert_eq!(container.limits.cpu, Quantity::parse("500m").ok());
        assert_eq!(container.limits.memory, None);
        let liveness = container.liveness.as_ref().unwrap();
        assert_eq!(liveness.ports[0], Some(ProbePort::Number(8080)));
        assert_eq!(liveness.period_seconds, 10, "zero is defaulted");
        let readiness = container.readiness.as_ref().unwrap();
        assert_eq!(
            readiness.ports[1],
            Some(ProbePort::Name(Text::from("http")))
        );
        assert_eq!(readiness.timeout_seconds, 3);
        assert!(container.startup.is_none(), "null is unset");
        let EnvSource::ResourceField(field) = &container.env[0].source else {
            panic!("{:?}", container.env[0]);
        };
        assert_eq!(
            (field.container_name.as_deref(), &*field.resource),
            (None, "limits.cpu")
        );
    }
}
