//! The parts of a Kubernetes object deployguard reads, borrowed from its JSON text: the
//! metadata grants, annotations and ownership need, and the pod spec left as raw JSON
//! until the kind says where it is. Everything else (`status`, `managedFields`, most of
//! `metadata`) is skipped unparsed.

mod annotations;

use serde::Deserialize;
use serde_json::value::RawValue;

pub use annotations::Annotations;

use crate::strict::Strict;
use crate::text::{Text, TextMap};

/// An object: its metadata and its `spec`, unread.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "an object")]
pub struct Object<'a> {
    #[serde(borrow, default)]
    pub metadata: Option<Strict<Meta<'a>>>,
    #[serde(borrow, default)]
    pub spec: Option<&'a RawValue>,
}

#[derive(Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
pub struct Meta<'a> {
    #[serde(borrow, default)]
    pub name: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub generate_name: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub namespace: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub labels: Option<TextMap<'a>>,
    #[serde(borrow, default)]
    pub annotations: Option<Annotations<'a>>,
    #[serde(borrow, default)]
    pub owner_references: Option<Vec<Strict<OwnerReference<'a>>>>,
}

/// The identity fields the API requires of an owner reference, and whether it is the
/// controller.
#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
pub struct OwnerReference<'a> {
    #[serde(borrow)]
    pub api_version: Text<'a>,
    #[serde(borrow)]
    pub kind: Text<'a>,
    #[serde(borrow)]
    pub name: Text<'a>,
    #[serde(borrow)]
    pub uid: Text<'a>,
    #[serde(default)]
    pub controller: Option<bool>,
}

/// `spec` of a workload controller: where its pod template is.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
pub(crate) struct ControllerSpec<'a> {
    #[serde(borrow, default)]
    pub template: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub job_template: Option<&'a RawValue>,
}

/// A pod template: its annotations (the pods' own) and its spec, unread.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "an object")]
pub(crate) struct Template<'a> {
    #[serde(borrow, default)]
    pub metadata: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub spec: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "an object")]
pub(crate) struct TemplateMeta<'a> {
    // Raw: a template's annotation of another type is not deployguard's to refuse.
    #[serde(borrow, default)]
    pub annotations: Option<&'a RawValue>,
}

impl<'a> Meta<'a> {
    /// One of deployguard's own annotations (the only ones kept).
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key)
    }

    /// The object's namespace, unless empty.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref().filter(|ns| !ns.is_empty())
    }
}

/// Whether raw JSON is an object (and not `null`, or a value of another type).
pub(crate) fn is_object(raw: &RawValue) -> bool {
    raw.get().starts_with('{')
}
