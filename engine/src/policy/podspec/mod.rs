//! A read-only view of the parts of a PodSpec the rules look at ([`read`] builds it from
//! JSON text).
//!
//! Our own structs rather than k8s-openapi's keep YAML numbers such as `cpu: 0.5` and
//! fields newer than the compiled API version, borrow strings from the request, and skip
//! what no rule reads.

mod read;
mod scalars;

use serde_json::value::RawValue;
use thiserror::Error;

pub use read::without_position;

use super::quantity::Quantity;
use crate::text::Text;

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
    pub name: Text<'a>,
    pub source: EnvSource<'a>,
}

impl<'a> EnvVar<'a> {
    /// The literal `value`, when the entry has one (not `valueFrom`).
    pub fn literal(&self) -> Option<&str> {
        match &self.source {
            EnvSource::Literal(value) => Some(value),
            _ => None,
        }
    }
}

/// Where an `env` entry's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvSource<'a> {
    /// `value`.
    Literal(Text<'a>),
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
    pub container_name: Option<Text<'a>>,
    pub resource: Text<'a>,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbePort<'a> {
    Number(i64),
    Name(Text<'a>),
}

#[derive(Debug, Clone)]
pub struct ProbeView<'a> {
    pub raw: &'a RawValue,
    /// `httpGet.port` and `tcpSocket.port` (a valid probe has one handler; both are read).
    pub ports: [Option<ProbePort<'a>>; 2],
    pub period_seconds: i64,
    pub timeout_seconds: i64,
    pub failure_threshold: i64,
}

/// Probes are equal when written alike (RawValue has no equality of its own).
impl PartialEq for ProbeView<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.raw.get() == other.raw.get()
            && self.ports == other.ports
            && (
                self.period_seconds,
                self.timeout_seconds,
                self.failure_threshold,
            ) == (
                other.period_seconds,
                other.timeout_seconds,
                other.failure_threshold,
            )
    }
}

impl Eq for ProbeView<'_> {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerView<'a> {
    pub role: ContainerRole,
    /// Position in its array (`containers` or `initContainers`).
    pub index: usize,
    pub name: Text<'a>,
    pub liveness: Option<ProbeView<'a>>,
    pub readiness: Option<ProbeView<'a>>,
    pub startup: Option<ProbeView<'a>>,
    pub port_names: Vec<Text<'a>>,
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
    pub fn sole_literal(&self, name: &str) -> Option<(usize, &str)> {
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
    pub restart_policy: Option<Text<'a>>,
    /// Pod-level `spec.resources` (Kubernetes 1.34+).
    pub pod_limits: CpuMemory,
    pub pod_requests: CpuMemory,
}

impl<'a> PodSpecView<'a> {
    /// The container named `name`, among containers and init containers.
    pub fn container(&self, name: &str) -> Option<&ContainerView<'a>> {
        self.containers.iter().find(|c| c.name == name)
    }
}
