//! Reading a PodSpec from JSON text: derived serde structs that borrow strings from the
//! text and skip every field no rule reads. An error is read again with
//! `serde_path_to_error` (only then, so the fast path pays nothing for paths) and names
//! the field it was found in.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, Visitor};
use serde_json::value::RawValue;

use super::{
    ContainerRole, ContainerView, CpuMemory, EnvSource, EnvVar, PodSpecView, ProbePort, ProbeView,
    ResizePolicy, ResourceFieldRef, SpecError,
};
use crate::policy::probe_defaults::PROBE_DEFAULTS;
use crate::policy::quantity::Quantity;
use crate::text::Text;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct PodSpecWire<'a> {
    #[serde(borrow, default)]
    containers: Option<Vec<ContainerWire<'a>>>,
    #[serde(borrow, default)]
    init_containers: Option<Vec<ContainerWire<'a>>>,
    #[serde(borrow, default)]
    restart_policy: Option<Text<'a>>,
    #[serde(default)]
    resources: Option<ResourcesWire>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct ContainerWire<'a> {
    #[serde(borrow)]
    name: Text<'a>,
    #[serde(borrow, default)]
    restart_policy: Option<Text<'a>>,
    #[serde(default)]
    resources: Option<ResourcesWire>,
    #[serde(borrow, default)]
    env: Option<Vec<EnvWire<'a>>>,
    // Probes stay raw: the probe-settings rule compares whole probes as stored.
    #[serde(borrow, default)]
    liveness_probe: Option<&'a RawValue>,
    #[serde(borrow, default)]
    readiness_probe: Option<&'a RawValue>,
    #[serde(borrow, default)]
    startup_probe: Option<&'a RawValue>,
    #[serde(borrow, default)]
    ports: Option<Vec<PortWire<'a>>>,
    #[serde(borrow, default)]
    resize_policy: Option<Vec<ResizeWire<'a>>>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "an object")]
struct ResourcesWire {
    #[serde(default)]
    limits: Option<CpuMemoryWire>,
    #[serde(default)]
    requests: Option<CpuMemoryWire>,
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
    value_from: Option<ValueFromWire<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct ValueFromWire<'a> {
    #[serde(borrow, default)]
    resource_field_ref: Option<FieldRefWire<'a>>,
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
    http_get: Option<HandlerWire<'a>>,
    #[serde(borrow, default)]
    tcp_socket: Option<HandlerWire<'a>>,
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

/// A quantity as a string, or a number as YAML writes it (`cpu: 0.5`).
struct QuantityWire(Quantity);

impl<'de> Deserialize<'de> for QuantityWire {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct QuantityVisitor;

        impl Visitor<'_> for QuantityVisitor {
            type Value = QuantityWire;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quantity string or number")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<QuantityWire, E> {
                Quantity::parse(text).map(QuantityWire).map_err(E::custom)
            }

            fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<QuantityWire, E> {
                self.visit_str(&number.to_string())
            }

            fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<QuantityWire, E> {
                self.visit_str(&number.to_string())
            }

            fn visit_f64<E: serde::de::Error>(self, number: f64) -> Result<QuantityWire, E> {
                // serde_json's shortest exact decimal form, as a JSON number displays.
                match serde_json::Number::from_f64(number) {
                    Some(number) => self.visit_str(&number.to_string()),
                    None => Err(E::custom("a quantity must be a finite number")),
                }
            }
        }

        deserializer.deserialize_any(QuantityVisitor)
    }
}

/// A probe port (IntOrString): an all-digit string is a number, anything else a name;
/// a fractional number is no port at all.
struct PortValue<'a>(Option<ProbePort<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for PortValue<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PortVisitor;

        impl<'de> Visitor<'de> for PortVisitor {
            type Value = PortValue<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a name")
            }

            fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<PortValue<'de>, E> {
                Ok(PortValue(Some(ProbePort::Number(number))))
            }

            fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<PortValue<'de>, E> {
                Ok(PortValue(i64::try_from(number).ok().map(ProbePort::Number)))
            }

            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<PortValue<'de>, E> {
                Ok(PortValue(None))
            }

            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                name: &'de str,
            ) -> Result<PortValue<'de>, E> {
                Ok(PortValue(Some(port_of(Text::from(name)))))
            }

            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<PortValue<'de>, E> {
                Ok(PortValue(Some(port_of(Text(name.to_owned().into())))))
            }
        }

        deserializer.deserialize_any(PortVisitor)
    }
}

fn port_of(name: Text<'_>) -> ProbePort<'_> {
    match name.parse::<i64>() {
        Ok(number) if name.bytes().all(|b| b.is_ascii_digit()) => ProbePort::Number(number),
        _ => ProbePort::Name(name),
    }
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
        let wire: PodSpecWire<'a> = parse(json, path)?;
        let mut containers = Vec::new();
        for (role_field, list) in [
            ("containers", wire.containers),
            ("initContainers", wire.init_containers),
        ] {
            for (index, item) in list.into_iter().flatten().enumerate() {
                let at = format_args!("{path}.{role_field}[{index}]").to_string();
                containers.push(container(item, role_field, index, &at)?);
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
            .filter_map(|port| port.name)
            .collect(),
        limits,
        requests,
        env: wire.env.into_iter().flatten().map(env_var).collect(),
        has_env,
        resize_policy: resize_policy(wire.resize_policy.unwrap_or_default()),
    })
}

fn resources(wire: Option<ResourcesWire>) -> (CpuMemory, CpuMemory) {
    let wire = wire.unwrap_or_default();
    let map = |wire: Option<CpuMemoryWire>| {
        let wire = wire.unwrap_or_default();
        CpuMemory {
            cpu: wire.cpu.map(|q| q.0),
            memory: wire.memory.map(|q| q.0),
        }
    };
    (map(wire.limits), map(wire.requests))
}

fn env_var(wire: EnvWire<'_>) -> EnvVar<'_> {
    let source = match wire.value_from {
        None => wire.value.map_or(EnvSource::Empty, EnvSource::Literal),
        Some(ValueFromWire {
            resource_field_ref: None,
        }) => EnvSource::Opaque,
        Some(ValueFromWire {
            resource_field_ref: Some(field),
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

fn resize_policy(items: Vec<ResizeWire<'_>>) -> ResizePolicy {
    let mut policy = ResizePolicy::default();
    for item in items {
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
    let wire: ProbeWire<'a> = parse(raw.get(), &format!("{container_path}.{field}"))?;
    let port = |handler: Option<HandlerWire<'a>>| handler.and_then(|h| h.port).and_then(|p| p.0);
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
