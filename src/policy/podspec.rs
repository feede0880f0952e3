//! A read-only view of the parts of a PodSpec the rules look at, taken from raw JSON.
//!
//! Reading raw JSON (rather than typed k8s-openapi structs) keeps YAML numbers such as
//! `cpu: 0.5` and fields newer than the compiled API version, and lets every type error
//! name the field it was found in.

use serde_json::Value;
use thiserror::Error;

use super::probe_defaults::PROBE_DEFAULTS;
use super::quantity::Quantity;

/// A field of the object that cannot be read, named by its path.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{path}: {problem}")]
pub struct SpecError {
    pub path: String,
    pub problem: String,
}

/// Where a container sits in the pod, which decides the rules that apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerRole {
    /// `spec.containers`
    Main,
    /// `spec.initContainers` with `restartPolicy: Always` (a native sidecar)
    Sidecar,
    /// Any other `spec.initContainers` entry
    Init,
}

impl ContainerRole {
    /// The PodSpec field holding containers of this role.
    pub fn field(self) -> &'static str {
        match self {
            ContainerRole::Main => "containers",
            ContainerRole::Sidecar | ContainerRole::Init => "initContainers",
        }
    }

    /// Probe rules apply to long-running containers only: Kubernetes rejects probes
    /// on plain init containers.
    pub fn gets_probe_rules(self) -> bool {
        !matches!(self, ContainerRole::Init)
    }
}

/// CPU and memory of one `limits` or `requests` map.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuMemory {
    pub cpu: Option<Quantity>,
    pub memory: Option<Quantity>,
}

/// One `env` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar<'a> {
    pub name: &'a str,
    pub source: EnvSource<'a>,
}

impl<'a> EnvVar<'a> {
    /// The literal `value`, when the entry has one (not `valueFrom`).
    pub fn literal(&self) -> Option<&'a str> {
        match self.source {
            EnvSource::Literal(value) => Some(value),
            _ => None,
        }
    }
}

/// Where an `env` entry's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvSource<'a> {
    /// `value`.
    Literal(&'a str),
    /// Neither `value` nor `valueFrom`: the empty string, which Go reads as unset.
    Empty,
    /// `valueFrom.resourceFieldRef`: the kubelet computes it from the pod's resources.
    ResourceField(ResourceFieldRef<'a>),
    /// Any other `valueFrom` (ConfigMap, Secret, fieldRef): unknown at admission.
    Opaque,
}

/// `valueFrom.resourceFieldRef` of an `env` entry (the downward API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceFieldRef<'a> {
    /// Another container whose resources are read; `None`: the entry's own container.
    pub container_name: Option<&'a str>,
    pub resource: &'a str,
    /// `None`: the default divisor, 1.
    pub divisor: Option<Quantity>,
}

/// What the kubelet does to a running container when a resource is resized in place.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResizePolicy {
    /// `restartPolicy: RestartContainer` for `cpu` (the default is `NotRequired`).
    pub cpu_restarts: bool,
    /// `restartPolicy: RestartContainer` for `memory`.
    pub memory_restarts: bool,
}

/// A probe's port, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbePort<'a> {
    Number(i64),
    Name(&'a str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeView<'a> {
    pub raw: &'a Value,
    /// `httpGet.port` and `tcpSocket.port` (a valid probe has one handler; both are read).
    pub ports: [Option<ProbePort<'a>>; 2],
    pub period_seconds: i64,
    pub timeout_seconds: i64,
    pub failure_threshold: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerView<'a> {
    pub role: ContainerRole,
    /// Position in its array (`containers` or `initContainers`).
    pub index: usize,
    pub name: &'a str,
    pub liveness: Option<ProbeView<'a>>,
    pub readiness: Option<ProbeView<'a>>,
    pub startup: Option<ProbeView<'a>>,
    pub port_names: Vec<&'a str>,
    pub limits: CpuMemory,
    pub requests: CpuMemory,
    pub env: Vec<EnvVar<'a>>,
    /// Whether `env` is present as an array (the patch appends) or absent (it adds one).
    pub has_env: bool,
    pub resize_policy: ResizePolicy,
}

impl<'a> ContainerView<'a> {
    /// Whether the container sets `name` in `env`, by value or `valueFrom`.
    pub fn sets_env(&self, name: &str) -> bool {
        self.env.iter().any(|var| var.name == name)
    }

    /// The position and literal value of the one `env` entry named `name`; `None` when
    /// there is none, several, or one with `valueFrom`.
    pub fn sole_literal(&self, name: &str) -> Option<(usize, &'a str)> {
        let mut entries = self
            .env
            .iter()
            .enumerate()
            .filter(|(_, var)| var.name == name);
        let (index, var) = entries.next()?;
        if entries.next().is_some() {
            return None;
        }
        var.literal().map(|value| (index, value))
    }

    pub fn probes(&self) -> impl Iterator<Item = (&'static str, &ProbeView<'_>)> {
        [
            ("livenessProbe", self.liveness.as_ref()),
            ("readinessProbe", self.readiness.as_ref()),
            ("startupProbe", self.startup.as_ref()),
        ]
        .into_iter()
        .filter_map(|(field, probe)| probe.map(|p| (field, p)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSpecView<'a> {
    /// Main containers first, then init containers, each in spec order.
    pub containers: Vec<ContainerView<'a>>,
    pub restart_policy: Option<&'a str>,
    /// Pod-level `spec.resources` (Kubernetes 1.34+).
    pub pod_limits: CpuMemory,
    pub pod_requests: CpuMemory,
}

impl<'a> PodSpecView<'a> {
    /// The container named `name`, among containers and init containers.
    pub fn container(&self, name: &str) -> Option<&ContainerView<'a>> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// Reads a PodSpec. `path` is the dotted location of `spec` for error messages.
    pub fn read(spec: &'a Value, path: &str) -> Result<PodSpecView<'a>, SpecError> {
        let at = Path::Root(path);
        let spec_map = spec
            .as_object()
            .ok_or_else(|| at.error(wrong_type("an object", spec)))?;
        let mut containers = Vec::new();
        for role_field in ["containers", "initContainers"] {
            let Some(list) = present(spec_map.get(role_field)) else {
                continue;
            };
            let list_path = at.join(role_field);
            let items = list
                .as_array()
                .ok_or_else(|| list_path.error(wrong_type("an array", list)))?;
            for (index, item) in items.iter().enumerate() {
                let item_path = list_path.index(index);
                containers.push(read_container(item, role_field, index, &item_path)?);
            }
        }
        let (pod_limits, pod_requests) =
            read_resources(spec_map.get("resources"), &at.join("resources"))?;
        Ok(PodSpecView {
            containers,
            restart_policy: optional_str(spec_map.get("restartPolicy"), &at.join("restartPolicy"))?,
            pod_limits,
            pod_requests,
        })
    }
}

fn read_container<'a>(
    item: &'a Value,
    role_field: &str,
    index: usize,
    at: &Path,
) -> Result<ContainerView<'a>, SpecError> {
    let map = item
        .as_object()
        .ok_or_else(|| at.error(wrong_type("an object", item)))?;
    let name = optional_str(map.get("name"), &at.join("name"))?
        .ok_or_else(|| at.join("name").error("is missing".to_owned()))?;
    let restart_policy = optional_str(map.get("restartPolicy"), &at.join("restartPolicy"))?;
    let role = match (role_field, restart_policy) {
        ("containers", _) => ContainerRole::Main,
        (_, Some("Always")) => ContainerRole::Sidecar,
        _ => ContainerRole::Init,
    };
    let (limits, requests) = read_resources(map.get("resources"), &at.join("resources"))?;
    let (env, has_env) = match present(map.get("env")) {
        None => (Vec::new(), false),
        Some(env) => (read_env(env, &at.join("env"))?, true),
    };
    Ok(ContainerView {
        role,
        index,
        name,
        liveness: read_probe(map.get("livenessProbe"), &at.join("livenessProbe"))?,
        readiness: read_probe(map.get("readinessProbe"), &at.join("readinessProbe"))?,
        startup: read_probe(map.get("startupProbe"), &at.join("startupProbe"))?,
        port_names: read_port_names(map.get("ports"), &at.join("ports"))?,
        limits,
        requests,
        env,
        has_env,
        resize_policy: read_resize_policy(map.get("resizePolicy"), &at.join("resizePolicy"))?,
    })
}

fn read_resize_policy(value: Option<&Value>, at: &Path) -> Result<ResizePolicy, SpecError> {
    let mut policy = ResizePolicy::default();
    let Some(value) = present(value) else {
        return Ok(policy);
    };
    let items = value
        .as_array()
        .ok_or_else(|| at.error(wrong_type("an array", value)))?;
    for (index, item) in items.iter().enumerate() {
        let item_path = at.index(index);
        let map = item
            .as_object()
            .ok_or_else(|| item_path.error(wrong_type("an object", item)))?;
        let resource = optional_str(map.get("resourceName"), &item_path.join("resourceName"))?;
        let restarts = optional_str(map.get("restartPolicy"), &item_path.join("restartPolicy"))?
            == Some("RestartContainer");
        match resource {
            Some("cpu") => policy.cpu_restarts = restarts,
            Some("memory") => policy.memory_restarts = restarts,
            _ => {}
        }
    }
    Ok(policy)
}

fn read_resources(value: Option<&Value>, at: &Path) -> Result<(CpuMemory, CpuMemory), SpecError> {
    let Some(value) = present(value) else {
        return Ok(Default::default());
    };
    let map = value
        .as_object()
        .ok_or_else(|| at.error(wrong_type("an object", value)))?;
    let read_map = |field: &str| -> Result<CpuMemory, SpecError> {
        let map_path = at.join(field);
        let Some(list) = present(map.get(field)) else {
            return Ok(CpuMemory::default());
        };
        let list = list
            .as_object()
            .ok_or_else(|| map_path.error(wrong_type("an object", list)))?;
        let quantity = |name: &str| -> Result<Option<Quantity>, SpecError> {
            present(list.get(name))
                .map(|raw| {
                    Quantity::from_json(raw).map_err(|e| map_path.join(name).error(e.to_string()))
                })
                .transpose()
        };
        Ok(CpuMemory {
            cpu: quantity("cpu")?,
            memory: quantity("memory")?,
        })
    };
    Ok((read_map("limits")?, read_map("requests")?))
}

fn read_env<'a>(env: &'a Value, at: &Path) -> Result<Vec<EnvVar<'a>>, SpecError> {
    let items = env
        .as_array()
        .ok_or_else(|| at.error(wrong_type("an array", env)))?;
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let item_path = at.index(index);
            let map = item
                .as_object()
                .ok_or_else(|| item_path.error(wrong_type("an object", item)))?;
            let name = optional_str(map.get("name"), &item_path.join("name"))?
                .ok_or_else(|| item_path.join("name").error("is missing".to_owned()))?;
            let source = match present(map.get("valueFrom")) {
                None => optional_str(map.get("value"), &item_path.join("value"))?
                    .map_or(EnvSource::Empty, EnvSource::Literal),
                Some(from) => read_value_from(from, &item_path.join("valueFrom"))?,
            };
            Ok(EnvVar { name, source })
        })
        .collect()
}

fn read_value_from<'a>(from: &'a Value, at: &Path) -> Result<EnvSource<'a>, SpecError> {
    let map = from
        .as_object()
        .ok_or_else(|| at.error(wrong_type("an object", from)))?;
    let Some(field_ref) = present(map.get("resourceFieldRef")) else {
        return Ok(EnvSource::Opaque);
    };
    let ref_path = at.join("resourceFieldRef");
    let field_map = field_ref
        .as_object()
        .ok_or_else(|| ref_path.error(wrong_type("an object", field_ref)))?;
    let resource = optional_str(field_map.get("resource"), &ref_path.join("resource"))?
        .ok_or_else(|| ref_path.join("resource").error("is missing".to_owned()))?;
    let divisor = present(field_map.get("divisor"))
        .map(|raw| {
            Quantity::from_json(raw).map_err(|e| ref_path.join("divisor").error(e.to_string()))
        })
        .transpose()?;
    Ok(EnvSource::ResourceField(ResourceFieldRef {
        container_name: optional_str(
            field_map.get("containerName"),
            &ref_path.join("containerName"),
        )?
        .filter(|name| !name.is_empty()),
        resource,
        divisor,
    }))
}

fn read_probe<'a>(value: Option<&'a Value>, at: &Path) -> Result<Option<ProbeView<'a>>, SpecError> {
    let Some(raw) = present(value) else {
        return Ok(None);
    };
    let map = raw
        .as_object()
        .ok_or_else(|| at.error(wrong_type("an object", raw)))?;
    let mut ports = [None, None];
    for (slot, handler) in ports.iter_mut().zip(["httpGet", "tcpSocket"]) {
        let Some(action) = present(map.get(handler)) else {
            continue;
        };
        let handler_path = at.join(handler);
        let action = action
            .as_object()
            .ok_or_else(|| handler_path.error(wrong_type("an object", action)))?;
        *slot = match present(action.get("port")) {
            None => None,
            // IntOrString: an all-digit string is a number, anything else a port name.
            Some(Value::String(name)) => Some(match name.parse::<i64>() {
                Ok(number) if name.bytes().all(|b| b.is_ascii_digit()) => ProbePort::Number(number),
                _ => ProbePort::Name(name),
            }),
            Some(Value::Number(n)) => n.as_i64().map(ProbePort::Number),
            Some(other) => {
                return Err(handler_path
                    .join("port")
                    .error(wrong_type("a number or a name", other)));
            }
        };
    }
    // Kubernetes defaults unset and zero probe timings (SetDefaults_Probe).
    let default_of = |field: &str| {
        PROBE_DEFAULTS
            .iter()
            .find(|(name, _)| *name == field)
            .map_or(0, |(_, default)| *default)
    };
    let integer = |field: &str| -> Result<i64, SpecError> {
        let default = default_of(field);
        match present(map.get(field)) {
            None => Ok(default),
            Some(value) => match value.as_i64() {
                Some(0) => Ok(default),
                Some(number) => Ok(number),
                None => Err(at.join(field).error(wrong_type("an integer", value))),
            },
        }
    };
    Ok(Some(ProbeView {
        raw,
        ports,
        period_seconds: integer("periodSeconds")?,
        timeout_seconds: integer("timeoutSeconds")?,
        failure_threshold: integer("failureThreshold")?,
    }))
}

fn read_port_names<'a>(value: Option<&'a Value>, at: &Path) -> Result<Vec<&'a str>, SpecError> {
    let Some(value) = present(value) else {
        return Ok(Vec::new());
    };
    let items = value
        .as_array()
        .ok_or_else(|| at.error(wrong_type("an array", value)))?;
    let mut names = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let item_path = at.index(index);
        let map = item
            .as_object()
            .ok_or_else(|| item_path.error(wrong_type("an object", item)))?;
        if let Some(name) = optional_str(map.get("name"), &item_path.join("name"))? {
            names.push(name);
        }
    }
    Ok(names)
}

/// `null` means unset in Kubernetes objects.
fn present(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

fn optional_str<'a>(value: Option<&'a Value>, at: &Path) -> Result<Option<&'a str>, SpecError> {
    match present(value) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(at.error(wrong_type("a string", other))),
    }
}

fn wrong_type(expected: &str, found: &Value) -> String {
    let found = match found {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    format!("expected {expected}, found {found}")
}

/// A dotted field path such as `spec.containers[0].resources`, kept as borrowed links so
/// that it costs nothing unless an error is reported.
#[derive(Clone, Copy)]
enum Path<'p> {
    Root(&'p str),
    Field(&'p Path<'p>, &'p str),
    Index(&'p Path<'p>, usize),
}

impl<'p> Path<'p> {
    fn join(&'p self, field: &'p str) -> Path<'p> {
        Path::Field(self, field)
    }

    fn index(&'p self, index: usize) -> Path<'p> {
        Path::Index(self, index)
    }

    fn error(&self, problem: String) -> SpecError {
        SpecError {
            path: self.to_string(),
            problem,
        }
    }
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Root(root) => f.write_str(root),
            Path::Field(parent, field) => write!(f, "{parent}.{field}"),
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}
